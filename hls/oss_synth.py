"""The open-source synthesis path: da4ml RTL, Verilator on real events, Yosys for UltraScale+.

This module belongs to the hls stage and is what ``gelato synth-oss`` (and ``gelato
synth`` without a vendor tool) runs:

1. trace the firmware with da4ml and write the pipelined Verilog (:mod:`gelato.hls.rtl`,
   :mod:`gelato.hls.rtl_top`);
2. stream real events through it with Verilator, one per clock, and require every score
   to equal the bit-accurate emulation of the C++ firmware (:mod:`gelato.hls.verilator_sim`);
3. synthesise it with Yosys for Xilinx UltraScale+ (:mod:`gelato.hls.yosys_synth`);
4. write ``reports/synth.json`` and ``reports/synth.md`` with ``"path": "open-source"``.

Every resource and latency figure here is an estimate from open tools: Yosys does not
place or route, and the clock-stage cut assumes ``adders_per_clock`` adder levels fit one
clock. The vendor path (:mod:`gelato.hls.synth`) writes the same files from Vitis HLS.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gelato.hls.synth import BUNCH_CROSSING_NS, part_resources
from gelato.io import write_report_pair

log = logging.getLogger(__name__)

PATH_NAME = "open-source"
ESTIMATE_LABEL = ("estimates from open tools: da4ml adder graphs and pipeline cut, Yosys synth_xilinx "
                  "(no placement or routing, no timing closure); not vendor figures")
#: CARRY8 sites of the parts in :data:`gelato.hls.synth.PART_RESOURCES` (one per 8 LUTs).
CARRY8_PER_LUT = 1 / 8
GOAL_MAX_LUT_PERCENT = 1.0


@dataclass
class OssSettings:
    """Choices of one open-source synthesis run."""

    adders_per_clock: int
    use_dsp: bool = False
    run_yosys: bool = True
    jobs: int = 1


def pipeline_options(comb, score_stages: int, clock_ns: float, choices=range(3, 9)) -> list[dict]:
    """Latency for other adder-levels-per-clock assumptions (the cut is cheap to redo)."""
    from da4ml.trace import to_pipeline

    options = []
    for levels in choices:
        stages = len(to_pipeline(comb, levels, verbose=False).solutions)
        cycles = stages + score_stages
        options.append({"adders_per_clock": levels, "encoder_stages": stages, "latency_cycles": cycles,
                        "latency_ns": cycles * clock_ns})
    return options


def resource_usage(resources: dict, part: str) -> dict:
    """Used / available / percent for LUT, FF, CARRY (as CARRY8 sites), DSP on the part."""
    available = dict(part_resources(part) or {})
    if "LUT" in available:
        available["CARRY"] = int(available["LUT"] * CARRY8_PER_LUT)
    usage = {}
    for key in ("LUT", "FF", "CARRY", "DSP", "MUXF", "BRAM_18K", "URAM"):
        used = resources.get(key, 0)
        if key == "CARRY":
            used = -(-used // 2)  # Yosys maps CARRY4 cells; two fill one UltraScale+ CARRY8
        total = available.get(key)
        usage[key] = {"used": used, "available": total,
                      "percent": round(100.0 * used / total, 4) if total else None}
    return usage


def latency_summary(latency_cycles: int, clock_ns: float, budget_bx: int) -> dict:
    """Latency in cycles, ns and bunch crossings against the budget, II = 1."""
    latency_ns = latency_cycles * clock_ns
    budget_ns = budget_bx * BUNCH_CROSSING_NS
    return {"latency_cycles": latency_cycles, "latency_ns": latency_ns,
            "latency_bx": round(latency_ns / BUNCH_CROSSING_NS, 3), "latency_budget_bx": budget_bx,
            "latency_budget_ns": budget_ns, "fits_latency_budget": latency_ns <= budget_ns,
            "initiation_interval": 1, "initiation_interval_ns": clock_ns,
            "accepts_every_bunch_crossing": clock_ns <= BUNCH_CROSSING_NS}


def goal_verdict(summary: dict) -> dict:
    """The firmware goal: <= budget at II = 1, <= 1 % of the part's LUTs, no DSPs."""
    resources = summary.get("resources") or {}
    lut_percent = resources.get("LUT", {}).get("percent")
    dsp_used = resources.get("DSP", {}).get("used")
    return {"latency": summary["fits_latency_budget"] and summary["initiation_interval"] == 1,
            "lut_at_most_1_percent": None if lut_percent is None else lut_percent <= GOAL_MAX_LUT_PERCENT,
            "no_dsp": None if dsp_used is None else dsp_used == 0}


