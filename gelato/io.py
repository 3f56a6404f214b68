"""Event-file I/O shared by every stage: the HDF5 layout of samples and atomic writes.

Layout of an event file (written by ``gelato generate``, read by every later stage):

* ``features``: float32 dataset of shape (N, 44), columns in :data:`FEATURE_NAMES` order,
  chunked and compressed, with the names in its ``feature_names`` attribute;
* ``weight`` (optional): float32 (N,) per-event weights;
* ``l1_menu_pass`` (optional): bool (N,) decision of the existing L1 menu per event;
* root attributes: ``process``, ``seed``, ``n_events`` and JSON strings ``generator`` and
  ``l1_emulation`` with the settings that made the file.

Readers also accept the other layouts of :mod:`gelato.layouts` (per-object datasets, one
dataset per feature, compound tables, other spellings through a name-mapping file); they
always hand back the features in :data:`FEATURE_NAMES` order as float32, weights as
float64 (ones when the file has none) and the menu flag as bool (None when absent), and
log a warning (once per file) when they meet NaN or infinite values.  Checking the values (NaN, ordering, ...) is left
to :mod:`gelato.validation`.

Writers go through :func:`atomic_output`, so an interrupted run never leaves a
half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from gelato.features import FEATURE_NAMES, N_FEATURES
from gelato.layouts import DatasetReadError, EventFileError, EventLayout, NameMapping, inspect_layout, resolve_names

log = logging.getLogger(__name__)

FEATURES_DATASET = "features"
WEIGHT_DATASET = "weight"
MENU_DATASET = "l1_menu_pass"
CHUNK_ROWS = 4096

#: A name-mapping argument: a loaded mapping, a YAML file, or None for the packaged default.
Names = NameMapping | str | os.PathLike[str] | None

__all__ = [
    "FEATURES_DATASET", "MENU_DATASET", "WEIGHT_DATASET", "Names",
    "DatasetReadError", "EventBlock", "EventFileError", "EventSample", "atomic_output", "count_events", "event_layout",
    "iter_event_blocks", "iter_event_chunks", "open_event_file", "read_event_block", "read_events", "write_events",
]


@dataclass
class EventSample:
    """Events of one file: features (N, 44) float32, weights (N,) and file attributes.

    ``menu_pass`` is the file's ``l1_menu_pass`` flag as bool (N,), or None when it has none;
    ``layout`` says where the features came from.
    """

    path: Path
    features: np.ndarray
    weights: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    menu_pass: np.ndarray | None = None
    layout: str = ""

    @property
    def process(self) -> str:
        return str(self.attrs.get("process", self.path.stem))

    def __len__(self) -> int:
        return len(self.features)


@dataclass
class EventBlock:
    """Consecutive events [start, start + len) of a file, as yielded by :func:`iter_event_blocks`."""

    start: int
    features: np.ndarray
    weights: np.ndarray
    menu_pass: np.ndarray | None = None

    @property
    def stop(self) -> int:
        return self.start + len(self.features)

    def __len__(self) -> int:
        return len(self.features)


#: Set by the CLI's SIGINT handler.  A KeyboardInterrupt raised inside a finalizer or weakref
#: callback (matplotlib's, during plotting) is printed and dropped by Python; the flag is not,
#: so no output is moved into place after an interrupt, whatever swallowed the exception.
INTERRUPTED = threading.Event()


def display_path(path: str | os.PathLike[str]) -> str:
    """``path`` relative to the working directory when it lies below it, else as given (reports stay
    the same whichever folder the project was cloned into)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _umask() -> int:
    """The process umask (read by setting and restoring it: there is no getter)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
        if INTERRUPTED.is_set():
            raise KeyboardInterrupt(f"interrupted before {final} was written")
        if tmp.exists():  # mkstemp makes 0600; a finished output gets the usual mode under the umask
            tmp.chmod(0o666 & ~_umask())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_report_pair(reports_dir: str | os.PathLike[str], stem: str, data: Any, markdown: str, indent: int = 2) -> None:
    """Write ``<stem>.json`` (``data``) and the readable ``<stem>.md`` beside it, each atomically."""
    with atomic_output(Path(reports_dir) / f"{stem}.json") as tmp:
        tmp.write_text(json.dumps(data, indent=indent) + "\n")
    with atomic_output(Path(reports_dir) / f"{stem}.md") as tmp:
        tmp.write_text(markdown)


def _attr_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    return value


def _storage(shape: tuple[int, ...]) -> dict[str, Any]:
    """Chunked gzip storage of a per-event dataset (contiguous when it holds no events)."""
    if shape[0] == 0:
        return {}
    return {"chunks": (min(CHUNK_ROWS, shape[0]), *shape[1:]), "compression": "gzip", "compression_opts": 6,
            "shuffle": True}


def write_events(
    path: str | os.PathLike[str],
    features: np.ndarray,
    weights: np.ndarray | None = None,
    attrs: Mapping[str, Any] | None = None,
    menu_pass: np.ndarray | None = None,
) -> Path:
    """Write an event file atomically in the layout described in the module docstring.

    ``menu_pass`` (optional, (N,) bool) is stored as ``l1_menu_pass``.
    """
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise EventFileError(f"{path}: features must have shape (N, {N_FEATURES}), got {features.shape}")
    per_event = {}
    for name, values, dtype in ((WEIGHT_DATASET, weights, np.float32), (MENU_DATASET, menu_pass, bool)):
        if values is not None:
            per_event[name] = np.asarray(values, dtype=dtype)
            if per_event[name].shape != (len(features),):
                label = "weights" if name == WEIGHT_DATASET else "menu_pass"
                raise EventFileError(f"{path}: {label} must have shape ({len(features)},), got {per_event[name].shape}")

    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset(FEATURES_DATASET, data=features, **_storage(features.shape))
        ds.attrs["feature_names"] = np.array(FEATURE_NAMES, dtype=h5py.string_dtype())
        for name, values in per_event.items():
            f.create_dataset(name, data=values, **_storage(values.shape))
        for key, value in (attrs or {}).items():
            f.attrs[key] = _attr_value(value)
        f.attrs["n_events"] = len(features)
    return Path(path)


def open_event_file(path: str | os.PathLike[str]) -> h5py.File:
    """Open an event file read-only; :class:`EventFileError` saying why when that is impossible."""
    path = Path(path)
    if not path.exists():
        raise EventFileError(f"{path}: no such file")
    if path.is_dir():
        raise EventFileError(f"{path}: is a directory, expected an HDF5 event file")
    if not os.access(path, os.R_OK):
        raise EventFileError(f"{path}: not readable (permission denied)")
    if path.stat().st_size == 0:
        raise EventFileError(f"{path}: empty file (0 bytes), expected an HDF5 event file")
    try:
        if not h5py.is_hdf5(path):
            raise EventFileError(f"{path}: not a readable HDF5 file (no HDF5 signature); expected an HDF5 event file")
        return h5py.File(path, "r")
    except OSError as exc:
        if "truncated" in str(exc):
            raise EventFileError(f"{path}: truncated HDF5 file ({exc}); expected a complete event file") from None
        raise EventFileError(f"{path}: not a readable HDF5 file ({exc})") from None


#: Layouts of files read with the packaged name mapping, by (path, size, mtime): a calibration
#: opens every file once per chunk, and working the layout out again each time costs more
#: than reading a small chunk.  A changed file has another key; the cache is bounded.
_LAYOUTS: dict[tuple[str, int, int], EventLayout] = {}
_MAX_LAYOUTS = 256


def _layout(path: Path, f: h5py.File, names: Names) -> EventLayout:
    if names is None:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        layout = _LAYOUTS.get(key)
        if layout is None:
            layout = _inspected_layout(path, f, names)
            if len(_LAYOUTS) >= _MAX_LAYOUTS:
                _LAYOUTS.clear()
            _LAYOUTS[key] = layout
        return layout
    return _inspected_layout(path, f, names)


def _inspected_layout(path: Path, f: h5py.File, names: Names) -> EventLayout:
    mapping = resolve_names(names)
    try:
        layout, issues = inspect_layout(f, path, mapping)
    except (OSError, RuntimeError, KeyError, TypeError) as exc:
        raise EventFileError(f"{path}: unreadable HDF5 structure ({exc})") from None
    if layout is None:
        lines = [str(issue) for issue in issues]
        if len(lines) == 1:
            raise EventFileError(f"{path}: {lines[0]}")
        raise EventFileError(f"{path}: {len(lines)} layout problems:\n  " + "\n  ".join(lines))
    return layout


def event_layout(path: str | os.PathLike[str], names: Names = None) -> EventLayout:
    """The layout of an event file (which datasets hold what), or :class:`EventFileError`."""
    with open_event_file(path) as f:
        return _layout(Path(path), f, names)


def count_events(path: str | os.PathLike[str], names: Names = None) -> int:
    """Number of events in an event file of any accepted layout."""
    return event_layout(path, names).n_events


def _decode_attrs(f: h5py.File) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


def _block(layout: EventLayout, f: h5py.File, start: int, stop: int) -> EventBlock:
    features, weights, menu = layout.read(f, start, stop)
    weights = weights.astype(np.float64) if weights is not None else np.ones(stop - start)
    menu_pass = menu.astype(bool) if menu is not None else None
    return EventBlock(start, features, weights, menu_pass)


def _warn_if_not_finite(path: Path, block: EventBlock) -> bool:
    """Readers do not refuse values (that is `gelato validate`'s job) but never accept NaN silently."""
    if np.isfinite(block.features).all() and np.isfinite(block.weights).all():
        return False
    log.warning("%s: NaN or infinite values among events %d-%d; run `gelato validate %s` for the list",
                path, block.start, block.stop - 1, path)
    return True


def read_events(path: str | os.PathLike[str], max_events: int | None = None, names: Names = None) -> EventSample:
    """Read a whole event file (or its first ``max_events``) into memory, features in canonical order."""
    path = Path(path)
    with open_event_file(path) as f:
        layout = _layout(path, f, names)
        n = layout.n_events if max_events is None else min(layout.n_events, max_events)
        block = _block(layout, f, 0, n)
        _warn_if_not_finite(path, block)
        attrs = _decode_attrs(f)
    return EventSample(path, block.features, block.weights, attrs, block.menu_pass, layout.describe())


def iter_event_blocks(
    path: str | os.PathLike[str], chunk_events: int = 65536, names: Names = None
) -> Iterator[EventBlock]:
    """Yield :class:`EventBlock` s of at most ``chunk_events`` events (features, weights, menu flags)."""
    if chunk_events < 1:
        raise ValueError(f"chunk_events must be >= 1, got {chunk_events}")
    path = Path(path)
    with open_event_file(path) as f:
        layout, warned = _layout(path, f, names), False
        for start in range(0, layout.n_events, chunk_events):
            block = _block(layout, f, start, min(start + chunk_events, layout.n_events))
            warned = warned or _warn_if_not_finite(path, block)  # once per file
            yield block


def read_event_block(path: str | os.PathLike[str], start: int, stop: int, names: Names = None) -> EventBlock:
    """Events [start, stop) of a file as one :class:`EventBlock` (opens and closes the file itself).

    Meant for tasks that each read their own range (HDF5 handles cannot be sent between processes).
    """
    path = Path(path)
    with open_event_file(path) as f:
        layout = _layout(path, f, names)
        if not 0 <= start <= stop <= layout.n_events:
            raise ValueError(f"{path}: event range [{start}, {stop}) outside the file's {layout.n_events} events")
        block = _block(layout, f, start, stop)
    _warn_if_not_finite(path, block)
    return block


def iter_event_chunks(
    path: str | os.PathLike[str], chunk_events: int = 65536, names: Names = None
) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(start, features, weights)`` blocks of at most ``chunk_events`` events.

    The tuple form kept for existing callers; :func:`iter_event_blocks` also gives the menu flag.
    """
    for block in iter_event_blocks(path, chunk_events, names):
        yield block.start, block.features, block.weights
