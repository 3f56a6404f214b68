"""Subcommands of the calibration stage (registered on the `gelato` CLI): ``gelato calibrate``.

``gelato calibrate`` validates its inputs, builds the firmware emulation (``gelato.hls``),
runs the C-simulation check on real events, then scores every sample, sets thresholds
for the configured added unique rates, measures efficiencies and writes ``reports/``.
This module holds only the CLI layer (arguments, input checks, progress bars, printing);
the work is in :mod:`.pipeline` and :mod:`.report`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import time
from pathlib import Path

from gelato.calibration.config import DEFAULT_CONFIG, CalibrationSettings, load_settings
from gelato.calibration.rates import PASS_RULE
from gelato.io import atomic_output
from gelato.validation import require_valid

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    """Add this stage's subcommand to the CLI: ``calibrate`` (its benchmark is part of ``gelato bench``)."""
    p = subparsers.add_parser(
        "calibrate", help="firmware scores, thresholds for added rates, efficiencies, reports/",
        description="Score the samples with the bit-accurate firmware emulation, set thresholds for added "
                    "unique rates on the zero-bias sample, measure efficiencies, and write reports/.",
    )
    p.add_argument("--config", type=Path, default=Path("hls/configs/default.yaml"), help="hls firmware config (YAML; default: %(default)s)")
    p.add_argument("--model", type=Path, default=Path("model/default/firmware_model.h5"), help="firmware Keras model (default: %(default)s)")
    p.add_argument("--samples", type=Path, default=Path("data/samples"), help="folder of <process>.h5 event files (default: %(default)s)")
    p.add_argument("--build", type=Path, default=Path("build"), help="build folder: hls project, scores/ (default: %(default)s)")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="report folder (default: %(default)s)")
    p.add_argument("--names", type=Path, default=None, help="feature-name mapping YAML for other file layouts "
                   "(see docs/inputs.md)")
    p.add_argument("--calibration", type=Path, default=DEFAULT_CONFIG, help=f"calibration config (default {DEFAULT_CONFIG})")
    add_cluster_arguments(p)
    p.set_defaults(func=run_calibrate)


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def add_cluster_arguments(p: argparse.ArgumentParser) -> None:
    """``--scheduler`` / ``--local-cluster``: where the chunk tasks run (default: this process)."""
    where = p.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="ADDRESS", default=None,
                       help="run the chunk tasks on a running Dask scheduler, e.g. tcp://10.0.0.5:8786 (workers need "
                            "the samples and the build folder under the same paths)")
    where.add_argument("--local-cluster", metavar="N", type=positive_int, default=None,
                       help="start a Dask LocalCluster of N worker processes on 127.0.0.1 for the chunk tasks")


def validate_inputs(args: argparse.Namespace, settings: CalibrationSettings) -> dict[str, Path]:
    """Step 1: every input exists and every sample is valid; returns the sample file of each process.

    Samples are checked by :func:`gelato.validation.require_valid` (layout, shapes, dtypes,
    values), which names the file and dataset of every problem.
    """
    for label, path in (("hls config", args.config), ("firmware model", args.model)):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {label} not found")
    if args.names is not None and not args.names.is_file():
        raise FileNotFoundError(f"{args.names}: feature-name mapping not found")
    expected = f"one <process>.h5 per process of {', '.join(settings.all_processes)}"
    if args.samples.is_file():
        raise ValueError(f"{args.samples}: is a file; --samples takes a folder holding {expected}")
    if not args.samples.is_dir():
        raise FileNotFoundError(f"{args.samples}: samples folder not found (run `make data`, or pass --samples)")

    samples = {p: args.samples / f"{p}.h5" for p in settings.all_processes}
    not_files = [str(path) for path in samples.values() if path.exists() and not path.is_file()]
    if not_files:
        raise ValueError(f"{', '.join(not_files)}: not a file (a folder?); expected {expected}")
    missing = [str(path) for path in samples.values() if not path.exists()]
    if missing:
        raise FileNotFoundError(f"sample file(s) missing: {', '.join(missing)} (expected {expected})")
    ignored = sorted(path.name for path in args.samples.glob("*.h5") if path.stem not in samples)
    if ignored:
        log.warning("%s: ignoring %s: not a process of the calibration config %s", args.samples,
                    ", ".join(ignored), settings.source)
    counts = require_valid(list(samples.values()), args.names)
    for process, path in samples.items():
        log.info("%s: %d events in %s", process, counts[path], path)
    return samples


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _progress_factory():
    """tqdm bars for the pipeline, off when stderr is not a terminal."""
    from tqdm import tqdm

    disable = not sys.stderr.isatty()

    def make(label: str, total: int):
        bar = tqdm(total=total, desc=label, unit="ev", disable=disable, leave=False)
        return bar.update, bar.close

    return make


