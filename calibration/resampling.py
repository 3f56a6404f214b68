"""Weighted statistics with bootstrap intervals, and the verdict rules of the findings (calibration stage).

Used by :mod:`.findings` to put an uncertainty on every number it quotes.  Three pieces:

* weighted statistics that accept any per-event weights: the Spearman rank correlation
  (weighted Pearson correlation of weighted mid-ranks; with unit weights it equals
  ``scipy.stats.spearmanr``, ties included) and quantiles (smallest value whose
  cumulative weight reaches ``q`` of the total, numpy's ``inverted_cdf``);
* :func:`bootstrap`: events are drawn with replacement; a resample multiplies each
  event's weight by the number of times it was drawn (``numpy.random.default_rng(seed)``),
  so the same seed gives the same interval and no resample copies the data.  Intervals are
  the central 68% and 95% percentiles of the resampled values, placed around the
  full-sample value; samples above 50,000 events use the rescaled subsample bootstrap;
* verdicts: "yes" / "no" / "inconclusive" from an interval or a significance, with the
  boundaries stated once here (:func:`interval_verdict`, :func:`significance_verdict`).

Sorting is done once per variable (:class:`Ranked`); each resample is then O(N).  This
module does no I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

log = logging.getLogger(__name__)

YES, NO, INCONCLUSIVE = "yes", "no", "inconclusive"

#: Default number of bootstrap resamples and seed of the findings.
N_RESAMPLES = 200
SEED = 20260613
#: Largest sample bootstrapped directly; larger ones use a subsample (see :func:`bootstrap`).
MAX_BOOTSTRAP_EVENTS = 50_000
#: Fewer events than this give no interval (-inf, inf): a resampled handful of events says nothing.
MIN_BOOTSTRAP_EVENTS = 20


@dataclass(frozen=True)
class Estimate:
    """A statistic with its central 68% and 95% intervals (bootstrap percentiles or Clopper-Pearson)."""

    value: float
    lo68: float
    hi68: float
    lo95: float
    hi95: float

    def as_dict(self) -> dict:
        return {k: float(v) for k, v in asdict(self).items()}

    def text(self, digits: int = 3) -> str:
        """``value [lo68, hi68]`` in ``digits`` significant digits."""
        return f"{self.value:.{digits}g} [{self.lo68:.{digits}g}, {self.hi68:.{digits}g}]"


class Ranked:
    """A variable sorted once: its distinct values and each event's index among them."""

    def __init__(self, values: np.ndarray) -> None:
        self.distinct, self.group = np.unique(np.asarray(values, dtype=np.float64), return_inverse=True)

    def midranks(self, weights: np.ndarray) -> np.ndarray:
        """Weighted mid-rank of each event: weight below its value plus half the weight at it."""
        at = np.bincount(self.group, weights=weights, minlength=len(self.distinct))
        return (np.cumsum(at) - 0.5 * at)[self.group]

    def quantile(self, weights: np.ndarray, q: float) -> float:
        """Smallest value whose cumulative weight reaches ``q`` of the total (nan if no weight)."""
        at = np.bincount(self.group, weights=weights, minlength=len(self.distinct))
        cumulative = np.cumsum(at)
        if len(cumulative) == 0 or cumulative[-1] <= 0:
            return float("nan")
        k = int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))
        return float(self.distinct[min(k, len(self.distinct) - 1)])


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> float:
    """Weighted Pearson correlation; nan when either variable is constant or there is no weight."""
    total = weights.sum()
    if total <= 0:
        return float("nan")
    dx, dy = x - (weights @ x) / total, y - (weights @ y) / total
    sxx, syy = weights @ (dx * dx), weights @ (dy * dy)
    if sxx <= 0 or syy <= 0:
        return float("nan")
    return float((weights @ (dx * dy)) / np.sqrt(sxx * syy))


def weighted_spearman(x: Ranked, y: Ranked, weights: np.ndarray) -> float:
    """Spearman rank correlation with per-event weights (mid-ranks for ties)."""
    return weighted_pearson(x.midranks(weights), y.midranks(weights), weights)


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """Weighted mean (nan without weight)."""
    total = weights.sum()
    return float(weights @ values / total) if total > 0 else float("nan")


