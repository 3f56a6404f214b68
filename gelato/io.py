"""Event-file I/O shared by every stage: the HDF5 layout of samples and atomic writes.

Layout of an event file (written by ``gelato generate``, read by every later stage):

* ``features``: float32 dataset of shape (N, 44), columns in :data:`FEATURE_NAMES` order,
  chunked and compressed, with the names in its ``feature_names`` attribute;
* ``weight`` (optional): float32 (N,) per-event weights;
* root attributes: ``process``, ``seed``, ``n_events`` and JSON strings ``generator`` and
  ``l1_emulation`` with the settings that made the file.

Writers go through :func:`atomic_output`, so an interrupted run never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gelato.features import FEATURE_NAMES, N_FEATURES

log = logging.getLogger(__name__)

FEATURES_DATASET = "features"
WEIGHT_DATASET = "weight"
CHUNK_ROWS = 4096


class EventFileError(ValueError):
    """An event file is missing, unreadable or not in the expected layout."""


@dataclass
class EventSample:
    """Events of one file: features (N, 44) float32, weights (N,) and file attributes."""

    path: Path
    features: np.ndarray
    weights: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def process(self) -> str:
        return str(self.attrs.get("process", self.path.stem))

    def __len__(self) -> int:
        return len(self.features)


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _attr_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return value


def write_events(
    path: str | os.PathLike[str],
    features: np.ndarray,
    weights: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """Write an event file atomically in the layout described in the module docstring."""
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise EventFileError(f"{path}: features must have shape (N, {N_FEATURES}), got {features.shape}")
    chunk = (max(1, min(CHUNK_ROWS, len(features))), N_FEATURES)

    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset(
            FEATURES_DATASET, data=features, chunks=chunk, compression="gzip", compression_opts=6, shuffle=True
        )
        ds.attrs["feature_names"] = np.array(FEATURE_NAMES, dtype=h5py.string_dtype())
        if weights is not None:
            w = np.asarray(weights, dtype=np.float32)
            if w.shape != (len(features),):
                raise EventFileError(f"{path}: weights must have shape ({len(features)},), got {w.shape}")
            f.create_dataset(WEIGHT_DATASET, data=w, chunks=(chunk[0],), compression="gzip", shuffle=True)
        for key, value in (attrs or {}).items():
            f.attrs[key] = _attr_value(value)
        f.attrs["n_events"] = len(features)
    return Path(path)


def _open(path: Path) -> h5py.File:
    if not path.exists():
        raise EventFileError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise EventFileError(f"{path}: not a readable HDF5 file ({exc})") from None


def _checked_features(path: Path, f: h5py.File) -> h5py.Dataset:
    if FEATURES_DATASET not in f:
        raise EventFileError(
            f"{path}: no dataset '{FEATURES_DATASET}'; found {sorted(f.keys())}, "
            f"expected a float dataset '{FEATURES_DATASET}' of shape (N, {N_FEATURES})"
        )
    ds = f[FEATURES_DATASET]
    if ds.ndim != 2 or ds.shape[1] != N_FEATURES:
        raise EventFileError(f"{path}: dataset '{FEATURES_DATASET}' has shape {ds.shape}, expected (N, {N_FEATURES})")
    names = ds.attrs.get("feature_names")
    if names is not None:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
        if tuple(names) != FEATURE_NAMES:
            bad = next(i for i, (a, b) in enumerate(zip(names, FEATURE_NAMES)) if a != b)
            raise EventFileError(
                f"{path}: dataset '{FEATURES_DATASET}' column {bad} is named {names[bad]!r}, expected {FEATURE_NAMES[bad]!r}"
            )
    return ds


def _decode_attrs(f: h5py.File) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def read_events(path: str | os.PathLike[str], max_events: int | None = None) -> EventSample:
    """Read a whole event file (or its first ``max_events``) into memory."""
    path = Path(path)
    with _open(path) as f:
        ds = _checked_features(path, f)
        n = ds.shape[0] if max_events is None else min(ds.shape[0], max_events)
        features = ds[:n].astype(np.float32)
        weights = f[WEIGHT_DATASET][:n].astype(np.float64) if WEIGHT_DATASET in f else np.ones(n)
        attrs = _decode_attrs(f)
    return EventSample(path=path, features=features, weights=weights, attrs=attrs)


def iter_event_chunks(
    path: str | os.PathLike[str], chunk_events: int = 65536
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(start, features, weights)`` blocks of at most ``chunk_events`` events."""
    path = Path(path)
    with _open(path) as f:
        ds = _checked_features(path, f)
        wds = f[WEIGHT_DATASET] if WEIGHT_DATASET in f else None
        for start in range(0, ds.shape[0], chunk_events):
            stop = min(start + chunk_events, ds.shape[0])
            weights = wds[start:stop].astype(np.float64) if wds is not None else np.ones(stop - start)
            yield start, ds[start:stop].astype(np.float32), weights
