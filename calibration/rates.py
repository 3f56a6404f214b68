"""Trigger rates and score thresholds from the zero-bias reference sample (calibration stage).

The rate of a trigger is the colliding-bunch-crossing rate times the (weighted) fraction of
zero-bias events it accepts:

    rate [Hz] = f_bc * sum(w_i for accepted i) / sum(w_i for all i),
    f_bc [Hz] = colliding bunches * LHC revolution frequency (2544 * 11245.5 Hz = 28.61 MHz).

The comparison rule is stated once, here, in :func:`passes`: an event passes the anomaly
trigger when ``score >= threshold``.  Every other module calls :func:`passes`.

Firmware scores are discrete (values of the fixed-point score type), so a threshold is a
value of that type too: :func:`threshold_for_rate` returns the smallest representable
value whose rate does not exceed the target, hence achieved rate <= target.  The rate can
be "unique": events that a baseline menu already accepts (``vetoed``) do not count.

Statistical intervals are Clopper-Pearson.  With per-event weights the counts are replaced
by Kish effective counts (k_eff = p * N_eff, N_eff = (sum w)^2 / sum w^2), which reduce to
the exact unweighted counts when all weights are equal.  This module does no I/O.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
from hist.intervals import clopper_pearson_interval

log = logging.getLogger(__name__)

#: The comparison rule of the anomaly trigger, in words, for reports and logs.
PASS_RULE = ">="

LHC_REVOLUTION_FREQUENCY_HZ = 11245.5
DEFAULT_COLLIDING_BUNCHES = 2544

#: Coverages of the reported intervals: one and two standard deviations, as in the report.
COVERAGE_68 = 0.6827
COVERAGE_95 = 0.95


def passes(scores: np.ndarray, threshold: float) -> np.ndarray:
    """The anomaly-trigger decision: True where ``score >= threshold`` (the rule, stated once)."""
    return np.asarray(scores) >= threshold


def bunch_crossing_rate_hz(colliding_bunches: int, revolution_frequency_hz: float = LHC_REVOLUTION_FREQUENCY_HZ) -> float:
    """Rate of colliding bunch crossings [Hz]: bunches times the revolution frequency."""
    if colliding_bunches <= 0 or revolution_frequency_hz <= 0:
        raise ValueError(f"need positive bunches and frequency, got {colliding_bunches}, {revolution_frequency_hz}")
    return float(colliding_bunches) * float(revolution_frequency_hz)


def clopper_pearson(k: np.ndarray | float, n: np.ndarray | float, coverage: float) -> np.ndarray:
    """Clopper-Pearson bounds (2, ...) of a binomial fraction k/n; (0, 1) where n is 0."""
    k = np.asarray(k, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    safe_n = np.where(n > 0, n, 1.0)
    safe_k = np.clip(np.where(n > 0, k, 0.0), 0.0, safe_n)
    bounds = clopper_pearson_interval(safe_k, safe_n, coverage=coverage)
    bounds[0] = np.where(n > 0, bounds[0], 0.0)
    bounds[1] = np.where(n > 0, bounds[1], 1.0)
    return bounds


def weighted_fraction_interval(
    w_pass: np.ndarray | float, w_total: np.ndarray | float, w2_total: np.ndarray | float, coverage: float
) -> np.ndarray:
    """Clopper-Pearson bounds of a weighted fraction, using Kish effective counts.

    ``w2_total`` is the sum of squared weights of all events.  With unit weights the
    effective counts are the plain counts and the interval is the exact one.
    """
    w_pass = np.asarray(w_pass, dtype=np.float64)
    w_total = np.asarray(w_total, dtype=np.float64)
    w2_total = np.asarray(w2_total, dtype=np.float64)
    events_per_weight = np.divide(w_total, w2_total, out=np.zeros_like(w_total), where=w2_total > 0)
    return clopper_pearson(w_pass * events_per_weight, w_total * events_per_weight, coverage)


@dataclass(frozen=True)
class ThresholdResult:
    """A threshold and the rate it achieves on the reference sample.

    ``n_pass`` is the unweighted number of reference events counted (passing the anomaly
    trigger and, for a unique rate, no menu item); ``weight_pass`` their summed weight.
    """

    target_rate_hz: float
    threshold: float
    rate_hz: float
    n_pass: int
    weight_pass: float
    rate_lo68_hz: float
    rate_hi68_hz: float
    rate_lo95_hz: float
    rate_hi95_hz: float
    n_reference: int

    def as_dict(self) -> dict:
        return asdict(self)


def _next_grid_value_above(value: float, lsb: float | None) -> float:
    """Smallest representable value strictly above ``value`` (float64 next value without a grid)."""
    if lsb is None:
        return float(np.nextafter(value, np.inf))
    return float((np.floor(value / lsb) + 1.0) * lsb)  # exact: lsb is a power of two


def threshold_for_rate(
    scores: np.ndarray,
    weights: np.ndarray,
    target_rate_hz: float,
    bunch_crossing_hz: float,
    lsb: float | None,
    min_value: float = 0.0,
    vetoed: np.ndarray | None = None,
) -> ThresholdResult:
    """Smallest threshold on the score grid whose rate, with ``score >= threshold``, is <= target.

    ``lsb`` is the spacing of the score type (None for a continuous score: the next float64
    above a score value is then used); ``min_value`` the smallest value of the type, returned
    when every event may pass.  Events where ``vetoed`` is True never count (unique rate).
    The rate is ``bunch_crossing_hz * sum(w of counted passing) / sum(w of all)``.
    """
    scores, weights = np.asarray(scores, dtype=np.float64), np.asarray(weights, dtype=np.float64)
    if scores.shape != weights.shape or scores.ndim != 1 or len(scores) == 0:
        raise ValueError(f"need equal, non-empty 1-D scores and weights, got {scores.shape} and {weights.shape}")
    if target_rate_hz < 0 or np.any(weights < 0):
        raise ValueError("target rate and weights must be non-negative")
    counted = np.ones(len(scores), bool) if vetoed is None else ~np.asarray(vetoed, bool)

    # Rate above each distinct score value v_k: the weight of counted events with score >= v_k.
    values, inverse = np.unique(scores, return_inverse=True)
    weight_at = np.bincount(inverse, weights=np.where(counted, weights, 0.0), minlength=len(values))
    weight_at_or_above = np.cumsum(weight_at[::-1])[::-1]
    rate_at_or_above = bunch_crossing_hz * weight_at_or_above / weights.sum()

    # The first v_k whose rate fits; the threshold is the grid value right above v_{k-1}.
    fits = np.flatnonzero(rate_at_or_above <= target_rate_hz)
    k = int(fits[0]) if len(fits) else len(values)
    threshold = float(min_value) if k == 0 else _next_grid_value_above(values[k - 1], lsb)
    return summarize_threshold(scores, weights, threshold, target_rate_hz, bunch_crossing_hz, vetoed)


def summarize_threshold(
    scores: np.ndarray,
    weights: np.ndarray,
    threshold: float,
    target_rate_hz: float,
    bunch_crossing_hz: float,
    vetoed: np.ndarray | None = None,
) -> ThresholdResult:
    """Rate, counts and intervals of the events counted at ``threshold`` (see threshold_for_rate)."""
    counted = passes(scores, threshold)
    if vetoed is not None:
        counted &= ~np.asarray(vetoed, bool)
    w_total, w2_total = float(weights.sum()), float(np.square(weights).sum())
    w_pass = float(weights[counted].sum())

    lo68, hi68 = weighted_fraction_interval(w_pass, w_total, w2_total, COVERAGE_68)
    lo95, hi95 = weighted_fraction_interval(w_pass, w_total, w2_total, COVERAGE_95)
    return ThresholdResult(
        target_rate_hz=float(target_rate_hz),
        threshold=float(threshold),
        rate_hz=bunch_crossing_hz * w_pass / w_total,
        n_pass=int(np.count_nonzero(counted)),
        weight_pass=w_pass,
        rate_lo68_hz=bunch_crossing_hz * float(lo68),
        rate_hi68_hz=bunch_crossing_hz * float(hi68),
        rate_lo95_hz=bunch_crossing_hz * float(lo95),
        rate_hi95_hz=bunch_crossing_hz * float(hi95),
        n_reference=len(scores),
    )


def trigger_rate(
    accepted: np.ndarray, weights: np.ndarray, bunch_crossing_hz: float
) -> tuple[float, float, float, int]:
    """Rate [Hz] of a boolean decision on the reference sample, with its 68% interval and count."""
    weights = np.asarray(weights, dtype=np.float64)
    accepted = np.asarray(accepted, bool)
    w_total, w_pass = float(weights.sum()), float(weights[accepted].sum())
    lo, hi = weighted_fraction_interval(w_pass, w_total, float(np.square(weights).sum()), COVERAGE_68)
    return bunch_crossing_hz * w_pass / w_total, bunch_crossing_hz * float(lo), bunch_crossing_hz * float(hi), int(accepted.sum())
