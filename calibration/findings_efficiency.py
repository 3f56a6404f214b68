"""Findings 4-6 of the seed paper: efficiency turn-ons and dips, endcap muons, process ranking (calibration stage).

Efficiencies use the emulated score and thresholds with the rule of :func:`.rates.passes`,
binned like the calibration's own curves (:mod:`.efficiency`); shapes are described by
:mod:`.turnon`.  Rows go to :func:`gelato.calibration.findings.measure_findings`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np

from gelato import features as F
from gelato.calibration.efficiency import MUON_PT_EDGES, PT_EDGES
from gelato.calibration.findings import (
    DIP_PROCESSES, JZ4, ZZ4LEP, EventColumns, FindingSettings, finding_row, verdict_rate,
)
from gelato.calibration.findings_kinematics import MISSING, fraction_estimate
from gelato.calibration.rates import passes
from gelato.calibration.resampling import (
    INCONCLUSIVE, NO, YES, Estimate, all_of, interval_verdict, majority_of, significance_verdict,
)
from gelato.calibration.turnon import Curve, TurnOnFit, dip_significance, efficiency_curve, fit_line, fit_turn_on

log = logging.getLogger(__name__)

Z95 = 1.959964


def gaussian_estimate(value: float, error: float) -> Estimate:
    """An estimate with Gaussian 68%/95% intervals (fit parameters)."""
    if not (np.isfinite(value) and np.isfinite(error)):
        return Estimate(value, -np.inf, np.inf, -np.inf, np.inf)
    return Estimate(value, value - error, value + error, value - Z95 * error, value + Z95 * error)


def turn_on_verdict(fit: TurnOnFit, yes_sigma: float) -> str:
    """A turn-on: plateau significant and the 50% point inside the populated pT range (95%)."""
    if not fit.ok or not fit.plateau > yes_sigma * fit.plateau_err:
        return INCONCLUSIVE
    return interval_verdict(gaussian_estimate(fit.x50, fit.x50_err), fit.x_min, fit.x_max)


def efficiency_vs_jet_pt(columns: Mapping[str, EventColumns], thresholds: Mapping[int, float],
                         s: FindingSettings) -> list[dict]:
    """Finding 4: turn-on fit of efficiency versus leading-jet pT, and the low-pT dip, per process and rate."""
    fits, dips, per_fit, per_dip = {}, {}, {}, {}
    for p, c in columns.items():
        has = c.jet_pt[:, 0] > 0
        fits[p], dips[p] = {}, {}
        bottom_below = float(np.median(c.jet_pt[has, 0])) if has.any() else 0.0  # "low pT": below the median
        for rate, threshold in thresholds.items():
            curve = efficiency_curve(c.jet_pt[has, 0], passes(c.score[has], threshold), c.weight[has], PT_EDGES)
            fit = fit_turn_on(curve)
            fits[p][str(rate)] = {**fit.as_dict(), "verdict": turn_on_verdict(fit, s.yes_sigma)}
            w_has = c.weight[has]
            overall = float(w_has[passes(c.score[has], threshold)].sum() / w_has.sum()) if w_has.sum() > 0 else 0.0
            dips[p][str(rate)] = dip_entry(curve, bottom_below, overall, s)
        verdicts = [f["verdict"] for f in fits[p].values()]
        shown = str(verdict_rate(thresholds, s.verdict_rate_hz))
        text = f"{shown} Hz: {_fit_text(fits[p][shown])}; turn-on at {verdicts.count(YES)}/{len(verdicts)} rates"
        per_fit[p] = {"text": text,
                      "verdict": majority_of(verdicts)}
        if dips[p]:
            rate, best = max(dips[p].items(), key=lambda kv: kv[1]["significance"])
            per_dip[p] = {"text": f"{best['significance']:.2f} sigma at {rate} Hz (a half-efficiency dip would show at "
                                  f"{best['sensitivity_sigma']:.1f} sigma)", "significance": best["significance"],
                          "verdict": any_rate([d["verdict"] for d in dips[p].values()]), "rate_hz": rate}

    row_a = finding_row(
        "4a", "Efficiency against the leading-jet pT broadly follows a turn-on.",
        "error-function fit per rate: plateau, 50% point x50 [GeV], width [GeV] (1-sigma fit errors, Clopper-Pearson "
        "68% bin errors); shown at the rate closest to 1 kHz, all rates in the details",
        f"per rate: yes if the plateau exceeds {s.yes_sigma:g} sigma and the 95% interval of x50 lies inside the "
        "populated pT range, no if wholly outside, else inconclusive; process: majority over rates; finding: majority "
        "over processes",
        per_fit, majority_of([v["verdict"] for v in per_fit.values()]), {"fits": fits})
    dip_claims = [per_dip[p]["verdict"] if p in per_dip else INCONCLUSIVE for p in DIP_PROCESSES]
    row_b = finding_row(
        "4b", "In ttbar_1lep, ttbar_2lep and ZZ4lep the efficiency starts finite at low pT, dips, then rises.",
        "dip significance: over dip bins below the process's median leading-jet pT, min(largest fall into the bin from "
        "an earlier one, largest rise out of it to a later one) in "
        "binomial sigmas (Clopper-Pearson 68% errors in quadrature); the largest over rates is shown",
        f"per rate: dip (yes) at >= {s.yes_sigma:g} sigma; none (no) below {s.no_sigma:g} sigma, but only where a dip "
        f"to half the process's overall efficiency would have shown at >= {s.yes_sigma:g} sigma in those bins (median "
        "bin error "
        "times sqrt 2); else inconclusive; process: yes at any rate, no at all; finding: all three named processes, "
        "others shown for comparison (no look-elsewhere correction)",
        per_dip, all_of(dip_claims), {"dips": dips})
    return [row_a, row_b]


def dip_entry(curve: Curve, bottom_below: float, overall: float, s: FindingSettings) -> dict:
    """Dip significance of one curve, its sensitivity to a dip of depth overall/2, and the verdict."""
    dip = dip_significance(curve, bottom_below)
    low = curve.populated & (curve.centers < bottom_below)
    typical = float(np.median(curve.sigma[low])) if low.any() else np.inf
    sensitivity = 0.5 * overall / (np.sqrt(2.0) * typical) if typical > 0 else np.inf
    verdict = significance_verdict(dip.significance, s.yes_sigma, s.no_sigma)
    if verdict == NO and not sensitivity >= s.yes_sigma:
        verdict = INCONCLUSIVE
    return {**dip.as_dict(), "bottom_below": bottom_below, "sensitivity_sigma": float(sensitivity), "verdict": verdict}


def any_rate(verdicts: list[str]) -> str:
    """Yes when any rate says yes, no when all say no, else inconclusive."""
    if YES in verdicts:
        return YES
    return NO if verdicts and all(v == NO for v in verdicts) else INCONCLUSIVE


def _fit_text(fit: dict) -> str:
    if not fit["ok"]:
        return "no fit"
    return f"x50 {fit['x50']:.0f} +- {fit['x50_err']:.0f} GeV, plateau {fit['plateau']:.2g} +- {fit['plateau_err']:.1g}"


def endcap_muons(columns: Mapping[str, EventColumns], thresholds: Mapping[int, float], s: FindingSettings) -> dict:
    """Finding 5: ZZ4lep efficiency slope against endcap-muon pT for each muon rank."""
    claim = ("ZZ4lep, endcap muons (|eta| >= 1.05): efficiency flat in the pT of the first three muons, a clear "
             "turn-on in the fourth's.")
    rate = verdict_rate(thresholds, s.verdict_rate_hz)
    statistic = (f"weighted straight-line fit of efficiency ({rate} Hz) against the muon's pT; relative change = "
                 "slope x "
                 "(95th - 5th percentile of its pT) / mean efficiency, 1-sigma fit error")
    criterion = ("ranks 0-2 flat (yes) when the 95% interval of the relative change lies inside "
                 f"+-{s.flat_relative_change:g}; "
                 f"rank 3 rising (yes) when it lies above {s.flat_relative_change:g}; finding: all four")
    if ZZ4LEP not in columns:
        return finding_row("5", claim, statistic, criterion, {ZZ4LEP: MISSING}, INCONCLUSIVE)

    c, per, details = columns[ZZ4LEP], {}, {}
    for rank in range(F.N_MUONS):
        pt, eta = c.muon_pt[:, rank], c.muon_eta[:, rank]
        sel = (pt > 0) & (np.abs(eta) >= F.MUON_ENDCAP_ETA)
        rel, slopes = _relative_change(pt[sel], c.score[sel], c.weight[sel], thresholds, rate)
        low, high = (-s.flat_relative_change, s.flat_relative_change) if rank < 3 else (s.flat_relative_change, np.inf)
        verdict = interval_verdict(rel, low, high) if np.isfinite(rel.value) else INCONCLUSIVE
        per[f"muon{rank}"] = {"text": f"{rel.text()} (n={int(sel.sum())})", "verdict": verdict, **rel.as_dict(),
                              "n_events": int(sel.sum())}
        details[f"muon{rank}"] = slopes
    return finding_row("5", claim, statistic, criterion, per, all_of([v["verdict"] for v in per.values()]),
                       {"slopes_per_rate": details, "rate_hz": rate})


def _relative_change(pt: np.ndarray, score: np.ndarray, w: np.ndarray, thresholds: Mapping[int, float],
                     rate: int) -> tuple[Estimate, dict]:
    """Relative efficiency change at ``rate`` and the slope fits of every rate."""
    slopes, rel = {}, Estimate(float("nan"), -np.inf, np.inf, -np.inf, np.inf)
    span = float(np.subtract(*np.percentile(pt, [95, 5]))) if len(pt) else 0.0
    for r, threshold in thresholds.items():
        passed = passes(score, threshold)
        line = fit_line(efficiency_curve(pt, passed, w, MUON_PT_EDGES))
        mean = float(w[passed].sum() / w.sum()) if w.sum() > 0 else 0.0
        slopes[str(r)] = {**line.as_dict(), "mean_efficiency": mean, "pt_span_gev": span}
        if r == rate and line.ok and mean > 0:
            rel = gaussian_estimate(line.slope * span / mean, line.slope_err * span / mean)
    return rel, slopes


def process_ranking(columns: Mapping[str, EventColumns], thresholds: Mapping[int, float], s: FindingSettings,
                    plots: Mapping[str, str]) -> dict:
    """Finding 6: efficiency of each process at each rate, ranked, with Clopper-Pearson intervals."""
    ranking, per = {}, {p: {"text": "", "verdict": ""} for p in columns}
    for rate, threshold in thresholds.items():
        effs = {p: fraction_estimate(passes(c.score, threshold), c.weight) for p, c in columns.items()}
        ordered = sorted(effs.items(), key=lambda kv: -kv[1].value)
        ranking[str(rate)] = [{"process": p, **e.as_dict()} for p, e in ordered]
    for p in columns:
        ranks = [1 + [e["process"] for e in r].index(p) for r in ranking.values()]
        per[p] = {"text": "rank " + "/".join(map(str, ranks)), "verdict": "", "ranks": ranks, "plot": plots.get(p, "")}
    return finding_row(
        "6", "Score distributions differ by process; jz4 consistently shows high scores.",
        "efficiency (score >= threshold) per process and rate, Clopper-Pearson 68%/95%; rank at each rate (lowest to "
        "highest rate) shown; score distributions with thresholds in the linked plots",
        "yes if at every rate jz4's 95% lower bound exceeds every other process's 95% upper bound; no if at some rate "
        "another process's lower bound exceeds jz4's upper bound; else inconclusive",
        per, _leader_verdict(ranking, JZ4), {"ranking": ranking})


def _leader_verdict(ranking: Mapping[str, list[dict]], leader: str) -> str:
    verdicts = []
    for entries in ranking.values():
        mine = next((e for e in entries if e["process"] == leader), None)
        if mine is None:
            return INCONCLUSIVE
        others = [e for e in entries if e["process"] != leader]
        if not others or not np.isfinite(mine["value"]):
            return INCONCLUSIVE  # nothing to compare with, or no jz4 events
        if any(e["lo95"] > mine["hi95"] for e in others):
            return NO
        verdicts.append(YES if all(mine["lo95"] > e["hi95"] for e in others) else INCONCLUSIVE)
    return all_of(verdicts)
