"""Throughput benchmark of the scorers on the same events (``gelato bench``, ``make bench``).

This module spans the hls and calibration stages: it times, in one process and on one set of
events, the float Keras model, hls4ml's own ``predict`` (one ctypes call per event, measured on
a subset and extrapolated), the ap_fixed batch driver (also on a subset) and the fast
bit-accurate scorer (every event, median of a few runs), and records events per second, the
ratio to ``predict`` and the peak memory of each.  It checks on the compared events that the
fast scores equal ``predict``'s and the ap_fixed driver's bit for bit, and that one and several
threads agree.  The machine is shared and noisy: only ratios measured in the same run mean
anything, and no speed is asserted by the tests.

Peak memory is the process's resident-set high-water mark during each measurement, reset
before it through ``/proc/self/clear_refs`` (Linux); where that is not possible it is the
process's peak so far (``ru_maxrss``), and the report says which.

The end-to-end section (the calibration from event files to efficiency histograms against
a plain h5py read of the same files, and its peak memory) is measured by
:mod:`gelato.calibration.bench`; this module only renders it (:func:`end_to_end_lines`).
"""

from __future__ import annotations

import json
import logging
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gelato.io import atomic_output, read_events

log = logging.getLogger(__name__)

TARGET_RATIO = 300.0
CLEAR_REFS = Path("/proc/self/clear_refs")
STATUS = Path("/proc/self/status")


@dataclass
class Measurement:
    """One scorer timed on ``events`` events."""

    name: str
    events: int
    seconds: float
    peak_rss_mb: float
    rss_before_mb: float
    note: str = ""

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def _status_mb(field: str) -> float | None:
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def reset_peak_memory() -> bool:
    """Reset the kernel's resident-set high-water mark of this process; False if not possible."""
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def peak_memory_mb() -> float:
    """The resident-set high-water mark (since the last reset) in MiB."""
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class StepMemory:
    """The resident-set high-water mark of each step of a run, reset between steps where Linux allows."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}
        self.resettable = reset_peak_memory()

    def done(self, step: str) -> None:
        """Record the high-water mark of the step just done and reset it for the next."""
        if self.resettable:
            self.peaks[step] = peak_memory_mb()
            reset_peak_memory()

    def process_peak(self) -> float:
        """The process's peak: the largest step's (the resets also reset ``ru_maxrss``), or the
        high-water mark since it started where nothing could be reset."""
        return max(self.peaks.values(), default=0.0) if self.resettable else peak_memory_mb()


def measure(name: str, run: Callable[[], Any], events: int, repeats: int = 1) -> tuple[Measurement, Any]:
    """Time ``run`` (median of ``repeats`` runs) and record its peak memory; returns the measurement and output."""
    reset = reset_peak_memory()
    before = _status_mb("VmRSS") or 0.0
    durations, output = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        output = run()
        durations.append(time.perf_counter() - start)
    note = "" if reset else "peak memory is the process peak so far (no /proc/self/clear_refs)"
    measurement = Measurement(name, events, statistics.median(durations), peak_memory_mb(), before, note)
    log.info("%s: %d events in %.3f s (%.4g events/s)", name, events, measurement.seconds,
             measurement.events_per_second)
    return measurement, output


def benchmark_events(sample: Path, n_events: int | None) -> np.ndarray:
    """The sample's features (float32), cut to ``n_events`` or replicated up to it."""
    features = read_events(sample).features
    if n_events is None or n_events == len(features):
        return np.ascontiguousarray(features)
    if n_events < 1:
        raise ValueError(f"--events must be positive, got {n_events}")
    if len(features) == 0:
        raise ValueError(f"{sample}: no events to benchmark on")
    return np.resize(features, (n_events, features.shape[1]))  # repeats the file's events in order


def _identical(a: np.ndarray, b: np.ndarray) -> dict:
    differ = np.flatnonzero(a != b)
    return {"events": int(len(a)), "mismatches": int(len(differ)), "first_mismatches": differ[:5].tolist()}


