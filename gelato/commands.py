"""Subcommands shared by every stage (registered on the `gelato` CLI): ``gelato validate``.

``gelato validate FILE...`` checks event files and nothing else (the checks are in
:mod:`gelato.validation`, the accepted layouts in :mod:`gelato.layouts` and
``docs/inputs.md``).  Exit status: 0 when every file is valid, 1 when any problem was
found, 2 for a usage error such as a malformed ``--names`` file.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gelato.layouts import load_name_mapping
from gelato.validation import FILE_LEVEL, FileReport, Problem, check_event_file

EXIT_VALID = 0
EXIT_PROBLEMS = 1


def register(subparsers) -> None:
    """Add the shared subcommands to the CLI."""
    p = subparsers.add_parser(
        "validate", help="check event files (layout, shapes, NaN, pT order, padding, weights)",
        description="Check HDF5 event files before using them: one OK line per valid file, otherwise one line "
                    "per problem (file: dataset: problem; first offending events). Exit 0 when all are valid, "
                    "1 when any problem was found, 2 on a usage error.",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE",
                   help="event files; a folder stands for the *.h5 files in it")
    p.add_argument("--names", type=Path, default=None, metavar="FILE",
                   help="YAML name mapping (canonical name -> aliases) merged on top of the packaged one")
    p.add_argument("--chunk-events", type=int, default=65536, help="events read per block (memory bound)")
    p.set_defaults(func=run_validate)


def _expand(paths: list[Path]) -> tuple[list[Path], list[FileReport]]:
    """Folders become their *.h5 files; an empty folder is reported as a problem."""
    files, empty = [], []
    for path in paths:
        if path.is_dir():
            found = sorted(path.glob("*.h5"))
            files += found
            if not found:
                empty.append(FileReport(path, problems=[Problem(str(path), FILE_LEVEL, "folder holds no *.h5 files")]))
        else:
            files.append(path)
    return files, empty


def run_validate(args: argparse.Namespace) -> int:
    """`gelato validate`: see the module docstring and docs/inputs.md."""
    if args.chunk_events < 1:
        raise ValueError(f"--chunk-events must be >= 1, got {args.chunk_events}")
    mapping = load_name_mapping(args.names)
    files, reports = _expand(args.files)
    for problem in (problem for report in reports for problem in report.problems):
        print(problem)

    for path in files:
        report = check_event_file(path, mapping, args.chunk_events)
        reports.append(report)
        if report.ok:
            print(f"OK {path}: {report.n_events} events ({report.layout})")
        for problem in report.problems:
            print(problem)

    bad = sum(not report.ok for report in reports)
    n_problems = sum(len(report.problems) for report in reports)
    print(f"{len(reports)} file(s) checked: {len(reports) - bad} valid, {bad} with {n_problems} problem(s)")
    return EXIT_PROBLEMS if bad else EXIT_VALID
