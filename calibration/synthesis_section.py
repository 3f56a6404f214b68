"""The synthesis section of the calibration report (calibration stage).

``gelato synth`` (vendor HLS or the open-source path) writes ``reports/synth.json``
itself; ``gelato calibrate`` does not synthesise.  This module reads that file when it
is present, checks from its recorded SHA-256 digests whether it was made from the same
firmware model and hls config as the calibration, and summarises it for
``reports/index.md`` and ``summary.json["synthesis"]``.  It never runs a tool.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)

SYNTH_JSON = "synth.json"
RESOURCE_TABLES = ("vivado_resources", "hls_resources", "resources")  # most trustworthy first


def _sha256(path: str | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def read_firmware_report(path: Path, what: str, model_path: str | None,
                         config_path: str | None) -> tuple[dict | None, dict, bool | None]:
    """Read a report another command wrote beside the calibration (``synth.json``, ``bitexact.json``).

    Returns ``(report, absent, same_firmware)``: ``report`` is None when the file is missing or
    unreadable, and ``absent`` is then the summary to use (``{"present": False}``, with the error);
    ``same_firmware`` compares the SHA-256 digests the report recorded with the calibration's model
    and hls config (None when it recorded none).
    """
    try:
        report = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return None, {"present": False}, None
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable %s report (%s); left out of the calibration report", path, what, exc)
        return None, {"present": False, "error": f"{path}: {exc}"}, None

    inputs = report.get("inputs") or {}
    same = None
    if inputs.get("model_sha256") and inputs.get("hls_config_sha256"):
        same = inputs["model_sha256"] == _sha256(model_path) and inputs["hls_config_sha256"] == _sha256(config_path)
    return report, {}, same


def synthesis_summary(reports_dir: Path, model_path: str | None, config_path: str | None) -> dict:
    """What ``reports_dir/synth.json`` says, reduced to the figures the index shows.

    Returns ``{"present": False}`` when there is no (readable) synthesis report;
    ``same_firmware`` is True, False, or None when the report does not record its inputs.
    """
    report, absent, same = read_firmware_report(Path(reports_dir) / SYNTH_JSON, "synthesis", model_path, config_path)
    if report is None:
        return absent
    table = next((report[k] for k in RESOURCE_TABLES if report.get(k)), {})
    check = report.get("rtl_vs_emulation") or {}
    return {
        "present": True, "path": report.get("path", "unknown"), "label": report.get("label"),
        "part": report.get("part"), "same_firmware": same,
        "latency_cycles": report.get("latency_cycles"), "latency_ns": report.get("latency_ns"),
        "latency_budget_ns": report.get("latency_budget_ns"), "fits_latency_budget": report.get("fits_latency_budget"),
        "initiation_interval": report.get("initiation_interval"),
        "resources": {k: {"used": v.get("used"), "percent": v.get("percent")} for k, v in table.items()
                      if k in ("LUT", "FF", "DSP", "BRAM_18K", "URAM", "CARRY")},
        "rtl_vs_emulation": {k: check[k] for k in ("events", "mismatches") if k in check} or None,
        "goal": report.get("goal"),
    }


def synthesis_markdown(summary: dict) -> str:
    """The ``## Synthesis`` section of ``reports/index.md``."""
    lines = ["## Synthesis", ""]
    if not summary.get("present"):
        reason = summary.get("error") or "no `synth.json` in this report folder"
        return "\n".join(lines + [f"Not available ({reason}); `make synth` writes it.", ""])

    made_by = {"vendor": "vendor HLS reports", "open-source": "estimates from open tools (da4ml, Verilator, Yosys)"}
    provenance = {True: "made from the same firmware model and hls config as this calibration",
                  False: "**made from a different firmware model or hls config: rerun `make synth`**",
                  None: "its inputs are not recorded, so it may belong to other firmware"}[summary["same_firmware"]]
    fits = {True: "fits", False: "**exceeds**", None: "unknown against"}[summary["fits_latency_budget"]]
    lines += [
        f"[synth.md](synth.md), [synth.json](synth.json): {made_by.get(summary['path'], summary['path'])}; "
        f"{provenance}.",
        "",
        f"- Latency {summary['latency_cycles']} clocks = {summary['latency_ns']} ns ({fits} the "
        f"{summary['latency_budget_ns']} ns budget), initiation interval {summary['initiation_interval']}; "
        f"part `{summary['part']}`.",
    ]
    if summary["resources"]:
        used = ", ".join(f"{k} {v['used']}" + (f" ({v['percent']} %)" if v["percent"] is not None else "")
                         for k, v in summary["resources"].items())
        lines.append(f"- Resources: {used}.")
    if summary.get("goal"):
        names = {"latency": "latency within budget at II = 1", "lut_at_most_1_percent": "at most 1 % of the LUTs",
                 "no_dsp": "no DSP"}
        verdicts = [f"{names.get(k, k)}: {'n/a' if v is None else ('yes' if v else '**no**')}"
                    for k, v in summary["goal"].items()]
        lines.append(f"- Goals: {'; '.join(verdicts)} (see [synth.md](synth.md) for the assumptions).")
    if summary["rtl_vs_emulation"]:
        rtl = summary["rtl_vs_emulation"]
        lines.append(f"- RTL simulation vs emulation: {rtl.get('events')} events, {rtl.get('mismatches')} mismatches.")
    return "\n".join(lines + [""])