def tool_version(command: list[str]) -> str | None:
    """First line of ``<tool> --version`` (None when it cannot be asked)."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0] if lines else None


def simulate_against_emulation(project, emulator, features: np.ndarray, jobs: int) -> tuple[dict, dict]:
    """Verilator scores vs ``FirmwareEmulator.emulated_scores`` on the same events."""
    from gelato.hls.verilator_sim import build_simulator, compare_scores, raw_input_codes, simulate

    timings = {}
    start = time.monotonic()
    simulator = build_simulator(project, jobs=jobs)
    timings["verilator_build_s"] = round(time.monotonic() - start, 1)

    start = time.monotonic()
    rtl = simulate(project, simulator, raw_input_codes(features, emulator.raw_type))
    timings["rtl_simulation_s"] = round(time.monotonic() - start, 2)
    reference = emulator.emulated_scores(features)
    return compare_scores(rtl, reference), timings


def run_oss_synthesis(model_path: Path, config_path: Path, build_dir: Path, features: np.ndarray,
                      sample_counts: dict[str, int], settings: OssSettings) -> dict:
    """Steps 1-3 of the module docstring; returns the summary written by :func:`write_oss_report`."""
    import da4ml

    from gelato.hls.config import load_hls_config
    from gelato.hls.emulate import FirmwareEmulator
    from gelato.hls.rtl import load_or_trace
    from gelato.hls.rtl_top import SCORE_STAGE_CLOCKS, write_rtl_project

    config = load_hls_config(config_path)
    oss_dir = Path(build_dir) / "oss"
    start = time.monotonic()
    traced = load_or_trace(Path(model_path), Path(config_path), oss_dir / "trace")
    project = write_rtl_project(traced, oss_dir / "rtl", config["project_name"], settings.adders_per_clock,
                                config["clock_period_ns"], config["part"])
    timings = {"trace_and_rtl_s": round(time.monotonic() - start, 1), "trace_s": round(traced.seconds, 1)}

    emulator = FirmwareEmulator(Path(model_path), Path(config_path), Path(build_dir))
    comparison, sim_timings = simulate_against_emulation(project, emulator, features, settings.jobs)
    comparison["samples"] = sample_counts
    timings.update(sim_timings)
    log.info("RTL vs emulation: %d events, %d mismatches", comparison["events"], comparison["mismatches"])

    summary = {
        "path": PATH_NAME, "label": ESTIMATE_LABEL, "part": config["part"], "top": project.top,
        "rtl_dir": str(project.directory), "clock_period_ns": config["clock_period_ns"],
        "adders_per_clock": settings.adders_per_clock, "encoder_stages": project.encoder_stages,
        "score_stages": SCORE_STAGE_CLOCKS, "da4ml_cost_adder_bits": project.encoder_cost_adder_bits,
        "da4ml_adder_depth": float(max(traced.comb.out_latency)),
        **latency_summary(project.latency_clocks, config["clock_period_ns"], config["latency_budget_bx"]),
        "pipeline_options": pipeline_options(traced.comb, SCORE_STAGE_CLOCKS, config["clock_period_ns"]),
        "rtl_vs_emulation": comparison, "resources": None, "timings": timings,
        "tools": {"da4ml": da4ml.__version__},
    }  # fmt: skip
    if settings.run_yosys:
        summary.update(synthesise(project, config["part"], settings.use_dsp, oss_dir / "yosys", timings))
    summary["goal"] = goal_verdict(summary)
    return summary


def synthesise(project, part: str, use_dsp: bool, work_dir: Path, timings: dict) -> dict:
    """Yosys synth_xilinx of the project; the resource part of the summary."""
    from gelato.hls.yosys_synth import longest_path_carry_cells, parse_longest_path, run_yosys

    start = time.monotonic()
    stats, log_text = run_yosys(project.sources, project.top, work_dir, use_dsp=use_dsp)
    timings["yosys_s"] = round(time.monotonic() - start, 1)
    return {"resources": resource_usage(stats["resources"], part), "cells_by_type": stats["cells_by_type"],
            "yosys_estimated_logic_cells": stats["estimated_logic_cells"], "yosys_version": stats["yosys_version"],
            "longest_register_path_cells": parse_longest_path(log_text),
            "longest_register_path_carry_cells": longest_path_carry_cells(log_text), "dsp_inference": use_dsp,
            "yosys_run_s": yosys_run_seconds(log_text)}


def yosys_run_seconds(log_text: str) -> float | None:
    """Run time Yosys reports at the end of its log (also for a reused run), in s."""
    found = re.findall(r"End of script\. .*?time: ([0-9.]+)s", log_text)
    return float(found[-1]) if found else None


def write_oss_report(summary: dict, reports_dir: Path) -> None:
    """Write ``synth.json`` and ``synth.md`` (the files the vendor path writes)."""
    write_report_pair(reports_dir, "synth", summary, oss_markdown(summary))


def _yes(flag) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def oss_markdown(s: dict) -> str:
    """The readable report of an open-source synthesis summary."""
    rtl = s["rtl_vs_emulation"]
    lines = [
        "# Synthesis (open-source path)",
        "",
        f"**{s['label']}.**",
        "",
        f"Top module `{s['top']}` (Verilog in `{s['rtl_dir']}`) for `{s['part']}`, clock {s['clock_period_ns']} ns, "
        f"pipeline cut at {s['adders_per_clock']} adder levels per clock.",
        "",
        f"- Latency: {s['latency_cycles']} clocks = {s['latency_ns']} ns = {s['latency_bx']} BX "
        f"({s['encoder_stages']} da4ml encoder stages + {s['score_stages']} score stages), budget "
        f"{s['latency_budget_bx']} BX ({s['latency_budget_ns']} ns): "
        f"{'fits' if s['fits_latency_budget'] else '**exceeds**'}.",
        *_cut_caveat(s),
        f"- Initiation interval: 1 clock ({s['initiation_interval_ns']} ns): a new event every clock.",
        f"- RTL (Verilator) vs emulation: {rtl['events']} real events, **{rtl['mismatches']} mismatches**.",
        "",
    ]
    if s.get("resources"):
        lines += ["## Resources (Yosys synth_xilinx -family xcup)", "",
                  "| resource | used | available | % |", "|---|---:|---:|---:|"]
        for key, v in s["resources"].items():
            if v["used"] or key in ("LUT", "FF", "CARRY", "DSP"):
                percent = "-" if v["percent"] is None else v["percent"]
                lines.append(f"| {key} | {v['used']} | {v['available'] or '-'} | {percent} |")
        lines += ["", "CARRY counts CARRY8 sites (Yosys maps CARRY4 cells, two per CARRY8). "
                  f"Yosys' own packed estimate: {s['yosys_estimated_logic_cells']} logic cells; "
                  f"longest register-to-register path: {s['longest_register_path_cells']} cells, "
                  f"{s.get('longest_register_path_carry_cells')} of them carry-chain segments (CARRY4). "
                  + ("The three squares may use DSP48E2 (`--dsp`)." if s["dsp_inference"]
                     else "The three squares are built from LUTs (`-nodsp`)."), ""]
    goal = s["goal"]
    lines += ["## Goal", "", "| goal | met |", "|---|---|",
              f"| <= {s['latency_budget_bx']} BX at II = 1 | {_yes(goal['latency'])} |",
              f"| <= 1 % of the part's LUTs | {_yes(goal['lut_at_most_1_percent'])} |",
              f"| no DSP | {_yes(goal['no_dsp'])} |", ""]
    lines += ["## Latency for other pipeline cuts", "", "| adder levels / clock | encoder stages | clocks | ns |",
              "|---:|---:|---:|---:|"]
    lines += [f"| {o['adders_per_clock']} | {o['encoder_stages']} | {o['latency_cycles']} | {o['latency_ns']} |"
              for o in s["pipeline_options"]]
    timings = ", ".join(f"{k} {v}" for k, v in s["timings"].items())
    lines += ["", f"Wall-clock timings (s; 0 means a reused result): {timings}. Yosys' own reported run time for "
              f"the synthesis: {s.get('yosys_run_s')} s (the first run's wall time also includes YoWASP compiling "
              "Yosys, about 100 s once per machine).", ""]
    return "\n".join(lines)


def _cut_caveat(s: dict) -> list[str]:
    """A line saying what the latency becomes if one adder level fewer fits a clock (no timing closure here)."""
    tighter = [o for o in s.get("pipeline_options", []) if o["adders_per_clock"] == s["adders_per_clock"] - 1]
    if not tighter or not s.get("latency_budget_ns"):
        return []
    o = tighter[0]
    verdict = "fits" if o["latency_ns"] <= s["latency_budget_ns"] else "**exceeds**"
    return [f"- Caveat: the cut assumes {s['adders_per_clock']} adder levels fit one {s['clock_period_ns']} ns clock, "
            f"an estimate without placement, routing or timing closure; with {o['adders_per_clock']} levels the "
            f"latency is {o['latency_cycles']} clocks = {o['latency_ns']} ns, which {verdict} the budget."]
