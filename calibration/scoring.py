"""Per-event scores of a sample, float and bit-accurate, stored in ``build/scores/`` (calibration stage).

Samples are read through the shared loader (:func:`gelato.io.read_event_block`, any
accepted layout), one chunk of events at a time.  :func:`compute_columns` runs the
firmware emulation (``gelato.hls.emulate.FirmwareEmulator``, or any object with the same
methods, :class:`Scorer`) and the menu on a chunk; :class:`ScoreFileWriter` writes the
chunks, in any order, into one HDF5 file per sample, moved into place atomically,
``build/scores/<process>.h5`` (layout version 3):

* ``score_float`` (N,) float64: the Keras float model;
* ``score_emulated`` (N,) float64: the bit-accurate firmware score (values of the score type);
* ``weight`` (N,) float64;
* ``l1_menu_pass`` (N,) bool: the baseline menu decision, read from the event file when it
  carries one and the settings allow it (attribute ``menu_source`` = ``file:l1_menu_pass``),
  else emulated;
* ``l1_menu_items`` (N, n_items) bool: each emulated menu item (names in its attribute);
* ``chunk_input_saturation`` (n_chunks, 44) int64: saturated-input counts of each chunk of
  ``chunk_events`` events (attribute ``input_saturation`` holds their sum);
* only when the file keeps features (by default the efficiency processes, whose findings
  need them, not the large rate reference): ``features`` (N, 44) float32, the unscaled
  inputs as read (the encoder sees x / 2**s, s the exponents of attribute ``input_shifts``;
  version 2 also stored those scaled inputs, which are one multiplication away);
* attributes ``process``, ``source``, ``score_type``, ``input_shifts`` (when the scorer
  has a shift table), ``menu_source``, ``n_events``,
  ``chunk_events``, ``digest`` (inputs the file was made from; a rerun with the same digest
  reuses the file).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from gelato.calibration.menu import Menu, any_per_row
from gelato.features import N_FEATURES
from gelato.io import MENU_DATASET, EventBlock, atomic_output
from gelato.layouts import NameMapping

log = logging.getLogger(__name__)

#: A feature-name mapping for the shared loader: a mapping, a YAML path, or None (the packaged one).
Names = NameMapping | str | Path | None

SCORE_FILE_VERSION = 3


class Scorer(Protocol):
    """What the calibration needs of the firmware emulation (see ``gelato.hls.emulate``)."""

    score_type: Any

    def float_scores(self, features: np.ndarray) -> np.ndarray: ...
    def emulated_scores(self, features: np.ndarray) -> np.ndarray: ...
    def input_saturation(self, features: np.ndarray) -> np.ndarray: ...


def input_digest(sample: Path, extra: dict) -> str:
    """Digest of a sample file (size, mtime) and the settings its scores depend on."""
    stat = sample.stat()
    payload = json.dumps({"v": SCORE_FILE_VERSION, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns, **extra},
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()




def existing_digest(path: Path) -> str | None:
    """The digest of an existing score file, or None when there is none or it is unreadable."""
    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("digest", "")) or None
    except OSError:
        return None


@dataclass
class ScoreColumns:
    """The per-event columns of one chunk of a score file (``features`` only when the file keeps them)."""

    score_float: np.ndarray
    score_emulated: np.ndarray
    weight: np.ndarray
    menu_pass: np.ndarray
    menu_items: np.ndarray
    saturation: np.ndarray
    menu_source: str
    features: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.weight)


def compute_columns(scorer: Scorer, block: EventBlock, menu: Menu, keep_features: bool) -> ScoreColumns:
    """Score one block of events (float and emulated), evaluate the menu, count saturated inputs."""
    features = block.features
    items = menu.item_decisions(features)
    from_file = menu.use_file_decision and block.menu_pass is not None
    return ScoreColumns(
        score_float=np.asarray(scorer.float_scores(features), np.float64),
        score_emulated=np.asarray(scorer.emulated_scores(features), np.float64),
        weight=np.asarray(block.weights, np.float64),
        menu_pass=np.asarray(block.menu_pass if from_file else any_per_row(items), bool),
        menu_items=items,
        saturation=np.asarray(scorer.input_saturation(features), np.int64),
        menu_source=f"file:{MENU_DATASET}" if from_file else "emulated",
        features=features if keep_features else None,
    )


def read_columns(path: Path, start: int, stop: int, chunk_index: int | None = None) -> ScoreColumns:
    """Rows [start, stop) of a score file; ``chunk_index`` picks the saturation row of that chunk."""
    with h5py.File(path, "r") as f:
        saturation = (f["chunk_input_saturation"][chunk_index] if chunk_index is not None
                      else np.zeros(N_FEATURES, np.int64))
        return ScoreColumns(
            score_float=f["score_float"][start:stop], score_emulated=f["score_emulated"][start:stop],
            weight=f["weight"][start:stop], menu_pass=f["l1_menu_pass"][start:stop],
            menu_items=f["l1_menu_items"][start:stop], saturation=np.asarray(saturation, np.int64),
            menu_source=str(f.attrs["menu_source"]),
        )


class ScoreFileWriter:
    """Writes one score file chunk by chunk, in any chunk order; moved into place on :meth:`close`.

    The columns are stored contiguous and uncompressed: a score file is an intermediate of
    the build folder, and compressing it (gzip level 1 before) took a third of the
    end-to-end time on the committed samples, ten times longer than the plain write.

    Use as a context manager; an exception leaves no file under the final name.
    """

    def __init__(self, out_path: Path, n_events: int, chunk_events: int, menu_item_names: list[str],
                 keep_features: bool):
        self.out_path, self.n_events, self.chunk_events = out_path, n_events, chunk_events
        self.keep_features = keep_features
        self._atomic = atomic_output(out_path)
        self._file = h5py.File(self._atomic.__enter__(), "w")
        n, n_items, n_chunks = n_events, len(menu_item_names), max(1, -(-n_events // chunk_events))
        for name, dtype, width in (("score_float", np.float64, ()), ("score_emulated", np.float64, ()),
                                   ("weight", np.float64, ()), ("l1_menu_pass", bool, ()),
                                   ("l1_menu_items", bool, (n_items,))):
            self._file.create_dataset(name, shape=(n, *width), dtype=dtype)
        self._file["l1_menu_items"].attrs["item_names"] = np.array(menu_item_names, dtype=h5py.string_dtype())
        self._file.create_dataset("chunk_input_saturation", data=np.zeros((n_chunks, N_FEATURES), np.int64))
        if keep_features:
            self._file.create_dataset("features", shape=(n, N_FEATURES), dtype=np.float32)
        self._menu_source: str | None = None

    def __enter__(self) -> ScoreFileWriter:
        return self

    def write(self, start: int, columns: ScoreColumns) -> None:
        """Store the columns of the chunk that starts at event ``start``."""
        rows, f = slice(start, start + len(columns)), self._file
        f["score_float"][rows], f["score_emulated"][rows] = columns.score_float, columns.score_emulated
        f["weight"][rows], f["l1_menu_pass"][rows] = columns.weight, columns.menu_pass
        f["l1_menu_items"][rows] = columns.menu_items
        f["chunk_input_saturation"][start // self.chunk_events] = columns.saturation
        if self.keep_features:
            f["features"][rows] = columns.features
        self._menu_source = self._menu_source or columns.menu_source

    def close(self, attrs: dict) -> None:
        """Write the attributes and move the file into place."""
        saturation = self._file["chunk_input_saturation"][:].sum(axis=0)
        self._file.attrs.update({**attrs, "menu_source": self._menu_source or "emulated", "n_events": self.n_events,
                                 "chunk_events": self.chunk_events, "input_saturation": saturation,
                                 "version": SCORE_FILE_VERSION})
        self._file.close()
        self._atomic.__exit__(None, None, None)

    def __exit__(self, exc_type, exc, tb) -> None:
        """On an exception, close and delete the unfinished file; on success :meth:`close` has moved it."""
        if exc_type is not None:
            self._file.close()
            self._atomic.__exit__(exc_type, exc, tb)
