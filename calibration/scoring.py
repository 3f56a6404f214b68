"""Per-event scores of a sample, float and bit-accurate, stored in ``build/scores/`` (calibration stage).

Samples are read through the shared loader (:func:`gelato.io.iter_event_blocks`, any
accepted layout).  For each sample the firmware emulation (``gelato.hls.emulate.FirmwareEmulator``, or any
object with the same methods, :class:`Scorer`) is run chunk by chunk and one HDF5 file is
written atomically, ``build/scores/<process>.h5``:

* ``features`` (N, 44) float32: the unscaled inputs as read;
* ``scaled_features`` (N, 44) float32: x / 2**s, what the encoder sees;
* ``score_float`` (N,) float64: the Keras float model;
* ``score_emulated`` (N,) float64: the bit-accurate firmware score (values of the score type);
* ``weight`` (N,) float64;
* ``l1_menu_pass`` (N,) bool: the baseline menu decision, read from the event file when it
  carries one and the settings allow it (attribute ``menu_source`` = ``file:l1_menu_pass``),
  else emulated;
* ``l1_menu_items`` (N, n_items) bool: each emulated menu item (names in its attribute);
* attributes ``process``, ``source``, ``score_type``, ``input_saturation`` (44 counts),
  ``digest`` (inputs the file was made from; a rerun with the same digest reuses the file).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from gelato.calibration.menu import Menu
from gelato.features import N_FEATURES
from gelato.io import MENU_DATASET, atomic_output, count_events, iter_event_blocks
from gelato.layouts import NameMapping

log = logging.getLogger(__name__)

#: A feature-name mapping for the shared loader: a mapping, a YAML path, or None (the packaged one).
Names = NameMapping | str | Path | None

SCORE_FILE_VERSION = 1


class Scorer(Protocol):
    """What the calibration needs of the firmware emulation (see ``gelato.hls.emulate``)."""

    score_type: Any

    def float_scores(self, features: np.ndarray) -> np.ndarray: ...
    def emulated_scores(self, features: np.ndarray) -> np.ndarray: ...
    def scaled_features(self, features: np.ndarray) -> np.ndarray: ...
    def input_saturation(self, features: np.ndarray) -> np.ndarray: ...


@dataclass
class ScoredSample:
    """The per-event columns of a score file that the calibration keeps in memory."""

    process: str
    path: Path
    score_float: np.ndarray
    score_emulated: np.ndarray
    weights: np.ndarray
    menu_pass: np.ndarray
    menu_items: np.ndarray
    menu_item_names: list[str]
    menu_source: str
    saturation: np.ndarray

    def __len__(self) -> int:
        return len(self.weights)

    def scores(self, kind: str) -> np.ndarray:
        """Scores of ``kind`` 'float' or 'emulated'."""
        return {"float": self.score_float, "emulated": self.score_emulated}[kind]


def input_digest(sample: Path, extra: dict) -> str:
    """Digest of a sample file (size, mtime) and the settings its scores depend on."""
    stat = sample.stat()
    payload = json.dumps({"v": SCORE_FILE_VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **extra},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _create_columns(f: h5py.File, n: int, n_items: int) -> None:
    chunk = max(1, min(n, 8192))
    for name, dtype, shape in (
        ("features", np.float32, (n, N_FEATURES)),
        ("scaled_features", np.float32, (n, N_FEATURES)),
        ("score_float", np.float64, (n,)),
        ("score_emulated", np.float64, (n,)),
        ("weight", np.float64, (n,)),
        ("l1_menu_pass", bool, (n,)),
        ("l1_menu_items", bool, (n, n_items)),
    ):
        chunks = (chunk, *shape[1:]) if n > 0 and all(shape[1:]) else None
        f.create_dataset(name, shape=shape, dtype=dtype, chunks=chunks, compression="gzip" if chunks else None,
                         compression_opts=1 if chunks else None, shuffle=bool(chunks))


def score_sample(
    scorer: Scorer,
    process: str,
    sample: Path,
    out_path: Path,
    menu: Menu,
    chunk_events: int,
    digest: str,
    names: Names = None,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Score every event of ``sample`` and write ``out_path`` atomically (layout in module docstring)."""
    n = count_events(sample, names)
    saturation, from_file = np.zeros(N_FEATURES, np.int64), False

    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as out:
        _create_columns(out, n, len(menu.items))
        for block in iter_event_blocks(sample, chunk_events, names):
            rows, features = slice(block.start, block.stop), block.features
            out["features"][rows] = features
            out["scaled_features"][rows] = scorer.scaled_features(features)
            out["score_float"][rows] = scorer.float_scores(features)
            out["score_emulated"][rows] = scorer.emulated_scores(features)
            out["weight"][rows] = block.weights
            items = menu.item_decisions(features)
            out["l1_menu_items"][rows] = items
            from_file = menu.use_file_decision and block.menu_pass is not None
            out["l1_menu_pass"][rows] = block.menu_pass if from_file else items.any(axis=1)
            saturation += np.asarray(scorer.input_saturation(features), np.int64)
            if progress is not None:
                progress(len(features))

        out["l1_menu_items"].attrs["item_names"] = np.array(menu.names, dtype=h5py.string_dtype())
        out.attrs.update({
            "process": process, "source": str(sample), "score_type": str(scorer.score_type),
            "menu_source": f"file:{MENU_DATASET}" if from_file else "emulated",
            "input_saturation": saturation, "digest": digest, "n_events": n,
        })
    log.info("%s: scored %d events -> %s (menu from %s)", process, n, out_path, "file" if from_file else "emulation")


def existing_digest(path: Path) -> str | None:
    """The digest of an existing score file, or None when there is none or it is unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("digest", "")) or None
    except OSError:
        return None


def load_scored_sample(path: Path) -> ScoredSample:
    """Read the per-event columns of a score file (not the features: those are read in chunks)."""
    with h5py.File(path, "r") as f:
        return ScoredSample(
            process=str(f.attrs["process"]),
            path=path,
            score_float=f["score_float"][:],
            score_emulated=f["score_emulated"][:],
            weights=f["weight"][:],
            menu_pass=f["l1_menu_pass"][:],
            menu_items=f["l1_menu_items"][:],
            menu_item_names=[s.decode() if isinstance(s, bytes) else str(s) for s in f["l1_menu_items"].attrs["item_names"]],
            menu_source=str(f.attrs["menu_source"]),
            saturation=np.asarray(f.attrs["input_saturation"], np.int64),
        )


def iter_score_file_features(path: Path, chunk_events: int):
    """Yield ``(start, features)`` blocks of the unscaled features stored in a score file."""
    with h5py.File(path, "r") as f:
        ds = f["features"]
        for start in range(0, ds.shape[0], chunk_events):
            yield start, ds[start : start + chunk_events]
