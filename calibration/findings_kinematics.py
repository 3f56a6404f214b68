"""Findings 1-3 of the seed paper: the score against jet pT, jet multiplicity and dijet mass (calibration stage).

Each function returns rows for :func:`gelato.calibration.findings.measure_findings`;
statistics are weighted and bootstrapped (:mod:`.resampling`), criteria are stated in the
rows themselves and in docs/findings.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np

from gelato import features as F
from gelato.calibration.findings import JZ1, JZ4, EventColumns, FindingSettings, finding_row, verdict_rate
from gelato.calibration.rates import COVERAGE_68, COVERAGE_95, passes, weighted_fraction_interval
from gelato.calibration.resampling import (
    INCONCLUSIVE, MIN_BOOTSTRAP_EVENTS, NO, YES, Estimate, Ranked, StatisticBuilder, bootstrap, interval_verdict,
    majority_of, significance_verdict, weighted_mean, weighted_spearman,
)

log = logging.getLogger(__name__)

MISSING = {"text": "not in samples", "verdict": INCONCLUSIVE}


def _bootstrap(build: StatisticBuilder, columns: list[np.ndarray], weights: np.ndarray, s: FindingSettings) -> Estimate:
    return bootstrap(build, columns, weights, s.n_resamples, s.seed, s.bootstrap_max_events)


def _spearman(columns: list[np.ndarray]) -> Callable[[np.ndarray], float]:
    rx, ry = Ranked(columns[0]), Ranked(columns[1])
    return lambda w: weighted_spearman(rx, ry, w)


def _quantile(q: float) -> StatisticBuilder:
    def build(columns: list[np.ndarray]) -> Callable[[np.ndarray], float]:
        ranked = Ranked(columns[0])
        return lambda w: ranked.quantile(w, q)

    return build


def spearman_estimate(x: np.ndarray, y: np.ndarray, weights: np.ndarray, settings: FindingSettings) -> Estimate:
    """Weighted Spearman correlation of x and y with its bootstrap intervals."""
    return _bootstrap(_spearman, [x, y], weights, settings)


def quantile_estimate(values: np.ndarray, weights: np.ndarray, q: float, settings: FindingSettings) -> Estimate:
    """Weighted quantile ``q`` of ``values`` with its bootstrap intervals."""
    return _bootstrap(_quantile(q), [values], weights, settings)


def _entry(estimate: Estimate, verdict: str, **extra) -> dict:
    return {"text": estimate.text(), "verdict": verdict, **estimate.as_dict(), **extra}  # extra may replace text


def largest_fall(values: np.ndarray, down: np.ndarray, up: np.ndarray) -> tuple[float, int, int]:
    """Largest (v_i - v_j) / hypot(down_i, up_j) over i < j, with (i, j); 0 when nothing falls."""
    n = len(values)
    if n < 2:
        return 0.0, 0, 0
    fall = values[:, None] - values[None, :]
    sigma = np.hypot(down[:, None], up[None, :])
    z = np.nan_to_num(np.divide(fall, sigma, out=np.zeros_like(fall), where=sigma > 0), nan=0.0)
    z[np.tril_indices(n)] = 0.0  # only i < j
    i, j = np.unravel_index(int(np.argmax(z)), z.shape)
    return float(max(z[i, j], 0.0)), int(i), int(j)


def median_profile(
    x: np.ndarray, score: np.ndarray, weights: np.ndarray, n_bins: int, settings: FindingSettings
) -> dict:
    """Median score in equal-population bins of x, with intervals and the largest fall between bins."""
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, n_bins + 1))) if len(x) else np.zeros(1)
    bins = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
    medians = [quantile_estimate(score[bins == b], weights[bins == b], 0.5, settings) for b in range(len(edges) - 1)]
    m = np.array([e.value for e in medians])
    down, up = m - np.array([e.lo68 for e in medians]), np.array([e.hi68 for e in medians]) - m
    z, i, j = largest_fall(m, down, up) if np.isfinite(m).sum() >= 2 else (float("nan"), 0, 0)
    return {"edges": edges.tolist(), "medians": [e.as_dict() for e in medians], "fall_sigma": z,
            "fall_from_bin": i, "fall_to_bin": j}


def score_vs_jet_pt(columns: Mapping[str, EventColumns], s: FindingSettings) -> list[dict]:
    """Finding 1: rank correlation with the leading and subleading jet pT; non-monotonic jz4 profile."""
    rows = []
    for rank, label in ((0, "leading"), (1, "subleading")):
        per = {}
        for p, c in columns.items():
            has = c.jet_pt[:, rank] > 0
            est = spearman_estimate(c.score[has], c.jet_pt[has, rank], c.weight[has], s)
            per[p] = _entry(est, interval_verdict(est, 0.0), n_events=int(has.sum()))
        rows.append(finding_row(
            f"1{'ab'[rank]}", f"The score correlates positively with the {label} jet pT for most processes.",
            f"Spearman rho(score, jet{rank} pT), events with that jet; bootstrap 68% interval",
            "per process: yes if the 95% interval is above 0, no if below or touching it; finding: yes if more than "
            "half of the processes say yes, no if even the inconclusive ones could not make a majority",
            per, majority_of([v["verdict"] for v in per.values()])))

    per, details = {}, {}
    for p, c in columns.items():
        has = c.jet_pt[:, 0] > 0
        prof = median_profile(c.jet_pt[has, 0], c.score[has], c.weight[has], s.profile_bins, s)
        verdict = significance_verdict(prof["fall_sigma"], s.yes_sigma, s.no_sigma)
        per[p] = {"text": f"{prof['fall_sigma']:.2f} sigma", "verdict": verdict, "fall_sigma": prof["fall_sigma"]}
        details[p] = prof
    rows.append(finding_row(
        "1c", "The score does not rise monotonically with the leading jet pT in jz4.",
        f"median score in {s.profile_bins} equal-population bins of jet0 pT; largest fall from an earlier to a later "
        "bin in sigmas (68% bootstrap errors of the two medians in quadrature)",
        f"non-monotonic (yes) at >= {s.yes_sigma:g} sigma, monotonic within errors (no) below {s.no_sigma:g} sigma, "
        "inconclusive between; the verdict is jz4's, other processes are shown for comparison",
        per, per[JZ4]["verdict"] if JZ4 in per else INCONCLUSIVE, {"profiles": details}))
    return rows


def multiplicity_table(c: EventColumns, s: FindingSettings) -> list[dict]:
    """Per jet multiplicity 0..6: events, weighted mean, 90% and 99% quantiles of the score with intervals."""
    out = []
    for n in range(F.N_JETS + 1):
        sel = c.n_jets == n
        if not sel.any():
            continue
        score, w = c.score[sel], c.weight[sel]
        mean = _bootstrap(lambda cols: lambda ww: weighted_mean(cols[0], ww), [score], w, s)
        out.append({"n_jets": n, "n_events": int(sel.sum()), "mean": mean.as_dict(),
                    "q90": quantile_estimate(score, w, 0.90, s).as_dict(),
                    "q99": quantile_estimate(score, w, 0.99, s).as_dict()})
    return out


def top_multiplicity_shift(c: EventColumns, s: FindingSettings) -> Estimate:
    """Mean jet multiplicity of the events at or above the (1 - top_fraction) score quantile minus that of all."""
    def build(columns: list[np.ndarray]) -> Callable[[np.ndarray], float]:
        score, n_jets = columns
        ranked = Ranked(score)

        def shift(w: np.ndarray) -> float:
            top = score >= ranked.quantile(w, 1.0 - s.top_fraction)
            return weighted_mean(n_jets[top], w[top]) - weighted_mean(n_jets, w)

        return shift

    return _bootstrap(build, [c.score, c.n_jets.astype(np.float64)], c.weight, s)


def fraction_estimate(selected: np.ndarray, weights: np.ndarray) -> Estimate:
    """Weighted fraction of ``selected`` with Clopper-Pearson 68%/95% bounds (Kish effective counts)."""
    w_pass, w_total, w2 = float(weights[selected].sum()), float(weights.sum()), float(np.square(weights).sum())
    lo68, hi68 = weighted_fraction_interval(w_pass, w_total, w2, COVERAGE_68)
    lo95, hi95 = weighted_fraction_interval(w_pass, w_total, w2, COVERAGE_95)
    value = w_pass / w_total if w_total > 0 else float("nan")
    return Estimate(value, float(lo68), float(hi68), float(lo95), float(hi95))


def score_vs_multiplicity(columns: Mapping[str, EventColumns], s: FindingSettings) -> list[dict]:
    """Finding 2: high scores at high multiplicity; jz1 events with < 6 jets below the paper's score 1."""
    per, tables = {}, {}
    for p, c in columns.items():
        tables[p] = multiplicity_table(c, s)
        est = top_multiplicity_shift(c, s)
        if p == JZ1:  # the paper makes this claim for the other processes only
            per[p] = _entry(est, "", text=f"{est.text()} (not part of the claim)")
        else:
            per[p] = _entry(est, interval_verdict(est, 0.0))
    others = [v["verdict"] for p, v in per.items() if p != JZ1]
    top = f"top {100 * s.top_fraction:g}%"
    rows = [finding_row(
        "2a", "High-score events cluster at higher jet multiplicities (processes other than jz1).",
        f"mean jet multiplicity of the {top} highest-score events minus that of all events; bootstrap 68% interval",
        "per process: yes if the 95% interval is above 0; finding: more than half of the processes other than jz1",
        per, majority_of(others), {"per_multiplicity": tables})]

    cut = s.paper_score_cut
    if JZ1 not in columns:
        return [*rows, finding_row("2b", "jz1 events with fewer than six jets have scores below 1.", "", "",
                                   {JZ1: MISSING}, INCONCLUSIVE)]
    c = columns[JZ1]
    low = c.n_jets < F.N_JETS
    est = fraction_estimate(c.score[low] >= cut, c.weight[low])
    six = fraction_estimate(c.n_jets == F.N_JETS, c.weight)
    quantile_of_cut = float(c.weight[c.score < cut].sum() / c.weight.sum()) if len(c) else float("nan")
    verdict = interval_verdict(est, -np.inf, s.max_low_multiplicity_fraction)
    entry = _entry(est, verdict, n_low_multiplicity=int(low.sum()), fraction_six_jets=six.as_dict(),
                   score_quantile_of_cut=quantile_of_cut)
    entry["text"] = (f"{est.text()} of {int(low.sum())} events with < 6 jets; six-jet events are {six.text()} of jz1 "
                     "(paper: almost all)")
    rows.append(finding_row(
        "2b", f"jz1 events with fewer than six jets have scores below {cut:g} (in the paper's score units).",
        f"fraction of jz1 events with < 6 jets and score >= {cut:g}; Clopper-Pearson 68% interval. Our score scale is "
        f"that of our model: {100 * quantile_of_cut:.1f}% of all jz1 events score below {cut:g} here",
        f"yes if the 95% upper bound is below {s.max_low_multiplicity_fraction:g}, no if the 95% lower bound "
        "reaches it",
        {JZ1: entry}, entry["verdict"]))
    return rows


