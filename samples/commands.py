"""Subcommands of the samples stage (registered on the `gelato` CLI).

``gelato generate`` runs Pythia8, overlays pileup, emulates the L1 objects and writes
one event file per process plus ``MANIFEST.json``; the work itself is in
:mod:`gelato.samples.generate`, this module parses options and shows progress.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gelato.samples.generate import DEFAULT_PILEUP_MU, DEFAULT_POOL_SIZE, generate
from gelato.samples.manifest import update_manifest
from gelato.samples.processes import PROCESSES

#: Accepted events per process of the committed default set (see docs/samples.md).
DEFAULT_EVENTS: dict[str, int] = {
    "zerobias": 200000,
    "jz1": 15000,
    "jz2": 15000,
    "jz4": 15000,
    "ttbar_1lep": 15000,
    "ttbar_2lep": 15000,
    "ZZ4lep": 15000,
}
DEFAULT_SEED = 20260613


def _event_counts(args: argparse.Namespace) -> dict[str, int]:
    """Accepted-event count per selected process from --processes, --events and NAME=N pairs."""
    from gelato.cli import GelatoError

    names = list(DEFAULT_EVENTS) if not args.processes else [n.strip() for n in args.processes.split(",") if n.strip()]
    unknown = [n for n in names if n not in PROCESSES]
    if unknown:
        raise GelatoError(f"unknown process {', '.join(map(repr, unknown))}; expected any of {', '.join(PROCESSES)}")
    counts = {n: DEFAULT_EVENTS[n] if args.events is None else args.events for n in names}
    for item in args.per_process or []:
        name, _, value = item.partition("=")
        if name not in counts or not value.isdigit():
            raise GelatoError(f"--per-process expects NAME=N with NAME among {', '.join(counts)}, got {item!r}")
        counts[name] = int(value)
    return counts


def _generate(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    counts = _event_counts(args)
    out = Path(args.out)
    start = time.perf_counter()
    tasks = sum(-(-n // PROCESSES[name].chunk_events) for name, n in counts.items())
    with tqdm(total=tasks, unit="chunk", desc="generate", disable=not sys.stderr.isatty()) as bar:
        outputs = generate(
            counts, out, args.seed, args.pileup_mu, args.pool_size, args.workers,
            on_chunk=lambda result: (bar.set_postfix_str(result.task.process), bar.update()),
        )  # fmt: skip
    seconds = time.perf_counter() - start
    manifest = update_manifest(out, outputs, seconds, args.workers)
    for o in outputs:
        print(f"{o.path}: {o.n_events} events of {o.process} ({o.n_generated} generated)")
    print(f"{manifest} updated; {seconds:.0f} s with {args.workers} worker(s)")
    return 0


def register(subparsers) -> None:
    """Add this stage's subcommands to the CLI."""
    p = subparsers.add_parser(
        "generate",
        help="Pythia8 + pileup + L1 emulation -> HDF5 event files",
        description="Generate the event samples (one HDF5 file per process) and update MANIFEST.json.",
    )
    p.add_argument("--out", default="data/samples", help="output directory (default: %(default)s)")
    p.add_argument("--processes", help=f"comma-separated subset of: {', '.join(PROCESSES)} (default: all)")
    p.add_argument("--events", type=int, help="accepted events per process (default: the committed set's counts)")
    p.add_argument("--per-process", nargs="+", metavar="NAME=N", help="event count of individual processes")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="master seed (default: %(default)s)")
    p.add_argument(
        "--pileup-mu", type=float, default=DEFAULT_PILEUP_MU, help="mean pileup interactions (default: %(default)s)"
    )
    p.add_argument(
        "--pool-size", type=int, default=DEFAULT_POOL_SIZE, help="minimum-bias pileup pool size (default: %(default)s)"
    )
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default: %(default)s)")
    p.set_defaults(func=_generate)
