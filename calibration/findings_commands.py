"""``gelato findings``: the seed paper's findings measured on existing calibration outputs (calibration stage).

Reads what `gelato calibrate` left behind, the score files ``<build>/scores/<process>.h5``
and the emulated thresholds in ``<reports>/summary.json``, and writes
``<reports>/findings.md`` and ``<reports>/findings.json`` (both atomically).  It does not
rescore anything, so it takes seconds to a minute and can be rerun with other bootstrap
settings.  The work is in :mod:`.findings`; this module is the CLI layer only.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from gelato.calibration.findings import FindingSettings, load_event_columns, measure_findings, score_plot_links
from gelato.calibration.findings_report import findings_markdown
from gelato.io import write_report_pair

log = logging.getLogger(__name__)


def register(subparsers) -> None:
    """Add ``gelato findings`` to the CLI."""
    p = subparsers.add_parser(
        "findings", help="the seed paper's findings (yes/no/inconclusive) on existing scores and thresholds",
        description="Measure the seed paper's six findings on the score files and emulated thresholds of a previous "
                    "`gelato calibrate` run; write <reports>/findings.md and findings.json.",
    )
    p.add_argument("--build", type=Path, default=Path("build"), help="build folder holding scores/<process>.h5")
    p.add_argument("--reports", type=Path, default=Path("reports"), help="report folder holding summary.json")
    p.add_argument("--resamples", type=int, default=FindingSettings.n_resamples, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=FindingSettings.seed, help="bootstrap seed")
    p.set_defaults(func=run_findings)


def _read_summary(reports: Path) -> tuple[list[str], dict[int, float]]:
    path = reports / "summary.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no calibration summary (run `gelato calibrate` or `make calibrate` first)")
    summary = json.loads(path.read_text())
    try:
        processes = list(summary["efficiencies"]["emulated"])
        thresholds = {int(r): float(t["threshold"]) for r, t in summary["thresholds"]["emulated"].items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: expected efficiencies.emulated and thresholds.emulated.<rate>.threshold "
                         f"({exc!r})") from None
    return processes, thresholds


def run_findings(args: argparse.Namespace) -> int:
    """`gelato findings`: see the module docstring and docs/findings.md."""
    if args.resamples < 10:
        raise ValueError(f"--resamples {args.resamples}: need at least 10 for an interval")
    processes, thresholds = _read_summary(args.reports)
    paths = {p: args.build / "scores" / f"{p}.h5" for p in processes}
    missing = [str(path) for path in paths.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"score file(s) missing: {', '.join(missing)} "
                                f"(made by `gelato calibrate --build {args.build}`)")

    columns = {p: load_event_columns(path) for p, path in paths.items()}
    settings = FindingSettings(n_resamples=args.resamples, seed=args.seed)
    findings = measure_findings(columns, thresholds, settings, score_plot_links(processes))
    write_report_pair(args.reports, "findings", findings, findings_markdown(findings), indent=1)

    for row in findings["findings"]:
        print(f"{row['id']:>3} {row['verdict']:<13} {row['claim']}")
    print(f"report: {args.reports / 'findings.md'}")
    return 0