def trend_class(est: Estimate, negligible: float) -> str:
    """'up', 'down' or 'flat' when the 95% interval is wholly above, below or inside +-negligible; else 'open'."""
    if est.lo95 > negligible:
        return "up"
    if est.hi95 < -negligible:
        return "down"
    if -negligible < est.lo95 and est.hi95 < negligible:
        return "flat"
    return "open"


def universal_trend_verdict(classes: list[str]) -> str:
    """'No universal trend' holds when two determined processes differ; fails when all go the same way."""
    determined = {c for c in classes if c != "open"}
    if len(determined) >= 2:
        return YES
    if classes and len(determined) == 1 and "open" not in classes and determined <= {"up", "down"}:
        return NO
    return INCONCLUSIVE


def score_vs_mjj(
    columns: Mapping[str, EventColumns], thresholds: Mapping[int, float], s: FindingSettings
) -> list[dict]:
    """Finding 3: correlation with mjj per process, and mjj of events above versus below each threshold."""
    per = {}
    for p, c in columns.items():
        two = c.n_jets >= 2
        est = spearman_estimate(c.score[two], c.mjj[two], c.weight[two], s)
        per[p] = _entry(est, trend_class(est, s.negligible_rho), n_events=int(two.sum()))
    row_a = finding_row(
        "3a", "There is no universal trend between the score and the dijet mass mjj.",
        "Spearman rho(score, mjj of the two leading jets), events with >= 2 jets; bootstrap 68% interval",
        f"each process is up / down / flat when its 95% interval is above {s.negligible_rho:g}, below "
        f"-{s.negligible_rho:g}, or inside +-{s.negligible_rho:g} (else open); yes if two processes fall in different "
        "classes, no if all are up or all down",
        per, universal_trend_verdict([v["verdict"] for v in per.values()]))

    rate = verdict_rate(thresholds, s.verdict_rate_hz)
    per_b, quartiles = {}, {}
    for p, c in columns.items():
        two = c.n_jets >= 2
        quartiles[p] = {str(r): _mjj_quartiles(c, two, t) for r, t in thresholds.items()}
        est = _median_mjj_difference(c, two, thresholds[rate], s)
        per_b[p] = _entry(est, interval_verdict(est, -np.inf, 0.0), rate_hz=rate)
    row_b = finding_row(
        "3b", "Events above the threshold populate relatively low mjj.",
        f"median mjj of events passing the {rate} Hz threshold minus that of failing events [GeV]; bootstrap 68% "
        "interval; quartiles at every rate in the details",
        "per process: yes if the 95% interval is below 0, no if it is at or above 0; finding: more than half of the "
        "processes",
        per_b, majority_of([v["verdict"] for v in per_b.values()]), {"mjj_quartiles": quartiles})
    return [row_a, row_b]


