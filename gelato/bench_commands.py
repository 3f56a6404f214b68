"""The ``gelato bench`` subcommand (``make bench``): scorer throughput on the same events.

Prints a table of events per second, ratio to hls4ml's ``predict`` and peak memory for the
float model, ``predict``, the ap_fixed batch driver and the fast scorer, the bit-exact checks,
and the verdict ``scorer/predict = X (target >= 300): PASS|FAIL``; then (unless
``--no-end-to-end``) the calibration as it is on the sample file against a plain h5py read of
it, with the verdict ``end-to-end/raw read = X (target >= 0.333): PASS|FAIL``
(``--end-to-end-events N`` runs it on a file of the sample's events replicated to N, e.g. the
10M-event peak-memory run).  Writes ``bench.json`` and ``bench.md`` into ``--reports``.

Exit status 0 when the fast scores equal ``predict``'s and the ap_fixed driver's on every
compared event (whatever the verdicts), 1 when any differs, 2 on a usage error.  The
measurement itself is :mod:`gelato.bench`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from gelato.hls.commands import DEFAULT_BUILD, DEFAULT_REPORTS, _common

DEFAULT_SAMPLE = Path("data/samples/zerobias.h5")
EXIT_MISMATCH = 1


def register(subparsers) -> None:
    """Add ``gelato bench`` to the CLI."""
    p = subparsers.add_parser("bench", help="throughput of float model, hls4ml predict, ap_fixed driver, fast scorer",
                              description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", ""))
    _common(p)
    p.add_argument("--sample", type=Path, default=DEFAULT_SAMPLE, help="event file to score (default: %(default)s)")
    p.add_argument("--events", type=int, default=None,
                   help="events to score: fewer than the file cuts it, more replicates it (default: the whole file)")
    p.add_argument("--predict-events", type=int, default=20000,
                   help="events for hls4ml predict, extrapolated (default: %(default)s)")
    p.add_argument("--ap-fixed-events", type=int, default=50000,
                   help="events for the ap_fixed batch driver, extrapolated (default: %(default)s)")
    p.add_argument("--threads", type=int, default=None, help="fast-scorer threads (default: the usable cores)")
    p.add_argument("--repeats", type=int, default=3, help="fast-scorer runs; the median is kept (default: %(default)s)")
    p.add_argument("--end-to-end", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the calibration (file -> scores -> thresholds -> histograms) against a plain "
                        "h5py read (default: on)")
    p.add_argument("--end-to-end-events", type=int, default=None,
                   help="run the end-to-end section on the sample replicated to this many events (default: the file)")
    p.add_argument("--calibration", type=Path, default=None,
                   help="calibration config for the end-to-end section (default: configs/calibration.yaml)")
    p.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="where bench.md/bench.json go")
    p.set_defaults(func=bench_command, out=DEFAULT_BUILD)


def bench_command(args: argparse.Namespace) -> int:
    from gelato.bench import benchmark_events, run_benchmark, table_lines, verdict_line, write_bench_report
    from gelato.hls.emulate import FirmwareEmulator

    for name in ("predict_events", "ap_fixed_events", "repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    events = benchmark_events(args.sample, args.events)
    emulator = FirmwareEmulator(args.model, args.config, args.out, threads=args.threads)
    result = run_benchmark(emulator, events, str(args.sample), args.predict_events, args.ap_fixed_events,
                           args.repeats)

    print(f"{len(events):,} events from {args.sample}; predict on the first {min(args.predict_events, len(events)):,} "
          f"and the ap_fixed driver on the first {min(args.ap_fixed_events, len(events)):,} (events/s extrapolated)")
    print("\n".join(table_lines(result)))
    for name, check in result["bit_exact"].items():
        print(f"{name.replace('_', ' ')}: {check['events']:,} events, {check['mismatches']} mismatches")
    print(f"compiled with {' '.join(result['compile']['flags'])} ({result['compile']['compiler']})")
    print(verdict_line(result))
    if args.end_to_end:
        result["end_to_end"] = _end_to_end(args, emulator)
    json_path, md_path = write_bench_report(result, args.reports)
    print(f"wrote {md_path} and {json_path}")
    return EXIT_MISMATCH if any(check["mismatches"] for check in result["bit_exact"].values()) else 0


def _end_to_end(args: argparse.Namespace, emulator) -> dict:
    from gelato.bench import benchmark_events, end_to_end_lines, end_to_end_verdict, end_to_end_section
    from gelato.io import write_events

    work = Path(args.out) / "bench"
    shutil.rmtree(work, ignore_errors=True)  # score files of an earlier run: never reused
    sample = args.sample
    if args.end_to_end_events is not None:
        sample = write_events(work / "replicated.h5", benchmark_events(args.sample, args.end_to_end_events))
    try:
        section = end_to_end_section(emulator, sample, args.calibration, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"end to end on {sample}:")
    print("\n".join(end_to_end_lines(section)))
    print(end_to_end_verdict(section))
    return section
