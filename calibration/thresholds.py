"""Thresholds, menu rates and decision flips on the reference sample from its merged tally (calibration stage).

The reference sample is never held in memory: these functions read the exact score tail
and the summed weights of :class:`.tally.SampleTally` (see :mod:`.tally` for why they are
exact).  The threshold rule and the rate formula are those of :mod:`.rates`: the threshold
is the smallest value of the score grid whose unique rate (events passing the anomaly
trigger and not the menu) does not exceed the target, and an event passes when
``score >= threshold``.
"""

from __future__ import annotations

import logging

import numpy as np

from gelato.calibration.config import CalibrationSettings
from gelato.calibration.rates import (
    COVERAGE_68, COVERAGE_95, ThresholdResult, _next_grid_value_above, passes, weighted_fraction_interval,
)
from gelato.calibration.tally import KINDS, SampleTally, ScoreTail

log = logging.getLogger(__name__)


class TailTooShortError(RuntimeError):
    """A threshold falls below the part of the score distribution the tally kept exactly."""


def rate_of(w_pass: float, n_pass: int, reference: SampleTally, f_bc: float) -> dict:
    """Rate [Hz] of a decision with weight ``w_pass`` on the reference, its 68% interval and count."""
    lo, hi = weighted_fraction_interval(w_pass, reference.sum_weights, reference.sum_w2, COVERAGE_68)
    return {"rate_hz": f_bc * w_pass / reference.sum_weights, "lo68_hz": f_bc * float(lo),
            "hi68_hz": f_bc * float(hi), "n_pass": int(n_pass)}


def threshold_from_tail(
    reference: SampleTally, kind: str, target_rate_hz: float, f_bc: float, lsb: float, min_value: float
) -> ThresholdResult:
    """Smallest grid threshold whose unique rate is <= the target, from the exact tail of ``kind`` scores."""
    tail: ScoreTail = reference.tail
    scores, cut = tail.scores[kind], tail.cut[kind]
    counted = (scores >= cut) & ~tail.menu_pass
    values, inverse = np.unique(scores[counted], return_inverse=True)
    weight_at = np.bincount(inverse, weights=tail.weight[counted], minlength=len(values))
    rate_at_or_above = f_bc * np.cumsum(weight_at[::-1])[::-1] / reference.sum_weights

    too_high = np.flatnonzero(rate_at_or_above > target_rate_hz)
    if len(too_high):
        threshold = _next_grid_value_above(values[too_high[-1]], lsb)
    elif cut == -np.inf:
        threshold = float(min_value)
    else:
        above = f_bc * float(tail.weight[counted].sum()) / reference.sum_weights
        raise TailTooShortError(
            f"{reference.process} {kind}: the exact score tail starts at {cut:g} and holds a unique rate of only "
            f"{above:.4g} Hz, below the target {target_rate_hz:g} Hz; expected the tail to reach past the target "
            "(raise threshold_tail_events in the calibration config)")
    return summarize_from_tail(reference, kind, threshold, target_rate_hz, f_bc)


def summarize_from_tail(
    reference: SampleTally, kind: str, threshold: float, target_rate_hz: float, f_bc: float
) -> ThresholdResult:
    """Rate, counts and intervals of reference events passing ``threshold`` and no menu item."""
    tail = reference.tail
    if threshold < tail.cut[kind]:
        raise TailTooShortError(f"{reference.process} {kind}: threshold {threshold:g} is below the exact tail "
                                f"(from {tail.cut[kind]:g}); expected a threshold inside it")
    counted = passes(tail.scores[kind], threshold) & ~tail.menu_pass
    w_pass = float(tail.weight[counted].sum())
    w_total, w2_total = reference.sum_weights, reference.sum_w2
    lo68, hi68 = weighted_fraction_interval(w_pass, w_total, w2_total, COVERAGE_68)
    lo95, hi95 = weighted_fraction_interval(w_pass, w_total, w2_total, COVERAGE_95)
    return ThresholdResult(
        target_rate_hz=float(target_rate_hz), threshold=float(threshold), rate_hz=f_bc * w_pass / w_total,
        n_pass=int(np.count_nonzero(counted)), weight_pass=w_pass,
        rate_lo68_hz=f_bc * float(lo68), rate_hi68_hz=f_bc * float(hi68),
        rate_lo95_hz=f_bc * float(lo95), rate_hi95_hz=f_bc * float(hi95), n_reference=reference.n_events,
    )