#: Signature of a bootstrapped statistic: built once from the per-event columns, then
#: evaluated for any per-event weights.
StatisticBuilder = Callable[[Sequence[np.ndarray]], Callable[[np.ndarray], float]]


def bootstrap(
    build: StatisticBuilder,
    columns: Sequence[np.ndarray],
    weights: np.ndarray,
    n_resamples: int = N_RESAMPLES,
    seed: int = SEED,
    max_events: int = MAX_BOOTSTRAP_EVENTS,
) -> Estimate:
    """A statistic on the whole sample with bootstrap 68%/95% intervals.

    ``build(columns)`` returns the statistic as a function of per-event weights (so that
    sorting is done once).  Each resample draws events with replacement (counts from
    ``numpy.random.default_rng(seed)``) and multiplies their weights by the counts.  Samples
    larger than ``max_events`` are bootstrapped on a fixed random subsample of that size and
    the spread is scaled by sqrt(subsample / sample), the rescaled (m-out-of-n) bootstrap
    for statistics whose error falls as 1/sqrt(N).  Below 20 events there is no interval.
    Resamples where the statistic is nan are
    dropped; with fewer than 10 valid ones the intervals are (-inf, inf), which every
    verdict reads as inconclusive.
    """
    weights = np.asarray(weights, dtype=np.float64)
    value = float(build(columns)(weights)) if len(weights) else float("nan")
    if len(weights) < MIN_BOOTSTRAP_EVENTS:
        return Estimate(value, -np.inf, np.inf, -np.inf, np.inf)
    rng = np.random.default_rng(seed)
    n, scale = len(weights), 1.0
    if n > max_events:
        keep = np.sort(rng.choice(n, max_events, replace=False))
        columns, weights, scale = [np.asarray(c)[keep] for c in columns], weights[keep], np.sqrt(max_events / n)
    statistic, m = build(columns), len(weights)
    center = float(statistic(weights)) if scale != 1.0 else value

    draws = np.array([statistic(weights * np.bincount(rng.integers(0, m, m), minlength=m)) for _ in range(n_resamples)])
    draws = draws[np.isfinite(draws)] - center
    if len(draws) < 10 or not np.isfinite(value) or not np.isfinite(center):
        return Estimate(value, -np.inf, np.inf, -np.inf, np.inf)
    lo95, lo68, hi68, hi95 = value + scale * np.percentile(draws, [2.5, 15.865, 84.135, 97.5])
    return Estimate(value, float(lo68), float(hi68), float(lo95), float(hi95))


def interval_verdict(estimate: Estimate, low: float = -np.inf, high: float = np.inf) -> str:
    """Is the statistic inside the open range (low, high)?  Decided on the 95% interval.

    "yes" when the whole 95% interval lies strictly inside, "no" when it lies wholly outside
    (touching a boundary from outside counts as outside), "inconclusive" when it straddles
    a boundary.
    """
    if low < estimate.lo95 and estimate.hi95 < high:
        return YES
    if estimate.hi95 <= low or estimate.lo95 >= high:
        return NO
    return INCONCLUSIVE


def significance_verdict(z: float, yes_at: float = 3.0, no_below: float = 2.0) -> str:
    """An effect measured in standard deviations: "yes" at >= ``yes_at``, "no" below ``no_below``."""
    if not np.isfinite(z):
        return INCONCLUSIVE
    if z >= yes_at:
        return YES
    if z < no_below:
        return NO
    return INCONCLUSIVE


def all_of(verdicts: Sequence[str]) -> str:
    """Combined verdict of claims that must all hold: any "no" -> no, all "yes" -> yes."""
    if not verdicts:
        return INCONCLUSIVE
    if NO in verdicts:
        return NO
    return YES if all(v == YES for v in verdicts) else INCONCLUSIVE


def majority_of(verdicts: Sequence[str]) -> str:
    """"Most" in the paper's sense: more than half "yes" -> yes; when even all undecided could not make it -> no."""
    n, n_yes, n_open = len(verdicts), verdicts.count(YES), verdicts.count(INCONCLUSIVE)
    if n == 0:
        return INCONCLUSIVE
    if 2 * n_yes > n:
        return YES
    if 2 * (n_yes + n_open) <= n:
        return NO
    return INCONCLUSIVE
