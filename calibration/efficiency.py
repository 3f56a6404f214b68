"""Trigger efficiencies of a process, overall and versus event features (calibration stage).

Efficiency is the (weighted) fraction of a process's events that pass the anomaly trigger
(``score >= threshold``, see :func:`gelato.calibration.rates.passes`); the *unique*
efficiency, shown beside it in the overall tables, counts only events no menu item takes.

Events are histogrammed chunk by chunk (sums of w and w^2 per bin), so a sample never has
to fit in memory and chunk results add exactly.  Every variable of :data:`VARIABLES` is
filled; the plots draw a configured subset.  An event enters a variable only where the
object exists (pT > 0; for endcap muons also |eta| >= 1.05); the last bin of each
variable also holds its overflow.  Intervals are Clopper-Pearson on Kish effective counts
(exact counts for unit weights), see :mod:`.rates`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from gelato import features as F
from gelato.calibration.rates import COVERAGE_68, weighted_fraction_interval

log = logging.getLogger(__name__)

#: A decision key: (score kind, target rate in Hz), e.g. ("emulated", 500).
DecisionKey = tuple[str, int]


@dataclass(frozen=True)
class Variable:
    """A per-event quantity: ``compute(features) -> (values, present)`` and its bin edges."""

    label: str
    edges: np.ndarray
    compute: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def _steps(*segments: tuple[float, float, float]) -> np.ndarray:
    """Concatenated aranges (start, stop, step), stop included once."""
    parts = [np.arange(a, b, s) for a, b, s in segments]
    return np.unique(np.concatenate([*parts, [segments[-1][1]]]))


PT_EDGES = _steps((0, 200, 10), (200, 500, 25), (500, 1000, 50))
MET_EDGES = _steps((0, 200, 10), (200, 500, 25))
MJJ_EDGES = _steps((0, 500, 25), (500, 1500, 100), (1500, 3000, 250))
MUON_PT_EDGES = _steps((0, 50, 2), (50, 100, 5), (100, 200, 20))
ETA_EDGES = np.linspace(-5.0, 5.0, 41)
PHI_EDGES = np.linspace(-np.pi, np.pi, 33)
MULTIPLICITY_EDGES = np.arange(-0.5, F.N_JETS + 1.0, 1.0)


def _jet_column(rank: int, column: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def compute(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        jets = F.jets(features)
        return jets[:, rank, column], jets[:, rank, 0] > 0

    return compute


def _endcap_muon_pt(rank: int) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def compute(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        muons = F.muons(features)
        pt, eta = muons[:, rank, 0], muons[:, rank, 1]
        return pt, (pt > 0) & (np.abs(eta) >= F.MUON_ENDCAP_ETA)

    return compute


def _all_events(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    return lambda features: (fn(features), np.ones(len(features), bool))


def _build_variables() -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    for rank in range(F.N_JETS):
        out[f"jet{rank}_pt"] = Variable(f"jet {rank} $p_T$ [GeV]", PT_EDGES, _jet_column(rank, 0))
        out[f"jet{rank}_eta"] = Variable(f"jet {rank} $\\eta$", ETA_EDGES, _jet_column(rank, 1))
        out[f"jet{rank}_phi"] = Variable(f"jet {rank} $\\phi$ [rad]", PHI_EDGES, _jet_column(rank, 2))
    out["MET_pt"] = Variable("$E_T^{miss}$ [GeV]", MET_EDGES, _all_events(lambda f: F.met(f)[:, 0]))
    out["n_jets"] = Variable("jet multiplicity", MULTIPLICITY_EDGES, _all_events(F.jet_multiplicity))
    out["mjj"] = Variable(
        "$m_{jj}$ of the two leading jets [GeV]", MJJ_EDGES,
        lambda f: (F.dijet_mass(f), F.jet_multiplicity(f) >= 2),
    )
    for rank in range(F.N_MUONS):
        out[f"muon{rank}_pt_endcap"] = Variable(
            f"muon {rank} $p_T$ [GeV], endcap $|\\eta| \\geq {F.MUON_ENDCAP_ETA}$", MUON_PT_EDGES, _endcap_muon_pt(rank)
        )
    return out


#: Every variable efficiencies are measured against, by name.
VARIABLES: dict[str, Variable] = _build_variables()


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value; underflow into the first bin, overflow into the last."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


@dataclass
class ProcessHistograms:
    """Weighted sums of one process, filled chunk by chunk.

    ``keys`` are the decisions to measure, e.g. ("emulated", 500); ``score_edges`` (optional)
    enables the 2-D score-versus-feature histograms of ``score_vs`` (emulated score).
    """

    keys: tuple[DecisionKey, ...]
    score_edges: np.ndarray | None = None
    score_vs: tuple[str, ...] = ()
    n_events: int = 0
    w_total: float = 0.0
    w2_total: float = 0.0
    w_pass: dict[DecisionKey, float] = field(default_factory=dict)
    n_pass: dict[DecisionKey, int] = field(default_factory=dict)
    w_unique: dict[DecisionKey, float] = field(default_factory=dict)
    w_menu: float = 0.0
    totals: dict[str, np.ndarray] = field(default_factory=dict)
    totals_w2: dict[str, np.ndarray] = field(default_factory=dict)
    passed: dict[str, dict[DecisionKey, np.ndarray]] = field(default_factory=dict)
    score_2d: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, var in VARIABLES.items():
            nbins = len(var.edges) - 1
            self.totals[name], self.totals_w2[name] = np.zeros(nbins), np.zeros(nbins)
            self.passed[name] = {key: np.zeros(nbins) for key in self.keys}
        for key in self.keys:
            self.w_pass[key], self.n_pass[key], self.w_unique[key] = 0.0, 0, 0.0
        if self.score_edges is not None:
            for name in self.score_vs:
                self.score_2d[name] = np.zeros((len(VARIABLES[name].edges) - 1, len(self.score_edges) - 1))

    def fill(
        self,
        features: np.ndarray,
        weights: np.ndarray,
        decisions: Mapping[DecisionKey, np.ndarray],
        menu_pass: np.ndarray,
        score: np.ndarray | None = None,
    ) -> None:
        """Add one chunk: raw features (N, 44), weights (N,), anomaly decisions, menu decision."""
        self.n_events += len(features)
        self.w_total += float(weights.sum())
        self.w2_total += float(np.square(weights).sum())
        self.w_menu += float(weights[menu_pass].sum())
        for key in self.keys:
            self.w_pass[key] += float(weights[decisions[key]].sum())
            self.n_pass[key] += int(np.count_nonzero(decisions[key]))
            self.w_unique[key] += float(weights[decisions[key] & ~menu_pass].sum())

        for name, var in VARIABLES.items():
            values, present = var.compute(features)
            nbins = len(var.edges) - 1
            idx, w = bin_index(values[present], var.edges), weights[present]
            self.totals[name] += np.bincount(idx, weights=w, minlength=nbins)
            self.totals_w2[name] += np.bincount(idx, weights=np.square(w), minlength=nbins)
            for key in self.keys:
                sel = decisions[key][present]
                self.passed[name][key] += np.bincount(idx[sel], weights=w[sel], minlength=nbins)
            if name in self.score_2d and score is not None:
                self._fill_2d(name, idx, score[present], w)

    def add(self, other: ProcessHistograms) -> ProcessHistograms:
        """Add the histograms of another chunk (same keys and axes) to these; returns self.

        Floating-point sums depend on the order of additions: merge chunks in chunk order
        (see ``gelato.calibration.execution.fold_in_order``) for results independent of where they ran.
        """
        if other.keys != self.keys or set(other.score_2d) != set(self.score_2d):
            raise ValueError(f"cannot add histograms of decisions {other.keys} to {self.keys}")
        self.n_events += other.n_events
        self.w_total += other.w_total
        self.w2_total += other.w2_total
        self.w_menu += other.w_menu
        for key in self.keys:
            self.w_pass[key] += other.w_pass[key]
            self.n_pass[key] += other.n_pass[key]
            self.w_unique[key] += other.w_unique[key]
        for name in VARIABLES:
            self.totals[name] += other.totals[name]
            self.totals_w2[name] += other.totals_w2[name]
            for key in self.keys:
                self.passed[name][key] += other.passed[name][key]
        for name in self.score_2d:
            self.score_2d[name] += other.score_2d[name]
        return self

    def _fill_2d(self, name: str, feature_bins: np.ndarray, score: np.ndarray, weights: np.ndarray) -> None:
        assert self.score_edges is not None
        shape = self.score_2d[name].shape
        flat = feature_bins * shape[1] + bin_index(score, self.score_edges)
        self.score_2d[name] += np.bincount(flat, weights=weights, minlength=shape[0] * shape[1]).reshape(shape)

    def overall(self, key: DecisionKey) -> dict:
        """Overall efficiency of decision ``key`` with its 68% interval, and the unique efficiency."""
        lo, hi = weighted_fraction_interval(self.w_pass[key], self.w_total, self.w2_total, COVERAGE_68)
        return {
            "efficiency": self.w_pass[key] / self.w_total if self.w_total > 0 else 0.0,
            "lo": float(lo),
            "hi": float(hi),
            "n_pass": self.n_pass[key],
            "n_events": self.n_events,
            "unique_efficiency": self.w_unique[key] / self.w_total if self.w_total > 0 else 0.0,
        }

    def curve(self, name: str, key: DecisionKey) -> dict:
        """Efficiency versus variable ``name``: edges, per-bin efficiency and 68% bounds, weights."""
        total, passed = self.totals[name], self.passed[name][key]
        eff = np.divide(passed, total, out=np.zeros_like(total), where=total > 0)
        lo, hi = weighted_fraction_interval(passed, total, self.totals_w2[name], COVERAGE_68)
        return {
            "edges": VARIABLES[name].edges.tolist(),
            "efficiency": eff.tolist(),
            "lo": np.asarray(lo).tolist(),
            "hi": np.asarray(hi).tolist(),
            "weight_total": total.tolist(),
        }
