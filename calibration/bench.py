"""End-to-end calibration throughput and memory against a plain h5py read of the same files (calibration stage).

:func:`end_to_end` runs the calibration's own passes on given sample files (HDF5 -> float
and emulated scores -> thresholds -> efficiency histograms; no C-simulation check, no
plots) into a fresh scores folder, so every event is scored, and returns events per
second and the peak resident memory of this process during the run.  :func:`raw_read`
reads the same files with h5py alone, every per-event dataset chunk by chunk, for the
reference rate.  :func:`compare` does both, alternately and several times, and gives the
ratio of their median rates.
:func:`replicate_sample` writes a large input (e.g. 10 million events) by repeating a
sample's events, block by block, so it never holds more than one block in memory.

These functions only measure and return numbers; ``gelato bench`` prints them.  Peak
memory is the resident-set high-water mark of this process, reset before the run where
Linux allows it (see :func:`gelato.bench.reset_peak_memory`); with a Dask executor the
workers' memory is not included.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import h5py
import numpy as np

from gelato.bench import peak_memory_mb, reset_peak_memory
from gelato.calibration import kernels
from gelato.calibration.config import CalibrationSettings, load_settings
from gelato.calibration.pipeline import run_calibration
from gelato.calibration.scoring import Names, Scorer
from gelato.io import atomic_output, count_events

log = logging.getLogger(__name__)

#: Issue-7 targets the figures are judged against.
TARGET_RATIO = 1 / 3
TARGET_PEAK_MB = 1024.0


def _per_event_datasets(f: h5py.File) -> tuple[int, list[h5py.Dataset]]:
    datasets: list[h5py.Dataset] = []
    f.visititems(lambda name, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
    n = max((d.shape[0] for d in datasets if d.ndim >= 1), default=0)
    return n, [d for d in datasets if d.ndim >= 1 and d.shape[0] == n]


def raw_read(samples: Mapping[str, Path], chunk_events: int = 65536) -> dict:
    """Read every per-event dataset of every file with h5py, ``chunk_events`` rows at a time; events/s."""
    n_events, n_bytes, t0 = 0, 0, time.perf_counter()
    for path in samples.values():
        with h5py.File(path, "r") as f:
            n, per_event = _per_event_datasets(f)
            for start in range(0, n, chunk_events):
                n_bytes += sum(d[start : start + chunk_events].nbytes for d in per_event)
            n_events += n
    seconds = time.perf_counter() - t0
    return {"events": n_events, "seconds": seconds, "events_per_s": n_events / seconds if seconds > 0 else 0.0,
            "megabytes": n_bytes / 1e6}


def replicate_sample(source: Path, out: Path, n_events: int, block_events: int = 65536) -> Path:
    """Write ``out``: every per-event dataset of ``source`` repeated in event order up to ``n_events`` rows.

    Written block by block with the source's storage (chunks, compression, shuffle) and
    attributes, ``n_events`` updated; memory holds the source's columns and one block.
    """
    if n_events < 1:
        raise ValueError(f"the replicated sample needs at least one event, got {n_events}")
    with h5py.File(source, "r") as f, atomic_output(Path(out)) as tmp, h5py.File(tmp, "w") as g:
        n_source, per_event = _per_event_datasets(f)
        if n_source == 0:
            raise ValueError(f"{source}: no per-event dataset with events to replicate")
        g.attrs.update(dict(f.attrs))
        g.attrs["n_events"] = n_events
        for dataset in per_event:
            values = dataset[()]
            chunks = (min(dataset.chunks[0], n_events), *dataset.chunks[1:]) if dataset.chunks else None
            copy = g.create_dataset(dataset.name, shape=(n_events, *dataset.shape[1:]), dtype=dataset.dtype,
                                    chunks=chunks, compression=dataset.compression,
                                    compression_opts=dataset.compression_opts, shuffle=dataset.shuffle)
            copy.attrs.update(dict(dataset.attrs))
            for start in range(0, n_events, block_events):
                stop = min(start + block_events, n_events)
                copy[start:stop] = values[np.arange(start, stop) % n_source]
    log.info("wrote %s: %d events replicated from %s (%d events)", out, n_events, source, n_source)
    return Path(out)


def end_to_end(
    samples: Mapping[str, Path],
    scorer: Scorer,
    settings: CalibrationSettings | None = None,
    work_dir: Path | None = None,
    names: Names = None,
    executor=None,
    scorer_factory=None,
) -> dict:
    """Calibrate ``samples`` from scratch; events/s and peak memory.

    ``samples`` must hold the reference process of the settings; the others present are
    measured as efficiency processes, in the settings' order.  Scores go to a temporary
    folder in ``work_dir`` (removed afterwards), so nothing is reused.  Returns ``events``,
    ``seconds``, ``events_per_s``, ``peak_memory_mb``, ``peak_memory_reset`` (False: the
    peak is the process's since it started), ``stage_seconds``, ``execution`` and the
    emulated ``thresholds`` per rate.
    """
    settings = settings or load_settings()
    if settings.reference_process not in samples:
        raise ValueError(f"no sample for the reference process {settings.reference_process!r}; "
                         f"got {', '.join(samples) or 'none'}")
    unknown = [p for p in samples if p not in settings.all_processes]
    if unknown:
        raise ValueError(f"samples {', '.join(unknown)} are no process of {settings.source}; expected some of "
                         f"{', '.join(settings.all_processes)}")
    ordered = {p: Path(samples[p]) for p in settings.all_processes if p in samples}
    n_events = sum(count_events(path, names) for path in ordered.values())

    kernels.library()  # built once per machine (g++, about 1 s): not part of any calibration pass
    with tempfile.TemporaryDirectory(prefix="gelato-bench-", dir=work_dir) as tmp:
        reset = reset_peak_memory()
        t0 = time.perf_counter()
        result = run_calibration(settings, scorer, ordered, Path(tmp), {}, {"bench": True}, names=names,
                                 executor=executor, scorer_factory=scorer_factory)
        seconds = time.perf_counter() - t0
        peak = peak_memory_mb()
    log.info("end to end: %d events in %.1f s, peak %.0f MiB", n_events, seconds, peak)
    return {
        "events": n_events, "seconds": seconds, "events_per_s": n_events / seconds,
        "peak_memory_mb": peak, "peak_memory_reset": reset, "stage_seconds": dict(result.timings_s),
        "execution": result.execution,
        "thresholds": {str(r): t["threshold"] for r, t in result.thresholds["emulated"].items()},
    }


def compare(samples: Mapping[str, Path], scorer: Scorer, repeats: int = 1, **kwargs) -> dict:
    """:func:`raw_read` then :func:`end_to_end` on the same files, ``repeats`` times in turn; ratio and verdicts.

    On a shared machine one run of a fraction of a second is at the mercy of its
    neighbours, so the read and the calibration alternate ``repeats`` times and the ratio
    is that of their median rates; every run is kept (``runs``), the peak memory is the
    largest of all, and every run must give the same thresholds (the calibration is
    deterministic; a difference raises).
    """
    if repeats < 1:
        raise ValueError(f"the end-to-end comparison needs at least 1 run, got {repeats}")
    raws, calibrations = [], []
    for _ in range(repeats):
        raws.append(raw_read(samples))
        calibrations.append(end_to_end(samples, scorer, **kwargs))
        if calibrations[-1]["thresholds"] != calibrations[0]["thresholds"]:
            raise RuntimeError(f"end-to-end run {len(calibrations)} gave thresholds {calibrations[-1]['thresholds']}, "
                               f"run 1 gave {calibrations[0]['thresholds']}; expected identical runs")
    raw, calibration = _median_run(raws), _median_run(calibrations)
    calibration["peak_memory_mb"] = max(run["peak_memory_mb"] for run in calibrations)
    ratio = calibration["events_per_s"] / raw["events_per_s"] if raw["events_per_s"] else 0.0
    return {"samples": {p: str(path) for p, path in samples.items()}, "raw_read": raw, "end_to_end": calibration,
            "repeats": repeats, "runs": [{"raw_read_s": r["seconds"], "end_to_end_s": c["seconds"],
                                          "ratio": c["events_per_s"] / r["events_per_s"] if r["events_per_s"] else 0.0}
                                         for r, c in zip(raws, calibrations)],
            "ratio": ratio, "target_ratio": TARGET_RATIO, "pass": ratio >= TARGET_RATIO,
            "target_peak_mb": TARGET_PEAK_MB, "peak_pass": calibration["peak_memory_mb"] < TARGET_PEAK_MB}


def _median_run(runs: list[dict]) -> dict:
    """The run of median duration (the lower middle one for an even count), as a copy."""
    return dict(sorted(runs, key=lambda run: run["seconds"])[(len(runs) - 1) // 2])