def run_calibrate(args: argparse.Namespace) -> int:
    """`gelato calibrate`: see the module docstring and docs/calibration.md."""
    from gelato.bench import StepMemory
    from gelato.calibration.execution import open_executor

    memory = StepMemory()
    t_start = time.perf_counter()
    settings = load_settings(args.calibration)
    samples = validate_inputs(args, settings)
    with open_executor(args.scheduler, args.local_cluster) as executor:  # a bad scheduler fails now, not later
        return _calibrate(args, settings, samples, executor, t_start, memory)


def _calibrate(args: argparse.Namespace, settings: CalibrationSettings, samples: dict[str, Path], executor,
               t_start: float, memory) -> int:
    """Steps 2-6 of `gelato calibrate` with the chunk tasks' executor already open; ``memory`` is a
    :class:`gelato.bench.StepMemory`."""
    from gelato.calibration.findings import findings_for_result
    from gelato.calibration.pipeline import run_calibration
    from gelato.calibration.report import write_report
    from gelato.hls.csim import run_csim_report
    from gelato.hls.emulate import FirmwareEmulator

    t0 = time.perf_counter()
    emulator = FirmwareEmulator(args.model, args.config, args.build / "hls")
    t_build = time.perf_counter() - t0
    memory.done("emulator_build")
    print(f"firmware emulation ready ({t_build:.0f} s); score type {emulator.score_type}")

    t0 = time.perf_counter()
    bit_exact = run_csim_report(emulator, list(samples.values()), None, n_events=settings.csim_events,
                                names=args.names)  # csim.{json,md} are written with the report, at the end
    t_csim = time.perf_counter() - t0
    memory.done("csim")
    print(f"C-simulation check done ({t_csim:.0f} s)")

    digest_extra = {"model": _file_digest(args.model), "hls_config": _file_digest(args.config),
                    "score_type": str(emulator.score_type), "names": _file_digest(args.names) if args.names else None}
    from gelato.calibration.streaming import EmulatorFactory

    factory = EmulatorFactory(args.model.resolve(), args.config.resolve(), (args.build / "hls").resolve())
    print(f"chunk tasks run in: {executor.description}")
    result = run_calibration(settings, emulator, samples, args.build, bit_exact, digest_extra, _progress_factory(),
                             names=args.names, executor=executor, scorer_factory=factory)
    memory.done("scoring")
    result.inputs = {"model": str(args.model), "hls_config": str(args.config), "samples": str(args.samples)}
    result.timings_s.update({"emulator_build": t_build, "csim": t_csim})
    t0 = time.perf_counter()
    findings = findings_for_result(result)
    result.timings_s["findings"] = time.perf_counter() - t0
    memory.done("findings")
    t0 = time.perf_counter()
    write_report(result, args.reports, findings)
    result.timings_s["report"] = time.perf_counter() - t0
    memory.done("report")
    result.timings_s["total"] = time.perf_counter() - t_start
    result.timings_s["peak_memory_mb"] = memory.process_peak()
    result.timings_s.update({f"peak_memory_mb_{step}": mb for step, mb in memory.peaks.items()})
    with atomic_output(args.reports / "calibration" / "timings.json") as tmp:
        tmp.write_text(json.dumps({k: round(v, 2) for k, v in result.timings_s.items()}, indent=2) + "\n")

    _print_summary(result, args.reports)
    return 0


def _print_summary(result, reports: Path) -> None:
    s = result.settings
    print(f"rule: pass if score {PASS_RULE} threshold; f_bc = {s.bunch_crossing_hz:.6g} Hz; "
          f"menu rate on {s.reference_process}: {result.menu_rates['total']['rate_hz']:.4g} Hz "
          f"({result.menu_rates['source']})")
    print(f"{'rate [Hz]':>10} {'threshold':>12} {'unique [Hz]':>12} {'n_pass':>7} {'total [Hz]':>11} {'float thr':>12}")
    for rate in s.rates_hz:
        t, f = result.thresholds["emulated"][rate], result.thresholds["float"][rate]
        flag = "  (low statistics)" if t["warning"] else ""
        print(f"{rate:>10} {t['threshold']:>12.6g} {t['rate_hz']:>12.4g} {t['n_pass']:>7} "
              f"{t['total_rate_hz']:>11.4g} {f['threshold']:>12.6g}{flag}")
    times = ", ".join(f"{k} {v:.0f} s" for k, v in result.timings_s.items() if not k.startswith("peak_memory_mb"))
    print(f"timings: {times}")
    steps = {k.removeprefix("peak_memory_mb_"): v for k, v in result.timings_s.items()
             if k.startswith("peak_memory_mb_")}
    by_step = f"; by step: {', '.join(f'{k} {v:.0f}' for k, v in steps.items())} MiB" if steps else ""
    print(f"peak memory of this process: {result.timings_s['peak_memory_mb']:.0f} MiB (resident high-water mark; "
          f"workers not included){by_step}")
    print(f"report: {reports / 'index.md'}")
