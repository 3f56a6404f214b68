"""The tables of the calibration report, as (header, rows) pairs (calibration stage).

Each function turns the calibration result and its summary into one table; :mod:`.report`
writes every table twice, as CSV (``reports/calibration/tables/<name>.csv``) and inline in
``reports/index.md``.  Numbers are formatted here, with 4 significant digits unless a
threshold (8 digits, so that values of the score type read back exactly enough).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from gelato.calibration.pipeline import CalibrationResult
from gelato.features import FEATURE_NAMES

Table = tuple[list[str], list[list]]


def fmt(x: float, digits: int = 4) -> str:
    """A number in ``digits`` significant digits."""
    return f"{x:.{digits}g}"


def _interval(lo: float, hi: float) -> str:
    return f"[{fmt(lo)}, {fmt(hi)}]"


def thresholds_table(result: CalibrationResult, summary: dict) -> Table:
    """Threshold, achieved unique rate with 68%/95% intervals, counts, total and overlap rates."""
    s, rows = result.settings, []
    for kind in ("emulated", "float"):
        for r in s.rates_hz:
            t = result.thresholds[kind][r]
            rows.append([kind, r, fmt(t["threshold"], 8), t["threshold_code"], fmt(t["rate_hz"]),
                         _interval(t["rate_lo68_hz"], t["rate_hi68_hz"]), _interval(t["rate_lo95_hz"], t["rate_hi95_hz"]),
                         t["n_pass"], fmt(t["weight_pass"]), fmt(t["total_rate_hz"]), fmt(t["overlap_rate_hz"]),
                         t["n_pass_total"], "yes" if t["warning"] else ""])
    header = ["scores", "target rate [Hz]", "threshold", "threshold code (/LSB)", "unique rate [Hz]", "68% CL [Hz]",
              "95% CL [Hz]", "n_pass (unique)", "weight pass", "total anomaly rate [Hz]", "overlap with menu [Hz]",
              "n_pass (total)", f"< {s.min_passing_events} passing"]
    return header, rows


def menu_table(result: CalibrationResult, summary: dict) -> Table:
    """Rate of each menu item, of their OR, and of the menu decision actually used."""
    menu, rows = result.menu_rates, []
    for item in result.settings.menu.as_config():
        rate = menu["items"][item["name"]]
        rows.append([item["name"], item["condition"], fmt(rate["rate_hz"]), _interval(rate["lo68_hz"], rate["hi68_hz"]),
                     rate["n_pass"]])
    for label, rate in (("OR of the items above (emulated)", menu["emulated_total"]),
                        (f"menu decision used ({menu['source']})", menu["total"])):
        rows.append([label, "", fmt(rate["rate_hz"]), _interval(rate["lo68_hz"], rate["hi68_hz"]), rate["n_pass"]])
    return ["item", "condition", f"rate on {result.settings.reference_process} [Hz]", "68% CL [Hz]", "n_pass"], rows


def efficiencies_table(result: CalibrationResult, summary: dict) -> Table:
    """Overall efficiency per process and rate: emulated with interval, unique, float and the difference."""
    rows = []
    for process, by_rate in summary["efficiencies"]["emulated"].items():
        for key, e in by_rate.items():
            f = summary["efficiencies"]["float"][process][key]
            rows.append([process, key, fmt(e["efficiency"]), _interval(e["lo"], e["hi"]), e["n_pass"], e["n_events"],
                         fmt(e["unique_efficiency"]), fmt(f["efficiency"]), fmt(e["efficiency"] - f["efficiency"])])
    header = ["process", "rate [Hz]", "efficiency (emulated)", "68% CL", "n_pass", "n_events",
              "unique efficiency", "efficiency (float)", "emulated - float"]
    return header, rows


def threshold_shift_table(result: CalibrationResult, summary: dict) -> Table:
    """Emulated and float thresholds per rate and their difference."""
    rows = [[k, fmt(v["emulated"], 8), fmt(v["float"], 8), fmt(v["shift"], 6), v["shift_lsb"]]
            for k, v in summary["float_vs_emulated"]["threshold_shift"].items()]
    return ["rate [Hz]", "threshold (emulated)", "threshold (float)", "shift", "shift [LSB]"], rows


def decision_flips_table(result: CalibrationResult, summary: dict) -> Table:
    """Per sample (rows) and rate (columns): flipped decisions, as 'n (emulated only / float only)'."""
    flips, rows = summary["float_vs_emulated"]["decision_flips"], []
    rates = [str(r) for r in result.settings.rates_hz]
    for process, by_rate in flips.items():
        cells = [f"{v['n_flips']} ({v['emulated_only']} / {v['float_only']})" for v in (by_rate[r] for r in rates)]
        rows.append([process, next(iter(by_rate.values()))["n_events"], *cells])
    return ["sample", "events", *(f"{r} Hz" for r in rates)], rows


def saturation_table(result: CalibrationResult, summary: dict) -> Table:
    """Saturated input words per feature (rows) and sample (columns); features with none omitted."""
    sat = summary["saturation"]
    saturated = [f for f in FEATURE_NAMES if any(v["per_feature"][f] > 0 for v in sat.values())]
    return ["feature", *sat], [[f, *[sat[p]["per_feature"][f] for p in sat]] for f in saturated]


def samples_table(result: CalibrationResult, summary: dict) -> Table:
    """Events, summed weights and menu-decision source of every sample."""
    rows = [[p, v["n_events"], fmt(v["sum_weights"], 8), v["menu_source"]] for p, v in summary["samples"].items()]
    return ["sample", "events", "sum of weights", "menu decision"], rows


#: Every table of the report, by name (also the CSV file name).
TABLES: dict[str, Callable[[CalibrationResult, dict], Table]] = {
    "thresholds": thresholds_table,
    "menu_rates": menu_table,
    "efficiencies": efficiencies_table,
    "threshold_shift": threshold_shift_table,
    "decision_flips": decision_flips_table,
    "saturation": saturation_table,
    "samples": samples_table,
}


def markdown(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub markdown table; '|' inside cells is escaped."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)