def run_benchmark(emulator, events: np.ndarray, sample: str, predict_events: int, ap_fixed_events: int,
                  repeats: int) -> dict:
    """Measure the four scorers on ``events`` from ``sample`` (subsets for the slow two); see the module docstring."""
    n_predict, n_ap_fixed = min(predict_events, len(events)), min(ap_fixed_events, len(events))
    if emulator.fast is None:
        raise ValueError(f"the fast scorer refused this firmware, so there is nothing to benchmark: "
                         f"{emulator.fast_refused}")
    threads = emulator.fast.threads

    fast, fast_scores = measure(f"fast scorer, {threads} thread(s)", lambda: emulator.fast.scores(events), len(events),
                                repeats)
    one, one_scores = measure("fast scorer, 1 thread", lambda: emulator.fast.scores(events, threads=1), len(events),
                              repeats)
    ap_fixed, ap_fixed_scores = measure("ap_fixed batch driver", lambda: emulator.emulated_scores(
        events[:n_ap_fixed], method="ap_fixed"), n_ap_fixed)
    predict, predict_scores = measure("hls4ml predict", lambda: emulator.hls4ml_scores(events[:n_predict]), n_predict)
    floats, _ = measure("float Keras model", lambda: emulator.float_scores(events), len(events))

    rows = [floats, predict, ap_fixed, one, fast]
    return {
        "sample": sample,
        "events": len(events),
        "threads": threads,
        "repeats_fast": repeats,
        "compile": emulator.fast.build_record,
        "measurements": [dict(asdict(m), events_per_second=m.events_per_second,
                              ratio_to_predict=m.events_per_second / predict.events_per_second) for m in rows],
        "scorer_over_predict": fast.events_per_second / predict.events_per_second,
        "target_ratio": TARGET_RATIO,
        "pass": fast.events_per_second / predict.events_per_second >= TARGET_RATIO,
        "bit_exact": {
            "fast_vs_predict": _identical(fast_scores[:n_predict], predict_scores),
            "fast_vs_ap_fixed": _identical(fast_scores[:n_ap_fixed], ap_fixed_scores),
            "threads_vs_one_thread": _identical(fast_scores, one_scores),
        },
        "end_to_end": {"measured": False, "reason": "not requested (--end-to-end)"},
    }


def verdict_line(result: dict) -> str:
    ratio, target = result["scorer_over_predict"], result["target_ratio"]
    return f"scorer/predict = {ratio:.0f} (target >= {target:.0f}): {'PASS' if result['pass'] else 'FAIL'}"


