"""C-simulation of the generated project with g++, and the bit-exactness report (``gelato csim``).

This module belongs to the hls stage.  It takes real events from the sample files (an
equal share of each file, its first events: events in a file are independent), writes
them into the project's ``tb_data/`` text files with ``%.9g`` (an exact float32 round
trip, so the testbench and the emulator quantize the same number), builds the
hls4ml-generated testbench ``<project>_test.cpp`` together with the firmware C++ using
g++ only (the project carries ``firmware/ap_types``; no vendor tool is involved), runs it
and reads its results.  Then it compares

* C-simulation against the compiled emulation (:class:`FirmwareEmulator`): must be
  identical on every event;
* emulation against the float Keras model: differences quantified (max/mean absolute
  difference, in score LSBs, fraction of events differing by more than one LSB);

counts saturated input words per feature, and writes ``reports/csim.json`` and
``reports/csim.md``.  :func:`run_csim_report` returns the dict that the calibration stage
puts into ``summary.json["bit_exact"]``.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gelato.features import FEATURE_NAMES
from gelato.hls.convert import build_lock
from gelato.hls.emulate import FirmwareEmulator
from gelato.io import Names, display_path, read_events, write_report_pair

log = logging.getLogger(__name__)

TB_INPUT = "tb_data/tb_input_features.dat"
TB_PREDICTIONS = "tb_data/tb_output_predictions.dat"
TB_RESULTS = "tb_data/csim_results.log"
TESTBENCH_BINARY = "gelato_csim"
MAX_LISTED_MISMATCHES = 10


class CsimError(RuntimeError):
    """The testbench could not be built or run, or its output is not what was expected."""


@dataclass
class EventSelection:
    """Events taken for the C-simulation: features (N, 44) float32 and their origin."""

    features: np.ndarray
    sample_names: list[str]
    counts: dict[str, int]

    @property
    def origin(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.counts)), list(self.counts.values()))


def event_shares(available: list[int], n_events: int) -> list[int]:
    """Split ``n_events`` as equally as possible over files holding ``available`` events each."""
    shares = [0] * len(available)
    remaining = min(n_events, sum(available))
    while remaining > 0:
        open_files = [i for i, n in enumerate(available) if shares[i] < n]
        share, extra = divmod(remaining, len(open_files))
        for rank, i in enumerate(open_files):
            take = min(available[i] - shares[i], share + (1 if rank < extra else 0))
            shares[i] += take
            remaining -= take
    return shares


def select_events(sample_files: list[Path], n_events: int, names: Names = None) -> EventSelection:
    """An equal share of ``n_events`` from each file (its first events), in file order.

    A file with fewer events than its share gives all it has; the others make up the rest.
    ``names`` is the feature-name mapping of the shared loader (see ``gelato.layouts``).
    """
    if not sample_files:
        raise FileNotFoundError("no sample files given for the C-simulation (expected data/samples/<process>.h5)")
    samples = [read_events(path, max_events=n_events, names=names) for path in sample_files]
    shares = event_shares([len(sample) for sample in samples], n_events)
    if sum(shares) < n_events:
        log.warning("only %d events in %d sample files; simulating all of them", sum(shares), len(samples))

    blocks = [sample.features[:share] for sample, share in zip(samples, shares)]
    counts = dict(zip(sample_labels([Path(p) for p in sample_files]), shares))
    return EventSelection(np.concatenate(blocks), list(counts), counts)


def sample_labels(paths: list[Path]) -> list[str]:
    """File stems as labels; a stem found in several directories is prefixed with its directory."""
    stems = [path.stem for path in paths]
    return [f"{path.parent.name}/{path.stem}" if stems.count(path.stem) > 1 else path.stem for path in paths]


def write_testbench_data(project_dir: Path, features: np.ndarray, predictions: np.ndarray) -> None:
    """Write the testbench inputs (%.9g, exact for float32) and reference predictions."""
    (project_dir / "tb_data").mkdir(exist_ok=True)
    np.savetxt(project_dir / TB_INPUT, np.asarray(features, dtype=np.float32), fmt="%.9g", delimiter=" ")
    np.savetxt(project_dir / TB_PREDICTIONS, np.asarray(predictions, dtype=np.float64).reshape(-1, 1), fmt="%.17g")


def _run_tool(command: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, check=True, cwd=cwd, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        output = (exc.stdout or "") + (exc.stderr or "")
        raise CsimError(f"{what} failed in {cwd} (exit {exc.returncode}):\n{output[-4000:]}") from exc


def build_testbench(project_dir: Path, project_name: str) -> Path:
    """Compile ``<project>_test.cpp`` + ``firmware/<project>.cpp`` into one binary with g++."""
    compiler = shutil.which("g++")
    if compiler is None:
        raise CsimError("g++ not found on PATH; the C-simulation needs a C++ compiler")
    weights_dir = (project_dir / "firmware" / "weights").resolve()
    command = [
        compiler, "-O2", "-std=c++17", "-Ifirmware/ap_types", "-Ifirmware",
        f'-DWEIGHTS_DIR="{weights_dir}"',
        f"{project_name}_test.cpp", f"firmware/{project_name}.cpp",
        "-o", TESTBENCH_BINARY,
    ]  # fmt: skip
    _run_tool(command, project_dir, "g++ build of the testbench")
    return project_dir / TESTBENCH_BINARY


def run_testbench(project_dir: Path, n_events: int) -> np.ndarray:
    """Run the built testbench on tb_data/ and return its scores (float64, exact decimal)."""
    results = project_dir / TB_RESULTS
    results.unlink(missing_ok=True)
    _run_tool([str((project_dir / TESTBENCH_BINARY).resolve())], project_dir, "C-simulation testbench")

    lines = [line.split() for line in results.read_text().splitlines() if line.strip()]
    if len(lines) != n_events or any(len(fields) != 1 for fields in lines):
        raise CsimError(f"{results}: expected {n_events} lines of one score each, got {len(lines)} lines")
    return np.array([float(fields[0]) for fields in lines], dtype=np.float64)


def compare_exact(csim: np.ndarray, emulated: np.ndarray, selection: EventSelection) -> dict:
    """C-simulation vs emulation: every event must agree to the bit."""
    differ = np.flatnonzero(csim != emulated)
    origin = selection.origin
    first = [
        {"event": int(i), "sample": selection.sample_names[origin[i]], "csim": float(csim[i]),
         "emulation": float(emulated[i])}
        for i in differ[:MAX_LISTED_MISMATCHES]
    ]  # fmt: skip
    return {"events": int(len(csim)), "mismatches": int(len(differ)), "first_mismatches": first}


def compare_float(emulated: np.ndarray, floats: np.ndarray, score_lsb: float) -> dict:
    """Emulation vs float model: absolute differences, also in units of the score LSB."""
    diff = np.abs(emulated - floats)
    in_lsb = diff / score_lsb
    positive = floats > 0
    float32_ulp = 2 * np.spacing(np.abs(floats).astype(np.float32)).astype(np.float64)  # float model's own rounding
    relative = diff[positive] / floats[positive]
    return {
        "events": int(len(diff)),
        "score_lsb": score_lsb,
        "max_abs_diff": float(diff.max(initial=0.0)),
        "mean_abs_diff": float(diff.mean()) if len(diff) else 0.0,
        "max_abs_diff_lsb": float(in_lsb.max(initial=0.0)),
        "mean_abs_diff_lsb": float(in_lsb.mean()) if len(diff) else 0.0,
        "median_rel_diff": float(np.median(relative)) if len(relative) else 0.0,
        "max_rel_diff": float(relative.max(initial=0.0)),
        "frac_identical": float(np.mean(diff == 0)) if len(diff) else 0.0,
        "frac_differ_more_than_1lsb": float(np.mean(in_lsb > 1)) if len(diff) else 0.0,
        "frac_differ_beyond_float32": float(np.mean(diff > float32_ulp)) if len(diff) else 0.0,
        "mean_float_score": float(floats.mean()) if len(diff) else 0.0,
    }


def run_csim_report(emulator: FirmwareEmulator, sample_files: list[Path], reports_dir: Path | None,
                    n_events: int = 10000, names: Names = None) -> dict:
    """Run the g++ C-simulation on real events and write reports/csim.{json,md}; see module docstring.

    With ``reports_dir=None`` nothing is written: the caller writes the result later with
    :func:`write_csim_report` (``gelato calibrate`` does, beside its own report, so an interrupted
    run leaves the previous report folder consistent).
    """
    project_dir = emulator.project_dir
    project_name = emulator.config["project_name"]
    selection = select_events([Path(p) for p in sample_files], n_events, names)
    features = selection.features

    start = time.perf_counter()
    emulated = emulator.emulated_scores(features)
    emulation_seconds = time.perf_counter() - start
    floats = emulator.float_scores(features)
    with build_lock(project_dir):  # tb_data/ and the binary are shared by every run in this project
        write_testbench_data(project_dir, features, floats)
        start = time.perf_counter()
        build_testbench(project_dir, project_name)
        build_seconds = time.perf_counter() - start
        start = time.perf_counter()
        csim = run_testbench(project_dir, len(features))
        run_seconds = time.perf_counter() - start

    saturation = emulator.input_saturation(features)
    result = {
        "csim_vs_emulation": compare_exact(csim, emulated, selection),
        "emulation_vs_float": compare_float(emulated, floats, emulator.score_type.lsb),
        "input_saturation": {name: int(n) for name, n in zip(FEATURE_NAMES, saturation)},
        "events_per_sample": selection.counts,
        "score_type": str(emulator.score_type),
        "project_dir": display_path(project_dir),
        "timing_s": {"testbench_build": round(build_seconds, 2), "testbench_run": round(run_seconds, 2),
                     "emulation": round(emulation_seconds, 3), "conversion": round(emulator.project.seconds, 2)},
        "emulation_events_per_s": round(len(features) / emulation_seconds, 1) if emulation_seconds > 0 else None,
    }  # fmt: skip
    if reports_dir is not None:
        write_csim_report(result, Path(reports_dir))
    mismatches = result["csim_vs_emulation"]["mismatches"]
    log.info("C-simulation vs emulation: %d events, %d mismatches", len(features), mismatches)
    return result


def write_csim_report(result: dict, reports_dir: Path) -> None:
    """Write ``csim.json`` and a readable ``csim.md`` beside it."""
    write_report_pair(reports_dir, "csim", result, _markdown(result))


def _markdown(result: dict) -> str:
    exact, approx, timing = result["csim_vs_emulation"], result["emulation_vs_float"], result["timing_s"]
    verdict = "identical on every event" if exact["mismatches"] == 0 else f"**{exact['mismatches']} MISMATCHES**"
    lines = [
        "# C-simulation and bit-exactness",
        "",
        f"Project `{result['project_dir']}`; score type `{result['score_type']}` "
        f"(LSB {approx['score_lsb']:.3g}).",
        "",
        "## C-simulation (g++ testbench) vs compiled emulation",
        "",
        f"{exact['events']} events: {verdict}.",
        "",
        "| sample | events |",
        "|---|---:|",
        *[f"| {name} | {count} |" for name, count in result["events_per_sample"].items()],
        "",
    ]
    if exact["first_mismatches"]:
        lines += ["| event | sample | csim | emulation |", "|---:|---|---:|---:|"]
        for m in exact["first_mismatches"]:
            lines.append(f"| {m['event']} | {m['sample']} | {m['csim']!r} | {m['emulation']!r} |")
        lines.append("")
    lines += [
        "## Emulation (fixed point) vs float Keras model",
        "",
        "| quantity | value |",
        "|---|---:|",
        f"| max abs diff | {approx['max_abs_diff']:.6g} ({approx['max_abs_diff_lsb']:.4g} LSB) |",
        f"| mean abs diff | {approx['mean_abs_diff']:.6g} ({approx['mean_abs_diff_lsb']:.4g} LSB) |",
        f"| median relative diff | {approx['median_rel_diff']:.3g} |",
        f"| max relative diff | {approx['max_rel_diff']:.3g} |",
        f"| fraction identical | {approx['frac_identical']:.4f} |",
        f"| fraction differing by > 1 LSB | {approx['frac_differ_more_than_1lsb']:.4f} |",
        f"| fraction differing by > 2 float32 ulp (beyond the float model's own rounding) | "
        f"{approx['frac_differ_beyond_float32']:.4f} |",
        f"| mean float score | {approx['mean_float_score']:.6g} |",
        "",
        "## Input saturation (raw or scaled word clipped), events per feature",
        "",
    ]
    saturated = {name: n for name, n in result["input_saturation"].items() if n}
    if saturated:
        lines += ["| feature | events |", "|---|---:|", *[f"| {k} | {v} |" for k, v in saturated.items()]]
    else:
        lines.append("No input word saturated.")
    lines += [
        "",
        "## Timing",
        "",
        f"testbench build {timing['testbench_build']} s, run {timing['testbench_run']} s; "
        f"emulation {timing['emulation']} s ({result['emulation_events_per_s']} events/s); "
        f"conversion (or reuse) {timing['conversion']} s.",
        "",
    ]
    return "\n".join(lines)
