"""Shapes of efficiency curves: turn-on fit, low-pT dip, linear slope (calibration stage).

An efficiency curve here is binned from per-event values (e.g. leading-jet pT in GeV), the
trigger decision and the event weights, with the binning and the 68% Clopper-Pearson
intervals of :mod:`.efficiency` and :mod:`.rates` (Kish effective counts for weights).
Three descriptions of such a curve, used by :mod:`.findings`:

* :func:`fit_turn_on`: the error-function turn-on of a threshold trigger,
  ``eff(x) = plateau / 2 * (1 + erf((x - x50) / (sqrt(2) * width)))``, fitted with
  ``scipy.optimize.curve_fit`` to the populated bins, each weighted by its symmetrized
  68% interval (``absolute_sigma``).  ``x50`` is where the curve reaches half its plateau,
  ``width`` the Gaussian resolution of the edge;
* :func:`dip_significance`: how strongly the curve falls and then rises again.  For each
  candidate dip bin j, the largest fall from an earlier bin i and the largest rise to a
  later bin k are measured in binomial standard deviations (the lower 68% error of the
  higher bin and the upper 68% error of the dip bin, in quadrature); the dip's
  significance is the smaller of the two, and the curve's the largest over j;
* :func:`fit_line`: a weighted least-squares straight line with the slope's uncertainty.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import asdict, dataclass

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import erf

from gelato.calibration.efficiency import bin_index
from gelato.calibration.rates import COVERAGE_68, weighted_fraction_interval

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Curve:
    """A binned efficiency: bin edges, per-bin efficiency with 68% bounds, and summed weights."""

    edges: np.ndarray
    efficiency: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    weight: np.ndarray
    n_events: np.ndarray

    @property
    def centers(self) -> np.ndarray:
        return 0.5 * (self.edges[1:] + self.edges[:-1])

    @property
    def populated(self) -> np.ndarray:
        return self.weight > 0

    @property
    def sigma(self) -> np.ndarray:
        """Symmetrized 68% error of each bin."""
        return 0.5 * (self.hi - self.lo)


def efficiency_curve(values: np.ndarray, passed: np.ndarray, weights: np.ndarray, edges: np.ndarray) -> Curve:
    """Efficiency of ``passed`` versus ``values`` (underflow into the first bin, overflow into the last)."""
    values, passed, weights = np.asarray(values), np.asarray(passed, bool), np.asarray(weights, np.float64)
    if not (values.shape == passed.shape == weights.shape):
        raise ValueError(f"values, decisions and weights differ in shape: {values.shape}, {passed.shape}, "
                         f"{weights.shape}")
    nbins = len(edges) - 1
    idx = bin_index(values, edges)
    total = np.bincount(idx, weights=weights, minlength=nbins)
    total_w2 = np.bincount(idx, weights=weights**2, minlength=nbins)
    passing = np.bincount(idx[passed], weights=weights[passed], minlength=nbins)

    eff = np.divide(passing, total, out=np.zeros(nbins), where=total > 0)
    lo, hi = weighted_fraction_interval(passing, total, total_w2, COVERAGE_68)
    counts = np.bincount(idx, minlength=nbins)
    return Curve(np.asarray(edges, np.float64), eff, np.asarray(lo), np.asarray(hi), total, counts)


def erf_turn_on(x: np.ndarray, plateau: float, x50: float, width: float) -> np.ndarray:
    """The turn-on model: plateau/2 * (1 + erf((x - x50) / (sqrt(2) width)))."""
    return 0.5 * plateau * (1.0 + erf((x - x50) / (np.sqrt(2.0) * width)))


@dataclass(frozen=True)
class TurnOnFit:
    """Fitted turn-on parameters with their 1-sigma errors; ``ok`` False when the fit failed (see message)."""

    ok: bool
    plateau: float = float("nan")
    plateau_err: float = float("nan")
    x50: float = float("nan")
    x50_err: float = float("nan")
    width: float = float("nan")
    width_err: float = float("nan")
    chi2: float = float("nan")
    ndf: int = 0
    x_min: float = float("nan")
    x_max: float = float("nan")
    message: str = ""

    def as_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in asdict(self).items()}


def fit_turn_on(curve: Curve) -> TurnOnFit:
    """Fit :func:`erf_turn_on` to the populated bins of ``curve`` (at least 4 needed)."""
    use = curve.populated
    x, y, s = curve.centers[use], curve.efficiency[use], curve.sigma[use]
    if len(x) < 4:
        return TurnOnFit(False, message=f"only {len(x)} populated bins (need 4)")
    s = np.maximum(s, 1e-6)
    span = float(x.max() - x.min())

    top = float(np.max(y[-3:])) if y.max() > 0 else 1e-3
    half = np.flatnonzero(y >= 0.5 * max(top, y.max()))
    p0 = [max(top, 1e-3), float(x[half[0]]) if len(half) else float(np.median(x)), max(span / 10.0, 1e-3)]
    bounds = ([0.0, x.min() - span, 1e-3 * span], [1.0, x.max() + span, 10.0 * span])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", OptimizeWarning)
            params, cov = curve_fit(erf_turn_on, x, y, p0=p0, sigma=s, absolute_sigma=True, bounds=bounds, maxfev=20000)
    except (RuntimeError, OptimizeWarning, ValueError) as exc:
        return TurnOnFit(False, x_min=float(x.min()), x_max=float(x.max()), message=f"fit failed: {exc}")

    errors = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    chi2 = float(np.sum(((y - erf_turn_on(x, *params)) / s) ** 2))
    ok = bool(np.all(np.isfinite(errors)))
    return TurnOnFit(ok, float(params[0]), float(errors[0]), float(params[1]), float(errors[1]), float(params[2]),
                     float(errors[2]), chi2, len(x) - 3, float(x.min()), float(x.max()),
                     "" if ok else "covariance not finite")


@dataclass(frozen=True)
class Dip:
    """The strongest fall-then-rise of a curve: significance (sigmas) and the bin centres involved."""

    significance: float
    start: float = float("nan")
    bottom: float = float("nan")
    recovery: float = float("nan")
    efficiencies: tuple[float, float, float] = (float("nan"),) * 3

    def as_dict(self) -> dict:
        return {"significance": float(self.significance), "start": self.start, "bottom": self.bottom,
                "recovery": self.recovery, "efficiencies": list(self.efficiencies)}


def dip_significance(curve: Curve, bottom_below: float = np.inf) -> Dip:
    """Largest min(fall into bin j, rise out of bin j) in sigmas, over dip bins j centred below ``bottom_below``."""
    use = np.flatnonzero(curve.populated)
    x, e = curve.centers[use], curve.efficiency[use]
    down, up = e - curve.lo[use], curve.hi[use] - e

    best = Dip(0.0)
    for j in range(1, len(use) - 1):
        if x[j] >= bottom_below:
            break
        fall = _largest_step(e[:j] - e[j], np.hypot(down[:j], up[j]))
        rise = _largest_step(e[j + 1:] - e[j], np.hypot(down[j + 1:], up[j]))
        z = min(fall[0], rise[0])
        if z > best.significance:
            i, k = fall[1], j + 1 + rise[1]
            best = Dip(float(z), float(x[i]), float(x[j]), float(x[k]), (float(e[i]), float(e[j]), float(e[k])))
    return best


def _largest_step(step: np.ndarray, sigma: np.ndarray) -> tuple[float, int]:
    """Largest step/sigma (0 where sigma is 0) and its index."""
    z = np.divide(step, sigma, out=np.zeros_like(step), where=sigma > 0)
    k = int(np.argmax(z))
    return float(z[k]), k


@dataclass(frozen=True)
class LineFit:
    """Weighted straight line ``eff = intercept + slope * x``; slope per unit of x, 1-sigma errors."""

    ok: bool
    slope: float = float("nan")
    slope_err: float = float("nan")
    intercept: float = float("nan")
    chi2: float = float("nan")
    ndf: int = 0
    message: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def fit_line(curve: Curve) -> LineFit:
    """Weighted least squares on the populated bins (weights 1/sigma^2); needs 3 bins."""
    use = curve.populated
    x, y, s = curve.centers[use], curve.efficiency[use], np.maximum(curve.sigma[use], 1e-6)
    if len(x) < 3:
        return LineFit(False, message=f"only {len(x)} populated bins (need 3)")
    design = np.stack([np.ones_like(x), x], axis=1) / s[:, None]
    cov = np.linalg.inv(design.T @ design)
    intercept, slope = cov @ (design.T @ (y / s))
    chi2 = float(np.sum(((y - intercept - slope * x) / s) ** 2))
    return LineFit(True, float(slope), float(np.sqrt(cov[1, 1])), float(intercept), chi2, len(x) - 2)
