"""The three-way bit-exactness section of the calibration report (calibration stage).

``gelato bitexact`` (``make bitexact``) writes ``reports/bitexact.json``: the integer
reference, the compiled emulation and the C-simulation compared on every committed
sample plus a million random and edge-case events.  ``gelato calibrate`` does not rerun
it (minutes); this module reads the file when present, checks from its recorded
SHA-256 digests that it was made from the same firmware model and hls config as the
calibration, and summarises it for ``reports/index.md`` and
``summary.json["bit_exact"]["three_way"]``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gelato.calibration.synthesis_section import read_firmware_report

log = logging.getLogger(__name__)

BITEXACT_JSON = "bitexact.json"
RERUN_HINT = ("`gelato bitexact --model M --config C --reports <this folder>` "
              "(`make bitexact MODEL=M HLS_CONFIG=C REPORTS=<folder>`) with this calibration's model and config")


def bitexact_summary(reports_dir: Path, model_path: str | None, config_path: str | None) -> dict:
    """What ``reports_dir/bitexact.json`` says, reduced to its verdict and counts; ``{"present": False}`` without it."""
    report, absent, same = read_firmware_report(Path(reports_dir) / BITEXACT_JSON, "bit-exactness", model_path,
                                                config_path)
    if report is None:
        return absent
    divergence = report.get("divergence") or {}
    return {
        "present": True, "verdict": report.get("verdict"), "verdict_line": report.get("verdict_line"),
        "same_firmware": same, "events": report.get("events"), "csim_run": report.get("csim_run"),
        "pairs": {key: {"events": pair["events"], "mismatches": pair["mismatches"]}
                  for key, pair in (report.get("pairs") or {}).items()},
        "first_diverging_layer": divergence.get("layer"),
    }  # fmt: skip


def bitexact_markdown(summary: dict) -> str:
    """The ``## Bit-exactness (reference, emulation, C-simulation)`` section of ``reports/index.md``."""
    lines = ["## Bit-exactness (reference, emulation, C-simulation)", ""]
    if not summary.get("present"):
        reason = summary.get("error") or "no `bitexact.json` in this report folder"
        return "\n".join(lines + [f"Not available ({reason}); {RERUN_HINT} writes it.", ""])

    provenance = {True: "made from the same firmware model and hls config as this calibration",
                  False: f"**made from a different firmware model or hls config: rerun {RERUN_HINT}**",
                  None: "its inputs are not recorded, so it may belong to other firmware"}[summary["same_firmware"]]
    lines += [f"`{summary['verdict_line']}`", "",
              f"[bitexact.md](bitexact.md), [bitexact.json](bitexact.json); {provenance}.", "",
              "| comparison | events | mismatches |", "|---|---:|---:|"]
    lines += [f"| {key.replace('_vs_', ' vs ')} | {pair['events']:,} | {pair['mismatches']:,} |"
              for key, pair in summary["pairs"].items()]
    if summary["first_diverging_layer"]:
        lines += ["", f"First diverging layer: **{summary['first_diverging_layer']}** (see bitexact.md)."]
    return "\n".join(lines + [""])
