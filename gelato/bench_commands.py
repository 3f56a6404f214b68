"""The ``gelato bench`` subcommand (``make bench``): scorer throughput on the same events.

Prints a table of events per second, ratio to hls4ml's ``predict`` and peak memory for the
float model, ``predict``, the ap_fixed batch driver and the fast scorer, the bit-exact checks,
and the verdict ``scorer/predict = X (target >= 300): PASS|FAIL``; then (unless
``--no-end-to-end``) the calibration as it is on the sample and the other processes' files in
``--samples`` against a plain h5py read of the same files
(``gelato.calibration.bench.compare``), with the verdicts
``end-to-end/raw read = X (target >= 0.333; which pass): PASS|FAIL`` and
``end-to-end peak memory = M MiB on N events (target < 1024 MiB): PASS|FAIL``.
``--end-to-end-events N`` replaces the sample by its events repeated to N (e.g. the
10M-event peak-memory run, ``make bench-10m``), written block by block into ``--work``.
Writes ``bench.json`` and ``bench.md`` into ``--reports``.

Exit status 0 when the fast scores equal ``predict``'s and the ap_fixed driver's on every
compared event (whatever the verdicts), 1 when any differs, 2 on a usage error.  The
measurement itself is :mod:`gelato.bench`.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from gelato.calibration.commands import add_cluster_arguments
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
                   help="also time the calibration (files -> scores -> thresholds -> histograms) against a plain "
                        "h5py read (default: on)")
    p.add_argument("--samples", type=Path, default=None,
                   help="folder whose <process>.h5 files join the end-to-end run beside --sample (default: the folder "
                        "of --sample)")
    p.add_argument("--end-to-end-events", type=int, default=None,
                   help="end to end on the sample's events repeated to this many (default: the file as it is)")
    p.add_argument("--work", type=Path, default=None,
                   help="folder for the replicated sample and the temporary score files (default: OUT/../bench)")
    p.add_argument("--calibration", type=Path, default=None,
                   help="calibration config for the end-to-end section (default: configs/calibration.yaml)")
    p.add_argument("--end-to-end-repeats", type=int, default=5,
                   help="runs of the plain read and of the calibration, in turn; the ratio is that of their medians "
                        "(default: %(default)s)")
    p.add_argument("--chunk-threads", type=int, default=None,
                   help="threads for the end-to-end chunk tasks in this process (default: the usable cores, at most 4)")
    p.add_argument("--reports", type=Path, default=DEFAULT_REPORTS,
                   help="where bench.md/bench.json go (default: %(default)s)")
    add_cluster_arguments(p)
    p.set_defaults(func=bench_command, out=DEFAULT_BUILD)


def bench_command(args: argparse.Namespace) -> int:
    from gelato.bench import benchmark_events, run_benchmark, table_lines, verdict_line, write_bench_report
    from gelato.hls.emulate import FirmwareEmulator

    for name in ("predict_events", "ap_fixed_events", "repeats", "end_to_end_repeats"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not args.end_to_end and (args.scheduler or args.local_cluster):
        raise ValueError("--scheduler and --local-cluster run the end-to-end section, which --no-end-to-end skips")
    for name in ("threads", "chunk_threads", "end_to_end_events"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    from gelato.validation import require_valid

    _writable_folder(args.reports, "--reports")
    others = _efficiency_samples(args) if args.end_to_end else {}
    # names the file and dataset of any problem, before minutes of benchmarking; values outside
    # the physical range (the firmware's edge cases) are scored like any others
    n_file = require_valid([Path(args.sample), *others.values()], physical=False)[Path(args.sample)]
    events = benchmark_events(args.sample, args.events)
    if args.end_to_end and args.end_to_end_events is not None and args.end_to_end_events < n_file:
        raise ValueError(f"--end-to-end-events {args.end_to_end_events:,} is fewer than the {n_file:,} events "
                         f"of {args.sample}; the end-to-end sample repeats that file, it never cuts it")
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
        from gelato.malloc import release_free_memory

        del events  # the scorers' events and outputs are not part of the calibration's memory
        release_free_memory()
        result["end_to_end"] = _end_to_end(args, emulator, others)
    json_path, md_path = write_bench_report(result, args.reports)
    print(f"wrote {md_path} and {json_path}")
    return EXIT_MISMATCH if any(check["mismatches"] for check in result["bit_exact"].values()) else 0


def _writable_folder(folder: Path, option: str) -> None:
    """Refuse now, before minutes of benchmarking, a ``folder`` that could not be created or written later
    (nothing is created here: a refused run leaves no empty folder behind)."""
    existing = Path(folder).absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{option} {folder}: cannot create this folder ({existing} is a file)")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {folder}: {existing} is not writable")


def _efficiency_samples(args: argparse.Namespace) -> dict[str, Path]:
    """The efficiency-process files (``<process>.h5``) of the ``--samples`` folder that join the end-to-end run."""
    from gelato.calibration.config import load_settings

    settings = load_settings(args.calibration)
    folder = Path(args.samples if args.samples is not None else Path(args.sample).parent)
    if not folder.is_dir():
        raise FileNotFoundError(f"--samples {folder}: no such folder")
    samples = {p: folder / f"{p}.h5" for p in settings.processes if (folder / f"{p}.h5").is_file()}
    if not samples:
        print(f"note: {folder} holds none of {', '.join(p + '.h5' for p in settings.processes)}; the end-to-end run "
              f"calibrates {args.sample} alone")
    return samples


def _end_to_end(args: argparse.Namespace, emulator, samples: dict[str, Path]) -> dict:
    from gelato.bench import end_to_end_lines
    from gelato.calibration.bench import compare, replicate_sample
    from gelato.calibration.config import load_settings
    from gelato.calibration.execution import open_executor
    from gelato.calibration.streaming import EmulatorFactory

    settings = load_settings(args.calibration)
    work = Path(args.work) if args.work is not None else Path(args.out).parent / "bench"
    shutil.rmtree(work, ignore_errors=True)  # files of an earlier run: never reused
    work.mkdir(parents=True)
    reference = Path(args.sample)
    try:
        if args.end_to_end_events is not None:
            print(f"replicating {reference} to {args.end_to_end_events:,} events in {work}")
            reference = replicate_sample(reference, work / f"{settings.reference_process}.h5", args.end_to_end_events)
        factory = EmulatorFactory(Path(args.model).resolve(), Path(args.config).resolve(), Path(args.out).resolve())
        with open_executor(args.scheduler, args.local_cluster, args.chunk_threads) as executor:
            section = compare({settings.reference_process: reference, **samples}, emulator,
                              args.end_to_end_repeats, settings=settings, work_dir=work, executor=executor,
                              scorer_factory=factory)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    section.update(measured=True, pass_name="full pass: float and emulated scores")
    if args.end_to_end_events is not None:
        section["samples"][settings.reference_process] = (f"{reference}: {args.sample} replicated to "
                                                          f"{args.end_to_end_events:,} events, deleted after the run")
    print("end to end:")
    print("\n".join(end_to_end_lines(section)).replace("**", ""))
    return section
