"""``gelato bench-calibration``: end-to-end calibration rate and peak memory versus a raw h5py read (calibration stage).

Runs :func:`gelato.calibration.bench.compare` on a samples folder (one ``<process>.h5``
per process of the calibration config, e.g. a 10-million-event zero-bias file beside the
six physics samples) and prints events per second, peak memory and the ratio to the raw
read rate.  Figures are measurements on a shared machine, not pass/fail checks; the
target of issue 7 (end to end at least a third of the raw read rate, peak under 1 GB) is
printed beside them.  This module is the CLI layer only.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from gelato.calibration.config import DEFAULT_CONFIG, load_settings

log = logging.getLogger(__name__)

#: Targets the figures are printed against (issue 7).
TARGET_RATIO = 1 / 3
TARGET_PEAK_MB = 1024


def register(subparsers) -> None:
    """Add ``gelato bench-calibration`` to the CLI."""
    from gelato.calibration.commands import add_cluster_arguments

    p = subparsers.add_parser(
        "bench-calibration", help="end-to-end calibration events/s and peak memory versus a plain h5py read",
        description="Score, threshold and histogram the samples from scratch (no C-simulation, no plots) and read "
                    "the same files with h5py alone; print events/s, peak memory and their ratio.",
    )
    for flag, default, meaning in (("--samples", "data/samples", "folder of <process>.h5"),
                                   ("--config", "hls/configs/default.yaml", "hls firmware config"),
                                   ("--model", "model/default/firmware_model.h5", "firmware Keras model"),
                                   ("--build", "build", "build folder of the hls project"),
                                   ("--calibration", str(DEFAULT_CONFIG), "calibration config")):
        p.add_argument(flag, type=Path, default=Path(default), help=f"{meaning} (default: %(default)s)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    add_cluster_arguments(p)
    p.set_defaults(func=run_bench_calibration)


def run_bench_calibration(args: argparse.Namespace) -> int:
    """`gelato bench-calibration`: see the module docstring."""
    from gelato.calibration.bench import compare
    from gelato.calibration.execution import open_executor
    from gelato.calibration.streaming import EmulatorFactory
    from gelato.hls.emulate import FirmwareEmulator

    settings = load_settings(args.calibration)
    samples = {p: args.samples / f"{p}.h5" for p in settings.all_processes}
    missing = [str(path) for path in samples.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"sample file(s) missing: {', '.join(missing)} (expected one <process>.h5 per process)")
    emulator = FirmwareEmulator(args.model, args.config, args.build / "hls")
    factory = EmulatorFactory(args.model.resolve(), args.config.resolve(), (args.build / "hls").resolve())

    with open_executor(args.scheduler, args.local_cluster) as executor:
        figures = compare(samples, emulator, settings=settings, work_dir=args.build, executor=executor,
                          scorer_factory=factory)
    _print(figures)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _print(figures: dict) -> None:
    raw, e2e = figures["raw_read"], figures["end_to_end"]
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in e2e["stage_seconds"].items())
    for label, run, extra in (("raw h5py read:", raw, f"({raw['megabytes']:.0f} MB)"),
                              ("end to end:", e2e, f"[{e2e['execution']}; {stages}]")):
        print(f"{label:<15} {run['events']:>11,} events in {run['seconds']:7.1f} s = "
              f"{run['events_per_s']:>11,.0f} events/s {extra}")
    print(f"ratio end to end / raw read: {figures['ratio']:.3f} (target >= {TARGET_RATIO:.3f}: "
          f"{'met' if figures['ratio'] >= TARGET_RATIO else 'NOT met'})")
    print(f"peak memory of this process: {e2e['peak_memory_mb']:.0f} MB (target < {TARGET_PEAK_MB} MB: "
          f"{'met' if e2e['peak_memory_mb'] < TARGET_PEAK_MB else 'NOT met'}; ru_maxrss, workers not included)")
