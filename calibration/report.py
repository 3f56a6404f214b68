"""The calibration report: ``reports/index.md``, ``reports/summary.json`` and their tables and plots.

Layout written by :func:`write_report` (the C-simulation writes ``csim.md``/``csim.json``
itself, and the index links them):

    reports/index.md                     every table inline, every plot and file linked
    reports/summary.json                 machine-readable numbers (keys in docs/calibration.md)
    reports/calibration/tables/*.csv     the same tables as CSV
    reports/calibration/efficiency_curves.json   efficiency versus every feature
    reports/calibration/plots/*.png

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

from gelato.calibration import plots
from gelato.calibration.pipeline import KINDS, CalibrationResult, saturation_table
from gelato.calibration.rates import PASS_RULE
from gelato.features import FEATURE_NAMES

log = logging.getLogger(__name__)

SUBDIR = "calibration"


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
            "menu": {"items": s.menu.as_config(), "decision_dataset": s.menu.decision_dataset,
                     "source_on_reference": result.menu_rates["source"]},
            "config": s.source,
            "inputs": result.inputs,
        },
        "samples": {p: {"n_events": len(x), "sum_weights": float(x.weights.sum()), "menu_source": x.menu_source}
                    for p, x in result.scored.items()},
        "thresholds": thresholds,
        "efficiencies": efficiencies,
        "menu": result.menu_rates,
        "float_vs_emulated": _float_vs_emulated(result, efficiencies),
        "bit_exact": result.bit_exact,
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


def _md_table(header: Sequence[str], rows: list[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _g(x: float, digits: int = 4) -> str:
    return f"{x:.{digits}g}"


def make_plots(result: CalibrationResult, out_dir: Path) -> dict[str, list[Path]]:
    """Draw every figure into ``out_dir``; returns them grouped for the index."""
    s, out = result.settings, {"scores": [], "score_vs": [], "efficiency": []}
    for process, sample in result.scored.items():
        out["scores"].append(plots.plot_score_distribution(
            sample, result.score_edges, result.thresholds["emulated"], out_dir / f"score_{process}.png"))
    for feature in s.score_vs_features:
        out["score_vs"].append(plots.plot_score_vs_feature(
            feature, result.histograms, result.score_edges, out_dir / f"score_vs_{feature}.png"))
    for process in s.processes:
        if process not in result.histograms:
            continue
        for feature in (*s.efficiency_plot_features, *s.extra_efficiency_plot_features.get(process, ())):
            out["efficiency"].append(plots.plot_efficiency(
                process, feature, result.histograms[process], s.rates_hz, out_dir / f"eff_{process}_{feature}.png"))
    return out


def _tables(result: CalibrationResult, summary: dict, table_dir: Path) -> tuple[list[str], dict[str, Path]]:
    """Markdown sections and CSV files of the report's tables."""
    s, md, files = result.settings, [], {}

    rows = []
    for kind in ("emulated", "float"):
        for r in s.rates_hz:
            t = result.thresholds[kind][r]
            rows.append([kind, r, _g(t["threshold"], 8), t["threshold_code"], _g(t["rate_hz"]),
                         f"[{_g(t['rate_lo68_hz'])}, {_g(t['rate_hi68_hz'])}]",
                         f"[{_g(t['rate_lo95_hz'])}, {_g(t['rate_hi95_hz'])}]", t["n_pass"], _g(t["weight_pass"]),
                         _g(t["total_rate_hz"]), _g(t["overlap_rate_hz"]), t["n_pass_total"], "yes" if t["warning"] else ""])
    header = ["scores", "target rate [Hz]", "threshold", "threshold code (/LSB)", "unique rate [Hz]", "68% CL [Hz]",
              "95% CL [Hz]", "n_pass (unique)", "weight pass", "total anomaly rate [Hz]", "overlap with menu [Hz]",
              "n_pass (total)", f"< {s.min_passing_events} passing"]
    files["thresholds"] = _write_csv(table_dir / "thresholds.csv", header, rows)
    md.append(_md_table(header, rows))

    menu = result.menu_rates
    rows = [[name, item["condition"], _g(menu["items"][name]["rate_hz"]), menu["items"][name]["n_pass"]]
            for name, item in ((i["name"], i) for i in s.menu.as_config())]
    rows.append(["OR of the items above (emulated)", "", _g(menu["emulated_total"]["rate_hz"]), menu["emulated_total"]["n_pass"]])
    rows.append([f"menu decision used ({menu['source']})", "", _g(menu["total"]["rate_hz"]), menu["total"]["n_pass"]])
    header = ["item", "condition", f"rate on {s.reference_process} [Hz]", "n_pass"]
    files["menu"] = _write_csv(table_dir / "menu_rates.csv", header, rows)
    md.append(_md_table(header, rows))

    rows = []
    for process, by_rate in summary["efficiencies"]["emulated"].items():
        for key, e in by_rate.items():
            f = summary["efficiencies"]["float"][process][key]
            rows.append([process, key, _g(e["efficiency"]), f"[{_g(e['lo'])}, {_g(e['hi'])}]", e["n_pass"], e["n_events"],
                         _g(e["unique_efficiency"]), _g(f["efficiency"]), _g(e["efficiency"] - f["efficiency"])])
    header = ["process", "rate [Hz]", "efficiency (emulated)", "68% CL", "n_pass", "n_events",
              "unique efficiency", "efficiency (float)", "emulated - float"]
    files["efficiencies"] = _write_csv(table_dir / "efficiencies.csv", header, rows)
    md.append(_md_table(header, rows))

    fve = summary["float_vs_emulated"]
    rows = [[k, _g(v["emulated"], 8), _g(v["float"], 8), _g(v["shift"], 6), v["shift_lsb"]] for k, v in fve["threshold_shift"].items()]
    header = ["rate [Hz]", "threshold (emulated)", "threshold (float)", "shift", "shift [LSB]"]
    files["threshold_shift"] = _write_csv(table_dir / "threshold_shift.csv", header, rows)
    md.append(_md_table(header, rows))

    rows = [[p, k, v["n_flips"], v["n_events"], f"{v['fraction']:.3e}", v["emulated_only"], v["float_only"]]
            for p, by_rate in fve["decision_flips"].items() for k, v in by_rate.items()]
    header = ["sample", "rate [Hz]", "flipped decisions", "events", "fraction", "pass emulated only", "pass float only"]
    files["decision_flips"] = _write_csv(table_dir / "decision_flips.csv", header, rows)
    md.append(_md_table(header, rows))

    sat = summary["saturation"]
    saturated = [f for f in FEATURE_NAMES if any(v["per_feature"][f] > 0 for v in sat.values())]
    rows = [[f, *[sat[p]["per_feature"][f] for p in sat]] for f in saturated]
    header = ["feature", *sat]
    files["saturation"] = _write_csv(table_dir / "saturation.csv", header, rows)
    md.append(_md_table(header, rows) if rows else "No input word saturated in any sample.")

    rows = [[p, v["n_events"], _g(v["sum_weights"], 8), v["menu_source"]] for p, v in summary["samples"].items()]
    header = ["sample", "events", "sum of weights", "menu decision"]
    files["samples"] = _write_csv(table_dir / "samples.csv", header, rows)
    md.append(_md_table(header, rows))
    return md, files