def _mjj_quartiles(c: EventColumns, two: np.ndarray, threshold: float) -> dict:
    out = {}
    for label, sel in (("pass", two & passes(c.score, threshold)), ("fail", two & ~passes(c.score, threshold))):
        ranked, w = Ranked(c.mjj[sel]), c.weight[sel]
        out[label] = {"n_events": int(sel.sum()), "q25": ranked.quantile(w, 0.25), "median": ranked.quantile(w, 0.5),
                      "q75": ranked.quantile(w, 0.75)}
    return out


def _median_mjj_difference(c: EventColumns, two: np.ndarray, threshold: float, s: FindingSettings) -> Estimate:
    def build(columns: list[np.ndarray]) -> Callable[[np.ndarray], float]:
        mjj, passed = columns[0], columns[1].astype(bool)
        high, low = Ranked(mjj[passed]), Ranked(mjj[~passed])
        return lambda w: high.quantile(w[passed], 0.5) - low.quantile(w[~passed], 0.5)

    passed = passes(c.score[two], threshold)
    estimate = _bootstrap(build, [c.mjj[two], passed], c.weight[two], s)
    if min(int(passed.sum()), int((~passed).sum())) < MIN_BOOTSTRAP_EVENTS:  # a median of a few events has no
        return Estimate(estimate.value, -np.inf, np.inf, -np.inf, np.inf)  # bootstrap interval worth showing
    return estimate
