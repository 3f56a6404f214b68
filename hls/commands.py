"""Subcommands of the hls stage (registered on the `gelato` CLI): convert, csim, bitexact, synth.

Exit codes: 0 success; 1 the C-simulation differs from the emulation on some event (``csim``),
or any two of reference, emulation and C-simulation differ on some event (``bitexact``);
2 a user error (bad config, missing file; printed by the CLI); 3 ``synth`` found no
vendor HLS tool (and, with ``--path auto``, no open-source tools either), so nothing was
synthesised; 4 the vendor tool ran and failed.

``gelato synth --path auto`` (the default) runs the vendor flow when a vendor HLS tool is
on PATH and otherwise says so and runs the open-source path of
:mod:`gelato.hls.oss_commands` (``gelato synth-oss``); ``--path vendor`` never falls back.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gelato.hls.config import DEFAULT_CONFIG

DEFAULT_MODEL = Path("model/default/firmware_model.h5")
DEFAULT_BUILD = Path("build/hls")
DEFAULT_REPORTS = Path("reports")
DEFAULT_SAMPLES = Path("data/samples")

EXIT_MISMATCH = 1
EXIT_NO_TOOL = 3
EXIT_TOOL_FAILED = 4


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="hls YAML config (default: %(default)s)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="firmware Keras model (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_BUILD,
                        help="build root; the project goes to <out>/<project_name>/ (default: %(default)s)")


def register(subparsers) -> None:
    """Add this stage's subcommands to the CLI."""
    p = subparsers.add_parser("convert", help="firmware model -> compiled hls4ml project")
    _common(p)
    p.set_defaults(func=convert_command)

    p = subparsers.add_parser("csim", help="g++ C-simulation on real events + bit-exactness report")
    _common(p)
    p.add_argument("--samples", type=Path, nargs="+", default=[DEFAULT_SAMPLES],
                   help="sample files or directories of *.h5 (default: %(default)s)")
    p.add_argument("--events", type=int, default=10000, help="events to simulate, spread over all samples")
    p.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="where csim.md/csim.json go")
    p.add_argument("--names", type=Path, default=None,
                   help="feature-name mapping YAML for other file layouts (see docs/inputs.md)")
    p.set_defaults(func=csim_command)

    p = subparsers.add_parser("bitexact", help="integer reference = emulation = C-simulation on every committed "
                                               "sample plus random and edge-case inputs; one-line verdict")
    _common(p)
    p.add_argument("--samples", type=Path, nargs="+", default=[DEFAULT_SAMPLES],
                   help="sample files or directories of *.h5, compared event by event in full (default: %(default)s)")
    p.add_argument("--random-events", type=int, default=1_000_000,
                   help="random and edge-case events added to the samples (default: %(default)s)")
    p.add_argument("--seed", type=int, default=2026,
                   help="seed of the random and edge-case sets (default: %(default)s)")
    p.add_argument("--no-csim", action="store_true", help="compare reference and emulation only (no g++ testbench)")
    p.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="where bitexact.md/bitexact.json go")
    p.add_argument("--names", type=Path, default=None,
                   help="feature-name mapping YAML for other file layouts (see docs/inputs.md)")
    p.set_defaults(func=bitexact_command)

    from gelato.hls.oss_commands import add_oss_options  # imports this module: import late

    p = subparsers.add_parser("synth", help="vendor HLS synthesis (vitis-run, vitis_hls or vivado_hls), "
                                            "else the open-source path")
    _common(p)
    p.add_argument("--reports", type=Path, default=DEFAULT_REPORTS, help="where synth.md/synth.json go")
    p.add_argument("--vivado-synth", action="store_true", help="also run Vivado logic synthesis after HLS")
    p.add_argument("--path", choices=("auto", "vendor", "oss"), default="auto",
                   help="auto: vendor tools if installed, else the open-source path (default); "
                        "vendor: never fall back; oss: the open-source path only")
    add_oss_options(p)
    p.set_defaults(func=synth_command)