def _index(result: CalibrationResult, summary: dict, sections: list[str], files: dict[str, Path],
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
        f"(weight of all reference events); reference sample `{s.reference_process}`, {n_ref} events.",
        f"- Each threshold is the smallest score value whose unique rate does not exceed the target.",
        f"- Inputs: {', '.join(f'{k} `{v}`' for k, v in result.inputs.items())}; config `{s.source}`.",
        "",
        "## Bit-exactness (C-simulation)",
        "",
        _bit_exact_text(be),
        "",
        "## Baseline L1 menu",
        "",
        f"Rates on `{s.reference_process}`; the unique rate excludes every event the menu decision accepts. "
        f"Decision used: {menu['source']}. Table: {link('menu')}",
        "",
        sections[1],
        "",
        "## Thresholds",
        "",
        f"Intervals are Clopper-Pearson on the rate. Table: {link('thresholds')}",
        "",
        sections[0],
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
        sections[2],
        "",
        "## Float versus emulated",
        "",
        f"Thresholds derived the same way from the float scores. Table: {link('threshold_shift')}",
        "",
        sections[3],
        "",
        f"Decisions that differ (emulated score with its threshold vs float score with its own). Table: {link('decision_flips')}",
        "",
        sections[4],
        "",
        "## Input saturation",
        "",
        f"Events whose raw input word or scaled model-input word saturates, per feature (features with none omitted). "
        f"Table: {link('saturation')}",
        "",
        sections[5],
        "",
        "## Samples",
        "",
        link("samples"),
        "",
        sections[6],
        "",
        "## Plots",
        "",
    ]
    titles = {"scores": "Score distributions", "score_vs": "Score versus feature", "efficiency": "Efficiency curves (emulated)"}
    for group, paths in figures.items():
        out += [f"### {titles[group]}", "", *[f"- [{p.stem}]({rel(p)})" for p in paths], ""]
    if figures["scores"]:
        out += [f"![{figures['scores'][0].stem}]({rel(figures['scores'][0])})", ""]
    return "\n".join(out)