def compute_thresholds(settings: CalibrationSettings, reference: SampleTally, score_type) -> dict[str, dict[int, dict]]:
    """Thresholds for each score kind and target unique rate, with total and overlap rates."""
    f_bc, tail, out = settings.bunch_crossing_hz, reference.tail, {}
    for kind in KINDS:
        out[kind] = {}
        for rate in settings.rates_hz:
            res = threshold_from_tail(reference, kind, rate, f_bc, score_type.lsb, score_type.min_value)
            accepted = passes(tail.scores[kind], res.threshold)
            total = rate_of(float(tail.weight[accepted].sum()), np.count_nonzero(accepted), reference, f_bc)
            overlap_sel = accepted & tail.menu_pass
            overlap = rate_of(float(tail.weight[overlap_sel].sum()), np.count_nonzero(overlap_sel), reference, f_bc)
            entry = {**res.as_dict(), "threshold_code": int(round(res.threshold / score_type.lsb)),
                     "total_rate_hz": total["rate_hz"], "n_pass_total": total["n_pass"],
                     "overlap_rate_hz": overlap["rate_hz"], "n_overlap": overlap["n_pass"]}
            entry["warning"] = _low_count_warning(settings, kind, rate, res.n_pass, reference.n_events)
            if res.threshold > score_type.max_value:
                entry["warning"] = (f"{kind} {rate} Hz: threshold {res.threshold:g} is above the largest value of "
                                    f"{score_type} ({score_type.max_value:g}): the scores saturate; "
                                    "no setting reaches the target")
                log.warning(entry["warning"])
            out[kind][rate] = entry
    return out


def _low_count_warning(settings: CalibrationSettings, kind: str, rate: int, n_pass: int, n_ref: int) -> str | None:
    if n_pass >= settings.min_passing_events:
        return None
    needed = settings.min_passing_events * settings.bunch_crossing_hz / rate
    msg = (f"{kind} {rate} Hz: only {n_pass} of {n_ref} reference events pass; "
           f"~{needed:.2g} zero-bias events would give {settings.min_passing_events}")
    log.warning(msg)
    return msg


def compute_menu_rates(settings: CalibrationSettings, reference: SampleTally) -> dict:
    """Rate of each emulated menu item and of the menu decision used on the reference sample."""
    f_bc = settings.bunch_crossing_hz
    items = {name: rate_of(float(reference.menu_item_w[i]), reference.menu_item_n[i], reference, f_bc)
             for i, name in enumerate(reference.menu_item_names)}
    return {"source": reference.menu_source, "items": items,
            "emulated_total": rate_of(reference.menu_emulated_w, reference.menu_emulated_n, reference, f_bc),
            "total": rate_of(reference.menu_used_w, reference.menu_used_n, reference, f_bc)}


def flip_counts(emulated: np.ndarray, float_: np.ndarray, n_events: int) -> dict:
    """Counts of decisions that differ between the emulated and the float score, as in summary.json."""
    n_flip = int(np.count_nonzero(emulated != float_))
    return {"n_flips": n_flip, "n_events": n_events, "fraction": n_flip / n_events if n_events else 0.0,
            "emulated_only": int(np.count_nonzero(emulated & ~float_)),
            "float_only": int(np.count_nonzero(float_ & ~emulated))}


def flips_from_tail(settings: CalibrationSettings, reference: SampleTally, thresholds: dict) -> dict[int, dict]:
    """Per rate, the reference events whose decision flips; exact because both thresholds lie in the tail."""
    tail, out = reference.tail, {}
    for rate in settings.rates_hz:
        cuts = {k: thresholds[k][rate]["threshold"] for k in KINDS}
        if any(cuts[k] < tail.cut[k] for k in KINDS):
            raise TailTooShortError(f"{reference.process} {rate} Hz: thresholds {cuts} below the exact tail {tail.cut}")
        emu = passes(tail.scores["emulated"], cuts["emulated"])
        flt = passes(tail.scores["float"], cuts["float"])
        out[rate] = flip_counts(emu, flt, reference.n_events)
    return out
