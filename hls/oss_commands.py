"""``gelato synth-oss``: the open-source synthesis path of the hls stage (da4ml, Verilator, Yosys).

Registered on the CLI beside :mod:`gelato.hls.commands`; ``gelato synth`` calls
:func:`oss_synth_command` when no vendor HLS tool is installed.

Exit codes: 0 success; 1 the RTL simulation differs from the emulation on some event;
2 a user error (printed by the CLI); 3 Verilator or Yosys is not installed (nothing
synthesised); 4 a tool ran and failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gelato.hls.commands import DEFAULT_BUILD, DEFAULT_MODEL, DEFAULT_REPORTS, DEFAULT_SAMPLES, sample_files
from gelato.hls.config import DEFAULT_CONFIG
from gelato.hls.rtl import DEFAULT_ADDERS_PER_CLOCK

EXIT_MISMATCH, EXIT_NO_TOOL, EXIT_TOOL_FAILED = 1, 3, 4


def add_oss_options(parser: argparse.ArgumentParser) -> None:
    """Options of the open-source path (shared by ``synth-oss`` and ``synth``'s fallback)."""
    parser.add_argument("--samples", type=Path, nargs="+", default=[DEFAULT_SAMPLES],
                        help="real events for the RTL simulation: files or directories (default: %(default)s)")
    parser.add_argument("--events", type=int, default=10000, help="events to simulate (default: %(default)s)")
    parser.add_argument("--names", type=Path, default=None,
                        help="feature-name mapping YAML for other file layouts (see docs/inputs.md)")
    parser.add_argument("--adders-per-clock", type=int, default=DEFAULT_ADDERS_PER_CLOCK,
                        help="adder levels per pipeline stage (default: %(default)s at the configured clock)")
    parser.add_argument("--dsp", action="store_true", help="let Yosys map the three squares to DSP48E2")
    parser.add_argument("--no-yosys", action="store_true", help="RTL and Verilator only, no resource figures")
    parser.add_argument("--jobs", type=int, default=1, help="parallel compile jobs for Verilator")


def register(subparsers) -> None:
    """Add ``synth-oss`` to the CLI."""
    p = subparsers.add_parser("synth-oss", help="open-source RTL (da4ml) + Verilator on real events + Yosys estimate")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="hls YAML config (default: %(default)s)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="firmware Keras model (default: %(default)s)")
    p.add_argument("--out", type=Path, default=DEFAULT_BUILD,
                   help="build root; RTL in <out>/oss (default: %(default)s)")
    p.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="where synth.md/synth.json go")
    add_oss_options(p)
    p.set_defaults(func=oss_synth_command)


def oss_synth_command(args: argparse.Namespace) -> int:
    from gelato.hls.csim import select_events
    from gelato.hls.oss_synth import OssSettings, run_oss_synthesis, write_oss_report
    from gelato.hls.synth import synthesis_inputs
    from gelato.hls.verilator_sim import VerilatorError, find_verilator
    from gelato.hls.yosys_synth import YosysError, find_yosys

    if args.events < 1 or args.adders_per_clock < 1:
        raise ValueError(f"--events and --adders-per-clock must be positive, "
                         f"got {args.events} and {args.adders_per_clock}")
    try:
        find_verilator()
        if not args.no_yosys:
            find_yosys()
    except (VerilatorError, YosysError) as exc:
        print(f"gelato synth-oss: {exc}; nothing was synthesised", file=sys.stderr)
        return EXIT_NO_TOOL

    selection = select_events(sample_files(args.samples), args.events, args.names)
    settings = OssSettings(args.adders_per_clock, use_dsp=args.dsp, run_yosys=not args.no_yosys, jobs=args.jobs)
    try:
        summary = run_oss_synthesis(args.model, args.config, args.out, selection.features, selection.counts, settings)
    except (VerilatorError, YosysError) as exc:
        print(f"gelato synth-oss: {exc}", file=sys.stderr)
        return EXIT_TOOL_FAILED
    summary["inputs"] = synthesis_inputs(args.model, args.config)
    write_oss_report(summary, args.reports)

    rtl = summary["rtl_vs_emulation"]
    print(f"open-source path (da4ml + Verilator + Yosys; estimates): latency {summary['latency_cycles']} clocks = "
          f"{summary['latency_ns']} ns ({'fits' if summary['fits_latency_budget'] else 'exceeds'} "
          f"{summary['latency_budget_ns']} ns), II 1")
    if summary.get("resources"):
        r = summary["resources"]
        print(f"LUT {r['LUT']['used']} ({r['LUT']['percent']}%), FF {r['FF']['used']}, CARRY8 {r['CARRY']['used']}, "
              f"DSP {r['DSP']['used']}")
    print(f"RTL vs emulation: {rtl['events']} events, {rtl['mismatches']} mismatches; "
          f"wrote {args.reports / 'synth.md'} and {args.reports / 'synth.json'}")
    return 0 if rtl["mismatches"] == 0 else EXIT_MISMATCH