def sample_files(paths: list[Path]) -> list[Path]:
    """Expand directories to their sorted *.h5 files; complain about anything missing."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.glob("*.h5") if not p.name.startswith("."))
            if not found:
                raise FileNotFoundError(f"{path}: no *.h5 sample files (run `make data` or pass --samples)")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such sample file or directory")
    return files


def convert_command(args: argparse.Namespace) -> int:
    from gelato.hls.convert import convert_firmware, top_function_signature

    project = convert_firmware(args.model, args.config, args.out)
    action = "reused" if project.reused else "converted and compiled"
    print(f"{action} {project.project_dir} in {project.seconds:.1f} s")
    print(f"top function: {top_function_signature(project.hls_model)}")
    print(f"part {project.config['part']}, clock {project.config['clock_period_ns']} ns")
    return 0


def csim_command(args: argparse.Namespace) -> int:
    from gelato.hls.csim import run_csim_report
    from gelato.hls.emulate import FirmwareEmulator

    if args.events < 1:
        raise ValueError(f"--events must be positive, got {args.events}")
    files = sample_files(args.samples)
    emulator = FirmwareEmulator(args.model, args.config, args.out)
    result = run_csim_report(emulator, files, args.reports, n_events=args.events, names=args.names)

    exact, approx = result["csim_vs_emulation"], result["emulation_vs_float"]
    print(f"C-simulation vs emulation: {exact['events']} events, {exact['mismatches']} mismatches")
    print(f"emulation vs float: max |diff| {approx['max_abs_diff']:.6g}, mean {approx['mean_abs_diff']:.3g}, "
          f"{100 * approx['frac_differ_more_than_1lsb']:.2f}% differ by more than 1 LSB")
    print(f"wrote {args.reports / 'csim.md'} and {args.reports / 'csim.json'}")
    return 0 if exact["mismatches"] == 0 else EXIT_MISMATCH


def bitexact_command(args: argparse.Namespace) -> int:
    from gelato.hls.bitexact import run_bitexact

    if args.random_events < 0:
        raise ValueError(f"--random-events must be >= 0, got {args.random_events}")
    files = sample_files(args.samples)
    result = run_bitexact(args.model, args.config, args.out, files, args.reports, n_random=args.random_events,
                          seed=args.seed, csim=not args.no_csim, names=args.names)
    print(result["verdict_line"])
    print(f"wrote {args.reports / 'bitexact.md'} and {args.reports / 'bitexact.json'} "
          f"({result['timing_s']['total']:.0f} s)")
    return 0 if result["verdict"] == "PASS" else EXIT_MISMATCH


def synth_command(args: argparse.Namespace) -> int:
    from gelato.hls.config import load_hls_config
    from gelato.hls.synth import (
        NoHlsToolError, parse_csynth_xml, parse_vivado_utilization, run_synthesis, summarise,
        synth_report_paths, synthesis_inputs, tools_looked_for, find_hls_tools, write_synth_report,
    )  # fmt: skip

    from gelato.hls.oss_commands import oss_synth_command

    if args.path == "oss":
        return oss_synth_command(args)
    config = load_hls_config(args.config)
    if not find_hls_tools(config["backend"]):
        looked_for = ", ".join(tools_looked_for(config["backend"]))
        backend = config["backend"]
        message = f"gelato synth: no vendor HLS tool on PATH (looked for {looked_for}) for the {backend} backend"
        if args.path == "vendor":
            print(f"{message}; nothing was synthesised. C-simulation (`make csim`) needs only g++.", file=sys.stderr)
            return EXIT_NO_TOOL
        print(f"{message}; running the open-source path (gelato synth-oss) instead", file=sys.stderr)
        return oss_synth_command(args)

    from gelato.hls.convert import convert_firmware

    project = convert_firmware(args.model, args.config, args.out)
    try:
        run_synthesis(project.project_dir, config["backend"], args.vivado_synth)
    except NoHlsToolError as exc:
        print(f"gelato synth: {exc}", file=sys.stderr)
        return EXIT_NO_TOOL
    except RuntimeError as exc:
        print(f"gelato synth: {exc}", file=sys.stderr)
        return EXIT_TOOL_FAILED

    csynth_path, vivado_path = synth_report_paths(project.project_dir, config["project_name"])
    vivado = parse_vivado_utilization(vivado_path) if args.vivado_synth else None
    summary = summarise(parse_csynth_xml(csynth_path), config, vivado)
    summary["inputs"] = synthesis_inputs(args.model, args.config)
    write_synth_report(summary, args.reports)
    print(f"latency {summary['latency_cycles']} cycles = {summary['latency_ns']} ns "
          f"({'fits' if summary['fits_latency_budget'] else 'exceeds'} {summary['latency_budget_ns']} ns); "
          f"II {summary['initiation_interval']}; wrote {args.reports / 'synth.md'}")
    return 0
