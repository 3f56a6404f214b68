"""Vendor HLS synthesis of the generated project and its report (``gelato synth``).

This module belongs to the hls stage.  Synthesis needs AMD/Xilinx tools that are not
open source: ``vitis-run`` (Vitis 2024.2 and later), ``vitis_hls`` (Vitis HLS 2020.2 to
2024.1) or ``vivado_hls`` (Vivado HLS up to 2020.1).  :func:`find_hls_tools` looks for
them on PATH; without one nothing is synthesised and :class:`NoHlsToolError` names the
tools looked for (the CLI exits 3).

With a tool, :func:`run_synthesis` runs the project's own ``build_prj.tcl`` (C synthesis
only, optionally Vivado logic synthesis) with the project as working directory.  The
reports are read by :func:`parse_csynth_xml` (``<top>_csynth.xml`` as Vitis HLS and
Vivado HLS write it) and :func:`parse_vivado_utilization` (``vivado_synth.rpt``, the
``report_utilization`` text of Vivado), and :func:`summarise` puts latency (cycles and
ns), initiation interval, resources with percentages of the part (from
:data:`PART_RESOURCES`, else from the report) and the latency budget verdict into
``reports/synth.json`` and ``reports/synth.md``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

from gelato.io import write_report_pair

log = logging.getLogger(__name__)

BUNCH_CROSSING_NS = 25.0
RESOURCE_KEYS = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")

#: Resources of the parts GELATO targets (Xilinx data sheets DS890/DS923).
PART_RESOURCES: dict[str, dict[str, int]] = {
    # Virtex UltraScale+ VU9P: ATLAS L1Topo (Phase-I), CMS Level-1 boards.
    "xcvu9p": {"LUT": 1_182_240, "FF": 2_364_480, "DSP": 6_840, "BRAM_18K": 4_320, "URAM": 960},
    # Virtex UltraScale+ VU13P: CMS Phase-2 Level-1 boards.
    "xcvu13p": {"LUT": 1_728_000, "FF": 3_456_000, "DSP": 12_288, "BRAM_18K": 5_376, "URAM": 1_280},
}

#: HLS tools by backend, in order of preference: (executable, command after it).
HLS_TOOLS: dict[str, list[tuple[str, list[str]]]] = {
    "Vitis": [("vitis-run", ["--mode", "hls", "--tcl", "build_prj.tcl"]), ("vitis_hls", ["-f", "build_prj.tcl"])],
    "Vivado": [("vivado_hls", ["-f", "build_prj.tcl"]), ("vitis_hls", ["-f", "build_prj.tcl"])],
}


class NoHlsToolError(RuntimeError):
    """No vendor HLS tool is installed, so nothing can be synthesised."""


class SynthReportError(ValueError):
    """A synthesis report is missing or not in the expected vendor format."""


ALL_TOOLS = ("vitis-run", "vitis_hls", "vivado_hls")


def tools_looked_for(backend: str) -> list[str]:
    """Every vendor tool name searched for; those usable for ``backend`` come first."""
    usable = [name for name, _ in HLS_TOOLS[backend]]
    return usable + [name for name in ALL_TOOLS if name not in usable]


def find_hls_tools(backend: str) -> list[tuple[str, list[str]]]:
    """The installed HLS tools usable for ``backend``: (absolute path, arguments)."""
    found = []
    for name, arguments in HLS_TOOLS[backend]:
        path = shutil.which(name)
        if path is not None:
            found.append((path, arguments))
    return found


def part_resources(part: str) -> dict[str, int] | None:
    """Resources of a part from :data:`PART_RESOURCES` (matched on the device prefix)."""
    device = part.lower().split("-")[0]
    return PART_RESOURCES.get(device)


# -- running the tool ------------------------------------------------------------------


def write_build_options(project_dir: Path, vivado_synthesis: bool) -> None:
    """Tell build_prj.tcl to run C synthesis only (plus Vivado synthesis if asked)."""
    options = {"reset": 1, "csim": 0, "synth": 1, "cosim": 0, "validation": 0, "export": int(vivado_synthesis),
               "vsynth": int(vivado_synthesis), "fifo_opt": 0}  # fmt: skip
    body = "".join(f"    {key:<10} {value}\n" for key, value in options.items())
    (project_dir / "build_opt.tcl").write_text("array set opt {\n" + body + "}\n")


def run_synthesis(project_dir: Path, backend: str, vivado_synthesis: bool = False) -> Path:
    """Run the first installed HLS tool on the project; returns the log file written."""
    tools = find_hls_tools(backend)
    if not tools:
        raise NoHlsToolError(
            f"no HLS tool for the {backend} backend found on PATH (looked for {', '.join(tools_looked_for(backend))}); "
            f"nothing was synthesised. Install AMD Vitis HLS and put it on PATH to run `gelato synth`."
        )
    executable, arguments = tools[0]
    write_build_options(project_dir, vivado_synthesis)
    log_path = project_dir / "gelato_synth.log"
    log.info("running %s in %s (this takes minutes to hours)", " ".join([executable, *arguments]), project_dir)
    with open(log_path, "w") as log_file:
        result = subprocess.run([executable, *arguments], cwd=project_dir, stdout=log_file, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = log_path.read_text()[-4000:]
        raise RuntimeError(
            f"{executable} failed (exit {result.returncode}) in {project_dir}; end of {log_path}:\n{tail}"
        )
    return log_path


# -- reading the reports ---------------------------------------------------------------


def _text(root: ET.Element, path: str, source: Path) -> str:
    node = root.find(path)
    if node is None or node.text is None:
        raise SynthReportError(f"{source}: element {path} missing; expected a Vitis/Vivado HLS csynth.xml")
    return node.text.strip()


def _cycles(text: str) -> int | None:
    return int(text) if text.isdigit() else None  # 'undef' when the latency is data dependent


def _resources(node: ET.Element | None) -> dict[str, int]:
    if node is None:
        return {}
    found = {("DSP" if child.tag == "DSP48E" else child.tag): int(child.text) for child in node if child.text}
    return {key: found[key] for key in RESOURCE_KEYS if key in found}


def parse_csynth_xml(path: Path) -> dict:
    """Latency, interval, clock and resource estimates from a ``<top>_csynth.xml``."""
    path = Path(path)
    if not path.exists():
        raise SynthReportError(f"{path}: no C-synthesis report here")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SynthReportError(f"{path}: not well-formed XML ({exc})") from None

    latency = "PerformanceEstimates/SummaryOfOverallLatency/"
    timing = "PerformanceEstimates/SummaryOfTimingAnalysis/"
    version = root.find("ReportVersion/Version")
    return {
        "tool_version": version.text.strip() if version is not None and version.text else None,
        "part": _text(root, "UserAssignments/Part", path),
        "top": _text(root, "UserAssignments/TopModelName", path),
        "target_clock_ns": float(_text(root, "UserAssignments/TargetClockPeriod", path)),
        "estimated_clock_ns": float(_text(root, timing + "EstimatedClockPeriod", path)),
        "latency_cycles": {"best": _cycles(_text(root, latency + "Best-caseLatency", path)),
                           "worst": _cycles(_text(root, latency + "Worst-caseLatency", path))},
        "interval_cycles": {"min": _cycles(_text(root, latency + "Interval-min", path)),
                            "max": _cycles(_text(root, latency + "Interval-max", path))},
        "resources": _resources(root.find("AreaEstimates/Resources")),
        "available": _resources(root.find("AreaEstimates/AvailableResources")),
    }  # fmt: skip


_UTILIZATION_ROWS = {
    # (section number, row label) -> resource key, scale to our units
    (1, "CLB LUTs"): ("LUT", 1), (1, "Slice LUTs"): ("LUT", 1),
    (1, "CLB Registers"): ("FF", 1), (1, "Slice Registers"): ("FF", 1),
    (2, "Block RAM Tile"): ("BRAM_18K", 2), (2, "URAM"): ("URAM", 1),
    (3, "DSPs"): ("DSP", 1),
}  # fmt: skip


def parse_vivado_utilization(path: Path) -> dict:
    """Post-synthesis resources from Vivado's ``report_utilization`` text (vivado_synth.rpt).

    Block RAM tiles (36 Kb) are converted to 18 Kb units to match the HLS estimates.
    """
    path = Path(path)
    if not path.exists():
        raise SynthReportError(f"{path}: no Vivado utilization report here")
    section, used_column, found = 0, None, {}
    for line in path.read_text().splitlines():
        heading = re.match(r"^(\d+)\.\s+\S", line)
        if heading:
            section, used_column = int(heading.group(1)), None
        if not line.startswith("|"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0] == "Site Type":
            used_column = cells.index("Used")
            continue
        label = cells[0].rstrip("*").strip()
        if used_column is not None and (section, label) in _UTILIZATION_ROWS:
            key, scale = _UTILIZATION_ROWS[(section, label)]
            found[key] = float(cells[used_column]) * scale
    if "LUT" not in found or "FF" not in found:
        raise SynthReportError(f"{path}: no 'CLB LUTs'/'CLB Registers' rows; expected Vivado report_utilization output")
    return {key: (int(value) if float(value).is_integer() else value) for key, value in found.items()}


# -- summary -----------------------------------------------------------------------------


def summarise(csynth: dict, config: dict, vivado: dict | None = None) -> dict:
    """Latency in cycles and ns, II, resources with % of the part, and the budget verdict."""
    clock_ns = csynth["target_clock_ns"]
    budget_ns = config["latency_budget_bx"] * BUNCH_CROSSING_NS
    worst, interval = csynth["latency_cycles"]["worst"], csynth["interval_cycles"]["max"]
    latency_ns = None if worst is None else worst * clock_ns

    available = part_resources(csynth["part"]) or csynth["available"]
    def usage(resources: dict) -> dict:
        return {key: {"used": value, "available": available.get(key),
                      "percent": round(100.0 * value / available[key], 3) if available.get(key) else None}
                for key, value in resources.items()}  # fmt: skip

    return {
        "path": "vendor", "part": csynth["part"], "top": csynth["top"], "tool_version": csynth["tool_version"],
        "clock_period_ns": clock_ns, "estimated_clock_ns": csynth["estimated_clock_ns"],
        "timing_met": csynth["estimated_clock_ns"] <= clock_ns,
        "latency_cycles": worst, "latency_cycles_best": csynth["latency_cycles"]["best"], "latency_ns": latency_ns,
        "initiation_interval": interval,
        "initiation_interval_ns": None if interval is None else interval * clock_ns,
        "latency_budget_bx": config["latency_budget_bx"], "latency_budget_ns": budget_ns,
        "fits_latency_budget": latency_ns is not None and latency_ns <= budget_ns,
        "accepts_every_bunch_crossing": interval is not None and interval * clock_ns <= BUNCH_CROSSING_NS,
        "hls_resources": usage(csynth["resources"]),
        "vivado_resources": usage(vivado) if vivado else None,
    }  # fmt: skip


def synthesis_inputs(model_path: Path, config_path: Path) -> dict:
    """Paths and SHA-256 of the model and config a synthesis report was made from.

    Both paths (vendor and open-source) record this as ``inputs`` in ``synth.json`` so
    that the calibration report can tell whether the figures belong to its firmware.
    """
    digest = lambda path: hashlib.sha256(Path(path).read_bytes()).hexdigest()  # noqa: E731
    return {"model": str(model_path), "model_sha256": digest(model_path),
            "hls_config": str(config_path), "hls_config_sha256": digest(config_path)}


def write_synth_report(summary: dict, reports_dir: Path) -> None:
    """Write ``synth.json`` and ``synth.md``."""
    write_report_pair(reports_dir, "synth", summary, _markdown(summary))


def _markdown(s: dict) -> str:
    verdict = "fits" if s["fits_latency_budget"] else "**does not fit**"
    lines = [
        "# HLS synthesis",
        "",
        f"Top function `{s['top']}` on `{s['part']}` ({s['tool_version'] or 'unknown tool version'}), "
        f"clock {s['clock_period_ns']} ns (estimated {s['estimated_clock_ns']} ns, "
        f"timing {'met' if s['timing_met'] else '**not met**'}).",
        "",
        f"Latency {s['latency_cycles']} cycles = {s['latency_ns']} ns: {verdict} the budget of "
        f"{s['latency_budget_bx']} bunch crossings ({s['latency_budget_ns']} ns). "
        f"Initiation interval {s['initiation_interval']} cycles "
        f"({'accepts' if s['accepts_every_bunch_crossing'] else '**cannot accept**'} an event every 25 ns).",
        "",
    ]
    for title, table in (("HLS estimate", s["hls_resources"]), ("Vivado synthesis", s["vivado_resources"])):
        if not table:
            continue
        lines += [f"## Resources ({title})", "", "| resource | used | available | % |", "|---|---:|---:|---:|"]
        lines += [f"| {k} | {v['used']} | {v['available']} | {v['percent']} |" for k, v in table.items()]
        lines.append("")
    return "\n".join(lines)


def synth_report_paths(project_dir: Path, project_name: str) -> tuple[Path, Path]:
    """Where build_prj.tcl leaves the C-synthesis XML and the Vivado utilization report."""
    csynth = project_dir / f"{project_name}_prj" / "solution1" / "syn" / "report" / f"{project_name}_csynth.xml"
    return csynth, project_dir / "vivado_synth.rpt"
