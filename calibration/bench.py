"""End-to-end calibration throughput and memory against a plain h5py read of the same files (calibration stage).

:func:`end_to_end` runs the calibration's own passes on given sample files (HDF5 -> float
and emulated scores -> thresholds -> efficiency histograms; no C-simulation check, no
plots) into a fresh scores folder, so every event is scored, and returns events per
second and the peak resident memory of this process.  :func:`raw_read` reads the same
files with h5py alone, every per-event dataset chunk by chunk, for the reference rate.
:func:`compare` does both and gives their ratio.  These functions only measure and return
numbers; ``gelato bench-calibration`` (and ``gelato bench``) print them.

Peak memory is ``ru_maxrss`` of this process: the largest resident size it ever had,
including the firmware emulation and TensorFlow loaded before the run; with a Dask
executor the workers' memory is not included.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import h5py

from gelato.calibration.config import CalibrationSettings, load_settings
from gelato.calibration.pipeline import peak_memory_mb, run_calibration
from gelato.calibration.scoring import Names, Scorer
from gelato.io import count_events

log = logging.getLogger(__name__)


def raw_read(samples: Mapping[str, Path], chunk_events: int = 65536) -> dict:
    """Read every per-event dataset of every file with h5py, ``chunk_events`` rows at a time; events/s."""
    n_events, n_bytes, t0 = 0, 0, time.perf_counter()
    for path in samples.values():
        with h5py.File(path, "r") as f:
            datasets = []
            f.visititems(lambda name, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
            n = max((d.shape[0] for d in datasets if d.ndim >= 1), default=0)
            per_event = [d for d in datasets if d.ndim >= 1 and d.shape[0] == n]
            for start in range(0, n, chunk_events):
                n_bytes += sum(d[start : start + chunk_events].nbytes for d in per_event)
            n_events += n
    seconds = time.perf_counter() - t0
    return {"events": n_events, "seconds": seconds, "events_per_s": n_events / seconds if seconds > 0 else 0.0,
            "megabytes": n_bytes / 1e6}


def end_to_end(
    samples: Mapping[str, Path],
    scorer: Scorer,
    settings: CalibrationSettings | None = None,
    work_dir: Path | None = None,
    names: Names = None,
    executor=None,
    scorer_factory=None,
) -> dict:
    """Calibrate ``samples`` (reference first, as in the settings) from scratch; events/s and peak memory.

    Scores go to ``work_dir/scores`` (a temporary folder by default, removed afterwards), so
    nothing is reused.  Returns ``events``, ``seconds``, ``events_per_s``, ``peak_memory_mb``,
    ``stage_seconds`` (scores, thresholds, efficiencies), ``execution`` and the emulated
    ``thresholds`` per rate.
    """
    settings = settings or load_settings()
    missing = [p for p in settings.all_processes if p not in samples]
    if missing:
        raise ValueError(f"no sample for {', '.join(missing)}; expected one file per process of {settings.source}")
    ordered = {p: Path(samples[p]) for p in settings.all_processes}
    n_events = sum(count_events(path, names) for path in ordered.values())

    with tempfile.TemporaryDirectory(prefix="gelato-bench-", dir=work_dir) as tmp:
        t0 = time.perf_counter()
        result = run_calibration(settings, scorer, ordered, Path(tmp), {}, {"bench": True}, names=names,
                                 executor=executor, scorer_factory=scorer_factory)
        seconds = time.perf_counter() - t0
    log.info("end to end: %d events in %.1f s", n_events, seconds)
    return {
        "events": n_events, "seconds": seconds, "events_per_s": n_events / seconds,
        "peak_memory_mb": peak_memory_mb(), "stage_seconds": dict(result.timings_s), "execution": result.execution,
        "thresholds": {str(r): t["threshold"] for r, t in result.thresholds["emulated"].items()},
    }


def compare(samples: Mapping[str, Path], scorer: Scorer, **kwargs) -> dict:
    """:func:`raw_read` then :func:`end_to_end` on the same files, and the ratio of their event rates."""
    raw = raw_read(samples)
    calibration = end_to_end(samples, scorer, **kwargs)
    return {"raw_read": raw, "end_to_end": calibration,
            "ratio": calibration["events_per_s"] / raw["events_per_s"] if raw["events_per_s"] else 0.0}
