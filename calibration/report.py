"""The calibration report: ``reports/index.md``, ``reports/summary.json`` and their tables and plots.

Layout written by :func:`write_report` (the C-simulation writes ``csim.md``/``csim.json``
itself, and the index links them):

    reports/index.md                     every table inline, every plot and file linked
    reports/summary.json                 machine-readable numbers (keys in docs/calibration.md)
    reports/calibration/tables/*.csv     the same tables as CSV
    reports/calibration/efficiency_curves.json   efficiency versus every feature
    reports/calibration/plots/*.png
    reports/findings.md, findings.json   the seed paper's findings (when measured, see findings.py)

and summarises ``reports/synth.json`` when ``gelato synth`` has written one (see
:mod:`.synthesis_section`) and ``reports/bitexact.json`` when ``gelato bitexact`` has (see
:mod:`.bitexact_section`).

Everything is first written to a staging folder inside ``reports/`` and moved into place
at the end (the plots folder as a whole, then the JSON, then the index), so an
interrupted run leaves the previous report intact.  Numbers are deterministic; run times
go to ``reports/calibration/timings.json`` only.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gelato.calibration import plots, tables
from gelato.calibration.findings_report import findings_markdown, index_section
from gelato.calibration.pipeline import KINDS, CalibrationResult, saturation_table
from gelato.calibration.rates import PASS_RULE
from gelato.calibration.bitexact_section import bitexact_markdown, bitexact_summary
from gelato.calibration.synthesis_section import synthesis_markdown, synthesis_summary
from gelato.hls.csim import write_csim_report
from gelato.io import INTERRUPTED, display_path

log = logging.getLogger(__name__)

SUBDIR = "calibration"
#: What a result of `gelato.hls.csim.run_csim_report` holds (test doubles may carry only the counts).
CSIM_KEYS = {"csim_vs_emulation", "emulation_vs_float", "timing_s"}
PLOTS_HEADING = "## Plots"
MENU_HEADING = "## Baseline L1 menu"

#: Keys of the C-simulation result that measure run time; kept in csim.json, left out of
#: summary.json so that a rerun gives an identical summary.
CSIM_RUN_TIME_KEYS = ("timing_s", "emulation_events_per_s")


def _rate_key(rate: int) -> str:
    return str(int(rate))


def build_summary(result: CalibrationResult) -> dict:
    """The content of summary.json (see docs/calibration.md for every key)."""
    s, st = result.settings, result.score_type
    processes = [p for p in s.processes if p in result.histograms]
    efficiencies = {
        kind: {p: {_rate_key(r): result.histograms[p].overall((kind, r)) for r in s.rates_hz} for p in processes}
        for kind in KINDS
    }
    thresholds = {kind: {_rate_key(r): result.thresholds[kind][r] for r in s.rates_hz} for kind in KINDS}
    return {
        "settings": {
            "rule": f"pass if score {PASS_RULE} threshold",
            "bunch_crossing_rate_hz": s.bunch_crossing_hz,
            "colliding_bunches": s.colliding_bunches,
            "revolution_frequency_hz": s.revolution_frequency_hz,
            "rate_formula": "rate = f_bc * sum(w of reference events passing the trigger and no menu item) / sum(w)",
            "rates_hz": list(s.rates_hz),
            "reference_process": s.reference_process,
            "score_type": str(st),
            "score_lsb": st.lsb,
            "min_passing_events": s.min_passing_events,
            "menu": {"items": s.menu.as_config(), "use_file_decision": s.menu.use_file_decision,
                     "source_on_reference": result.menu_rates["source"]},
            "config": display_path(s.source),
            "inputs": result.inputs,
        },
        "samples": {p: {"n_events": len(x), "sum_weights": float(x.sum_weights), "menu_source": x.menu_source}
                    for p, x in result.scored.items()},
        "thresholds": thresholds,
        "efficiencies": efficiencies,
        "menu": result.menu_rates,
        "float_vs_emulated": _float_vs_emulated(result, efficiencies),
        "bit_exact": {k: v for k, v in result.bit_exact.items() if k not in CSIM_RUN_TIME_KEYS},
        "saturation": saturation_table(result.scored),
    }


def _float_vs_emulated(result: CalibrationResult, efficiencies: dict) -> dict:
    lsb, rates = result.score_type.lsb, result.settings.rates_hz
    shifts = {}
    for r in rates:
        t_emu, t_flt = result.thresholds["emulated"][r]["threshold"], result.thresholds["float"][r]["threshold"]
        shifts[_rate_key(r)] = {"emulated": t_emu, "float": t_flt, "shift": t_emu - t_flt,
                                "shift_lsb": int(round((t_emu - t_flt) / lsb))}
    eff_shift = {p: {k: efficiencies["emulated"][p][k]["efficiency"] - efficiencies["float"][p][k]["efficiency"]
                     for k in efficiencies["emulated"][p]} for p in efficiencies["emulated"]}
    flips = {p: {_rate_key(r): v for r, v in by_rate.items()} for p, by_rate in result.flips.items()}
    return {"threshold_shift": shifts, "efficiency_shift": eff_shift, "decision_flips": flips}


def _write_csv(path: Path, header: Sequence[str], rows: list[Sequence]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def make_plots(result: CalibrationResult, out_dir: Path) -> dict[str, list[Path]]:
    """Draw every figure into ``out_dir``; returns them grouped for the index."""
    s, out = result.settings, {"scores": [], "score_vs": [], "efficiency": []}
    for process, tally in result.scored.items():
        counts = {kind: result.score_histogram(process, kind) for kind in KINDS}
        out["scores"].append(plots.plot_score_distribution(
            process, counts, tally.min_weight, result.score_edges, result.thresholds["emulated"],
            out_dir / f"score_{process}.png"))
    for feature in s.score_vs_features:
        out["score_vs"].append(plots.plot_score_vs_feature(
            feature, result.score_vs_feature(feature), result.score_edges, result.thresholds["emulated"],
            out_dir / f"score_vs_{feature}.png"))
    for process in s.processes:
        if process not in result.histograms:
            continue
        for feature in (*s.efficiency_plot_features, *s.extra_efficiency_plot_features.get(process, ())):
            out["efficiency"].append(plots.plot_efficiency(
                process, feature, result.histograms[process], s.rates_hz, out_dir / f"eff_{process}_{feature}.png"))
    return out


def _tables(result: CalibrationResult, summary: dict, table_dir: Path) -> tuple[dict[str, str], dict[str, Path]]:
    """Every table as inline markdown and as a CSV file, by name."""
    sections, files = {}, {}
    for name, make in tables.TABLES.items():
        header, rows = make(result, summary)
        files[name] = _write_csv(table_dir / f"{name}.csv", header, rows)
        sections[name] = tables.markdown(header, rows) if rows else "(none)"
    return sections, files


def _index(result: CalibrationResult, summary: dict, sections: dict[str, str], files: dict[str, Path],
           figures: dict[str, list[Path]], root: Path) -> str:
    s, rel = result.settings, (lambda p: Path(os.path.relpath(p, root)).as_posix())
    menu, be = result.menu_rates, result.bit_exact
    warnings = [t["warning"] for kind in KINDS for t in result.thresholds[kind].values() if t["warning"]]
    n_ref = len(result.scored[s.reference_process])
    link = lambda name: f"[{rel(files[name])}]({rel(files[name])})"  # noqa: E731

    out = [
        "# GELATO calibration report",
        "",
        "Made by `gelato calibrate`. Physics numbers quoted for the trigger use the bit-accurate (emulated) "
        "firmware scores; the float model's numbers are shown beside them. Machine-readable: "
        "[summary.json](summary.json); efficiency versus every feature: "
        f"[{SUBDIR}/efficiency_curves.json]({SUBDIR}/efficiency_curves.json).",
        "",
        "## Settings",
        "",
        f"- Rule: an event passes the anomaly trigger when **score {PASS_RULE} threshold** "
        f"(thresholds are values of the score type `{result.score_type}`, LSB {result.score_type.lsb:g}).",
        f"- Bunch-crossing rate f_bc = {s.colliding_bunches} colliding bunches x {s.revolution_frequency_hz:g} Hz "
        f"= {s.bunch_crossing_hz:.6g} Hz.",
        "- Rate = f_bc x (weight of reference events passing the anomaly trigger and no menu item) / "
        f"(weight of all reference events); reference sample `{s.reference_process}`, {n_ref} events, so an event "
        f"of average weight stands for {s.bunch_crossing_hz / n_ref:.4g} Hz and a 500 Hz threshold rests on "
        f"~{500 * n_ref / s.bunch_crossing_hz:.2g} events.",
        f"- Each threshold is the smallest score value whose unique rate does not exceed the target.",
        f"- Inputs: {', '.join(f'{k} `{v}`' for k, v in result.inputs.items())}; config `{display_path(s.source)}`.",
        "",
        "## Bit-exactness (C-simulation)",
        "",
        _bit_exact_text(be),
        "",
        MENU_HEADING,
        "",
        f"Rates on `{s.reference_process}`; the unique rate excludes every event the menu decision accepts. "
        f"Decision used: {menu['source']}. Table: {link('menu_rates')}",
        "",
        sections["menu_rates"],
        "",
        "## Thresholds",
        "",
        f"Intervals are Clopper-Pearson on the rate. Table: {link('thresholds')}",
        "",
        sections["thresholds"],
        "",
    ]
    if warnings:
        out += ["**Low statistics:**", "", *[f"- {w}" for w in warnings], ""]
    out += [
        "## Efficiencies",
        "",
        "Efficiency = weighted fraction of a process's events with score >= threshold (68% Clopper-Pearson); "
        f"unique efficiency counts only events no menu item accepts. Table: {link('efficiencies')}",
        "",
        sections["efficiencies"],
        "",
        "## Float versus emulated",
        "",
        f"Thresholds derived the same way from the float scores. Table: {link('threshold_shift')}",
        "",
        sections["threshold_shift"],
        "",
        "Events whose decision differs between the emulated score with its threshold and the float score with its "
        f"own, per rate: flips (passing with emulated only / with float only). Table: {link('decision_flips')}",
        "",
        sections["decision_flips"],
        "",
        "## Input saturation",
        "",
        f"Events whose raw input word or scaled model-input word saturates, per feature (features with none omitted). "
        f"Table: {link('saturation')}",
        "",
        sections["saturation"] if sections["saturation"] != "(none)" else "No input word saturated in any sample.",
        "",
        "## Samples",
        "",
        link("samples"),
        "",
        sections["samples"],
        "",
        PLOTS_HEADING,
        "",
    ]
    titles = {"scores": "Score distributions", "score_vs": "Score versus feature", "efficiency": "Efficiency curves (emulated)"}
    for group, paths in figures.items():
        out += [f"### {titles[group]}", "", *[f"- [{p.stem}]({rel(p)})" for p in paths], ""]
    if figures["scores"]:
        out += [f"![{figures['scores'][0].stem}]({rel(figures['scores'][0])})", ""]
    return "\n".join(out)


def _bit_exact_text(be: dict) -> str:
    pairs = {k: v for k, v in be.items() if k in ("csim_vs_emulation", "emulation_vs_float") and isinstance(v, dict)}
    if not pairs:
        return "Not run (no C-simulation result was passed)."
    rows = []
    if "csim_vs_emulation" in pairs:
        exact = pairs["csim_vs_emulation"]
        verdict = "identical on every event" if exact.get("mismatches") == 0 else f"**{exact.get('mismatches')} differ**"
        rows.append(["C-simulation vs emulation (must be exact)", exact.get("events", ""), verdict])
    if "emulation_vs_float" in pairs:
        f = pairs["emulation_vs_float"]
        rows.append(["emulation vs float model (quantization)", f.get("events", ""),
                     f"max abs diff {tables.fmt(f.get('max_abs_diff', float('nan')), 4)} "
                     f"({tables.fmt(f.get('max_abs_diff_lsb', float('nan')), 4)} LSB), mean "
                     f"{tables.fmt(f.get('mean_abs_diff', float('nan')), 4)}; identical on "
                     f"{tables.fmt(100 * f.get('frac_identical', float('nan')), 3)} % of events, more than 1 LSB apart "
                     f"on {tables.fmt(100 * f.get('frac_differ_more_than_1lsb', float('nan')), 3)} %"])
    table = tables.markdown(["comparison", "events", "result"], rows)
    return (f"{table}\n\nThe C-simulation (g++ testbench of the generated HLS project) must equal the emulation "
            "exactly; the float model differs by quantization. Details: [csim.md](csim.md), [csim.json](csim.json)")


def write_report(result: CalibrationResult, reports_dir: Path, findings: dict | None = None) -> dict:
    """Write the whole report atomically (see module docstring); returns the summary.

    ``findings`` (from :func:`gelato.calibration.findings.findings_for_result`) adds
    ``findings.md``/``findings.json``, a section of the index and ``summary["findings"]``.
    """
    reports_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".calibration-staging-", dir=reports_dir))
    try:
        sub = staging / SUBDIR
        summary = build_summary(result)
        summary["synthesis"] = synthesis_summary(reports_dir, result.inputs.get("model"), result.inputs.get("hls_config"))
        summary["bit_exact"]["three_way"] = bitexact_summary(reports_dir, result.inputs.get("model"),
                                                             result.inputs.get("hls_config"))
        if findings is not None:
            summary["findings"] = findings
            (staging / "findings.json").write_text(json.dumps(findings, indent=1) + "\n")
            (staging / "findings.md").write_text(findings_markdown(findings))
        if CSIM_KEYS <= result.bit_exact.keys():  # a full C-simulation result of this run: csim.{json,md}
            write_csim_report(result.bit_exact, staging)
        sections, files = _tables(result, summary, sub / "tables")
        figures = make_plots(result, sub / "plots")
        curves = efficiency_curves(result)
        (sub / "efficiency_curves.json").write_text(json.dumps(curves))
        (sub / "timings.json").write_text(json.dumps(result.timings_s, indent=2))
        (staging / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        index = _index(result, summary, sections, files, figures, staging)
        if findings is not None:
            index = index.replace(PLOTS_HEADING, index_section(findings) + "\n" + PLOTS_HEADING, 1)
        index = index.replace(PLOTS_HEADING, synthesis_markdown(summary["synthesis"]) + "\n" + PLOTS_HEADING, 1)
        three_way = bitexact_markdown(summary["bit_exact"]["three_way"])
        index = index.replace(MENU_HEADING, three_way + "\n" + MENU_HEADING, 1)
        (staging / "index.md").write_text(index + "\n")
        _commit(staging, reports_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("report written to %s", reports_dir / "index.md")
    return summary


def efficiency_curves(result: CalibrationResult) -> dict:
    """Efficiency versus every variable: [kind][process][variable] = edges, weights, per-rate values (6 digits)."""
    rates, out = result.settings.rates_hz, {}
    for kind in KINDS:
        out[kind] = {}
        for process in (p for p in result.settings.processes if p in result.histograms):
            hists, out[kind][process] = result.histograms[process], {}
            for variable in hists.totals:
                curves = {str(r): hists.curve(variable, (kind, r)) for r in rates}
                first = next(iter(curves.values()))
                out[kind][process][variable] = {
                    "edges": first["edges"], "weight_total": first["weight_total"],
                    "rates": {r: {k: [float(f"{x:.6g}") for x in c[k]] for k in ("efficiency", "lo", "hi")}
                              for r, c in curves.items()},
                }
    return out


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _commit(staging: Path, reports_dir: Path) -> None:
    """Move the staged report into place: the subfolder, then summary.json, then index.md."""
    if INTERRUPTED.is_set():  # Ctrl-C arrived while plotting, where matplotlib may have swallowed it
        raise KeyboardInterrupt(f"interrupted before the report in {reports_dir} was replaced")
    final_sub, old = reports_dir / SUBDIR, None
    if final_sub.exists():
        old = Path(tempfile.mkdtemp(prefix=".calibration-old-", dir=reports_dir))
        os.replace(final_sub, old / SUBDIR)
    os.replace(staging / SUBDIR, final_sub)
    for name in ("findings.json", "findings.md", "csim.json", "csim.md"):
        if (staging / name).exists():
            os.replace(staging / name, reports_dir / name)
    os.replace(staging / "summary.json", reports_dir / "summary.json")
    os.replace(staging / "index.md", reports_dir / "index.md")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