def table_lines(result: dict) -> list[str]:
    """The markdown table of the measurements (the CLI prints it too)."""
    lines = ["| scorer | events | seconds | events/s | ratio to predict | peak RSS [MiB] | RSS before [MiB] |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for m in result["measurements"]:
        lines.append(f"| {m['name']} | {m['events']:,} | {m['seconds']:.3f} | {m['events_per_second']:,.0f} | "
                     f"{m['ratio_to_predict']:.1f} | {m['peak_rss_mb']:.0f} | {m['rss_before_mb']:.0f} |")
    return lines


def write_bench_report(result: dict, reports_dir: Path) -> tuple[Path, Path]:
    """Write ``bench.json`` and ``bench.md`` atomically into ``reports_dir``."""
    json_path, md_path = Path(reports_dir) / "bench.json", Path(reports_dir) / "bench.md"
    with atomic_output(json_path) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    with atomic_output(md_path) as tmp:
        tmp.write_text("\n".join(_markdown(result)) + "\n")
    return json_path, md_path


def _markdown(result: dict) -> list[str]:
    exact = result["bit_exact"]
    compile_record = result["compile"]
    lines = ["# Scorer throughput (`gelato bench`)", "",
             f"{result['events']:,} events of `{result['sample']}`; fast scorer with {result['threads']} "
             f"thread(s), median of {result['repeats_fast']} runs; hls4ml `predict` and the ap_fixed driver on the "
             "first events only (events/s extrapolated from that subset). One run on a shared machine: compare ratios, "
             "not absolute rates.", "", *table_lines(result), "", f"**{verdict_line(result)}**", "",
             "Bit-exact checks on the compared events:", ""]
    for name, check in exact.items():
        lines.append(f"- {name.replace('_', ' ')}: {check['events']:,} events, {check['mismatches']} mismatches")
    lines += ["", f"Fast scorer built with `{compile_record['compiler']}`, flags `{' '.join(compile_record['flags'])}` "
              f"on `{compile_record['cpu']}`.", "",
              "Peak RSS is the process's resident-set high-water mark during each measurement (TensorFlow and "
              "the loaded libraries included); RSS before is where it started."]
    notes = sorted({m["note"] for m in result["measurements"] if m["note"]})
    end_to_end = result["end_to_end"]
    if not end_to_end.get("measured"):
        notes.append(f"End-to-end (HDF5 -> thresholds -> histograms): not measured ({end_to_end['reason']}).")
    else:
        lines += ["", "## End to end", "", "The calibration as it is (HDF5 -> float and bit-accurate scores written to "
                  "score files -> thresholds -> efficiency histograms; no C-simulation, no plots) against a plain h5py "
                  "read of every per-event dataset of the same files.", "", *end_to_end_lines(end_to_end)]
    return lines + [""] + notes if notes else lines


def end_to_end_verdicts(section: dict) -> list[str]:
    """The two verdict lines of the end-to-end section: rate ratio and peak memory, each PASS or FAIL."""
    e2e = section["end_to_end"]
    workers = "" if e2e["execution"].startswith("single process") else " (this process only: Dask workers not included)"
    return [f"end-to-end/raw read = {section['ratio']:.3f} (target >= {section['target_ratio']:.3f}; "
            f"{section['pass_name']}): {'PASS' if section['pass'] else 'FAIL'}",
            f"end-to-end peak memory = {e2e['peak_memory_mb']:.0f} MiB on {e2e['events']:,} events"
            f"{workers}"
            f" (target < {section['target_peak_mb']:.0f} MiB): {'PASS' if section['peak_pass'] else 'FAIL'}"]


def end_to_end_lines(section: dict) -> list[str]:
    """The end-to-end table, its stage times and verdicts (markdown; the CLI prints them too)."""
    raw, e2e = section["raw_read"], section["end_to_end"]
    repeats = section.get("repeats", 1)
    runs = ", ".join(f"{run['ratio']:.3f}" for run in section.get("runs", []))
    median = (f"Median of {repeats} runs of each, read and calibration in turn (seconds and rates: the read's median "
              f"run and the calibration's median run; peak memory the largest of all runs); the ratio of each pair "
              f"of runs: {runs}." if repeats > 1 else
              "One run of each.")
    lines = [median, "", "| step | events | seconds | events/s | peak RSS [MiB] |", "|---|---:|---:|---:|---:|",
             f"| plain h5py read ({raw['megabytes']:,.0f} MB) | {raw['events']:,} | {raw['seconds']:.2f} | "
             f"{raw['events_per_s']:,.0f} | |",
             f"| end to end ({e2e['execution']}) | {e2e['events']:,} | {e2e['seconds']:.2f} | "
             f"{e2e['events_per_s']:,.0f} | {e2e['peak_memory_mb']:.0f} |"]
    stages = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in e2e["stage_seconds"].items())
    samples = ", ".join(f"{p}: `{path}`" for p, path in section["samples"].items())
    peak = ("resident-set high-water mark during the run" if e2e["peak_memory_reset"]
            else "process peak since it started (no /proc/self/clear_refs)")
    return [*lines, "", f"Samples: {samples}.", "", f"Calibration stages: {stages}. Peak memory: {peak}.", "",
            *(f"**{line}**" for line in end_to_end_verdicts(section))]