BIT_EXACT_FIELDS = ("events", "mismatches", "max_abs_diff", "mean_abs_diff", "max_abs_diff_lsb",
                    "frac_identical", "frac_differ_more_than_1lsb")


def _bit_exact_text(be: dict) -> str:
    pairs = {k: v for k, v in be.items() if k in ("csim_vs_emulation", "emulation_vs_float") and isinstance(v, dict)}
    if not pairs:
        return "Not run (no C-simulation result was passed)."
    rows = [[pair, *(_g(v[f], 6) if isinstance(v.get(f), float) else v.get(f, "") for f in BIT_EXACT_FIELDS)]
            for pair, v in pairs.items()]
    table = _md_table(["comparison", *BIT_EXACT_FIELDS], rows)
    return (f"{table}\n\nThe C-simulation (g++ testbench of the generated HLS project) must equal the emulation "
            "exactly; the float model differs by quantization. Details: [csim.md](csim.md), [csim.json](csim.json)")


def write_report(result: CalibrationResult, reports_dir: Path) -> dict:
    """Write the whole report atomically (see module docstring); returns the summary."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".calibration-staging-", dir=reports_dir))
    try:
        sub = staging / SUBDIR
        summary = build_summary(result)
        sections, files = _tables(result, summary, sub / "tables")
        figures = make_plots(result, sub / "plots")
        curves = {kind: {p: {v: {str(r): h.curve(v, (kind, r)) for r in result.settings.rates_hz} for v in h.totals}
                         for p, h in result.histograms.items() if p in result.settings.processes} for kind in KINDS}
        (sub / "efficiency_curves.json").write_text(json.dumps(curves))
        (sub / "timings.json").write_text(json.dumps(result.timings_s, indent=2))
        (staging / "summary.json").write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
        index = _index(result, summary, sections, files, figures, staging)
        (staging / "index.md").write_text(index + "\n")
        _commit(staging, reports_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("report written to %s", reports_dir / "index.md")
    return summary


def _json_default(value):
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _commit(staging: Path, reports_dir: Path) -> None:
    """Move the staged report into place: the subfolder, then summary.json, then index.md."""
    final_sub, old = reports_dir / SUBDIR, None
    if final_sub.exists():
        old = Path(tempfile.mkdtemp(prefix=".calibration-old-", dir=reports_dir))
        os.replace(final_sub, old / SUBDIR)
    os.replace(staging / SUBDIR, final_sub)
    os.replace(staging / "summary.json", reports_dir / "summary.json")
    os.replace(staging / "index.md", reports_dir / "index.md")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
