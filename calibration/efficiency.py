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
from gelato.calibration import kernels
from gelato.calibration.rates import COVERAGE_68, weighted_fraction_interval

log = logging.getLogger(__name__)

#: A decision key: (score kind, target rate in Hz), e.g. ("emulated", 500).
DecisionKey = tuple[str, int]


def bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value; underflow into the first bin, overflow into the last."""
    return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, len(edges) - 2)


@dataclass(frozen=True)
class Variable:
    """A per-event quantity: ``compute(features) -> (values, present)`` and its bin edges."""

    label: str
    edges: np.ndarray
    compute: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    lookup: GridLookup | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lookup", GridLookup.of(self.edges))

    def bins(self, values: np.ndarray) -> np.ndarray:
        """:func:`bin_index` of ``values`` on this variable's edges (through the grid lookup when it has one)."""
        return self.lookup.index(values) if self.lookup is not None else bin_index(values, self.edges)

    @property
    def n_bins(self) -> int:
        return len(self.edges) - 1

    def binned(self, features: np.ndarray) -> np.ndarray:
        """Bin of every event, and :attr:`n_bins` (one past the last bin) where the variable is absent.

        Histograms count the extra bin and drop it (:func:`histogram`): cheaper than
        selecting the present events of every array, and the same sums in the same order.
        """
        values, present = self.compute(features)
        if self.lookup is not None:
            return self.lookup.index(values, present, self.n_bins)
        return np.where(present, bin_index(values, self.edges), self.n_bins)


@dataclass(frozen=True)
class GridLookup:
    """Bin lookup for edges that all lie on a grid ``origin + k * step``: equal to :func:`bin_index`, faster.

    A value's grid cell, found by arithmetic, lies inside one bin, which a table gives; the
    cell can be off by one where rounding meets a cell boundary, so the guess is then
    corrected against the edges themselves (compiled: :func:`.kernels.grid_bins`).  The
    result equals :func:`bin_index` for every value, NaN and infinities included (tested).
    """

    edges: np.ndarray
    origin: float
    inverse_step: float
    table: np.ndarray

    MAX_CELLS = 1 << 16

    @classmethod
    def of(cls, edges: np.ndarray) -> GridLookup | None:
        """The lookup of ``edges``, or None when no grid of at most ``MAX_CELLS`` cells holds them all."""
        edges = np.asarray(edges, np.float64)
        if len(edges) < 2 or not np.all(np.diff(edges) > 0):
            return None
        for divisor in range(1, 11):
            step = float(np.min(np.diff(edges))) / divisor
            position = (edges - edges[0]) / step
            if np.allclose(position, np.round(position), rtol=0, atol=1e-6) and position[-1] < cls.MAX_CELLS:
                cells = int(round(position[-1]))
                starts = edges[0] + step * (np.arange(cells) + 0.5)  # cell centres: far from every edge
                return cls(edges, float(edges[0]), 1.0 / step, bin_index(starts, edges))
        return None

    def index(self, values: np.ndarray, present: np.ndarray | None = None, absent: int = -1) -> np.ndarray:
        """Bin of each value (as :func:`bin_index`); ``absent`` where ``present`` is False."""
        present = np.ones(len(values), bool) if present is None else present
        return kernels.grid_bins(values, present, self.origin, self.inverse_step, self.table, self.edges, absent)


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


def jet_multiplicity(features: np.ndarray) -> np.ndarray:
    """:func:`gelato.features.jet_multiplicity` (jets with pT > 0), compiled: one pass over each row."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != F.N_FEATURES:
        raise ValueError(f"expected features of shape (N, {F.N_FEATURES}), got {features.shape}")
    if features.dtype != np.float32:
        return F.jet_multiplicity(features)
    return kernels.count_positive(features, F.JET_OFFSET, F.N_JETS)


def _build_variables() -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    for rank in range(F.N_JETS):
        out[f"jet{rank}_pt"] = Variable(f"jet {rank} $p_T$ [GeV]", PT_EDGES, _jet_column(rank, 0))
        out[f"jet{rank}_eta"] = Variable(f"jet {rank} $\\eta$", ETA_EDGES, _jet_column(rank, 1))
        out[f"jet{rank}_phi"] = Variable(f"jet {rank} $\\phi$ [rad]", PHI_EDGES, _jet_column(rank, 2))
    out["MET_pt"] = Variable("$E_T^{miss}$ [GeV]", MET_EDGES, _all_events(lambda f: F.met(f)[:, 0]))
    out["n_jets"] = Variable("jet multiplicity", MULTIPLICITY_EDGES, _all_events(jet_multiplicity))
    out["mjj"] = Variable(
        "$m_{jj}$ of the two leading jets [GeV]", MJJ_EDGES,
        lambda f: (F.dijet_mass(f), jet_multiplicity(f) >= 2),
    )
    for rank in range(F.N_MUONS):
        out[f"muon{rank}_pt_endcap"] = Variable(
            f"muon {rank} $p_T$ [GeV], endcap $|\\eta| \\geq {F.MUON_ENDCAP_ETA}$", MUON_PT_EDGES, _endcap_muon_pt(rank)
        )
    return out


#: Every variable efficiencies are measured against, by name.
VARIABLES: dict[str, Variable] = _build_variables()


def bin_variables(features: np.ndarray, variables: Mapping[str, Variable]) -> dict[str, np.ndarray]:
    """Per variable, :meth:`Variable.binned` of every event."""
    return {name: var.binned(features) for name, var in variables.items()}


def histogram(index: np.ndarray, n_bins: int, weights: np.ndarray | None = None, columns: int | None = None,
              column: np.ndarray | int = 0) -> np.ndarray:
    """Weighted counts (n_bins,) of events in bin ``index`` (``n_bins``: absent, dropped); with ``columns``,
    (n_bins, columns) counts by bin and ``column``."""
    if columns is None:
        return np.bincount(index, weights=weights, minlength=n_bins + 1)[:n_bins]
    counts = np.bincount(index * columns + column, weights=weights, minlength=(n_bins + 1) * columns)
    return counts.reshape(n_bins + 1, columns)[:n_bins]


def decision_patterns(decisions: Mapping[DecisionKey, np.ndarray], keys: tuple[DecisionKey, ...]
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The distinct combinations of the ``keys``' decisions among the events, and each event's.

    Returns ``patterns`` (P, len(keys)) bool, one row per combination that occurs, and the
    index (N,) of each event's row.  Decisions of nested thresholds give at most
    len(keys) + 1 patterns, so a histogram per pattern replaces one per key.
    """
    n = len(next(iter(decisions.values()))) if keys else 0
    if len(keys) > 62:
        raise ValueError(f"at most 62 decisions can be histogrammed at once, got {len(keys)}")
    code = np.zeros(n, np.int64)
    for j, key in enumerate(keys):
        code |= np.asarray(decisions[key], np.int64) << j
    if len(keys) <= 16:  # a table over every possible code beats sorting the events
        codes = np.flatnonzero(np.bincount(code, minlength=1 << len(keys)))
        position = np.zeros(1 << len(keys), np.intp)
        position[codes] = np.arange(len(codes))
        pattern_of_event = position[code]
    else:
        codes, pattern_of_event = np.unique(code, return_inverse=True)
    patterns = ((codes[:, None] >> np.arange(len(keys))) & 1).astype(bool)
    return patterns, pattern_of_event.reshape(n)


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
        variable_bins: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Add one chunk: raw features (N, 44), weights (N,), anomaly decisions, menu decision.

        ``variable_bins`` are the chunk's :func:`bin_variables` when the caller has them already.
        """
        weights = np.asarray(weights, np.float64)  # every sum in double precision, squares included
        self.n_events += len(features)
        self.w_total += float(weights.sum())
        self.w2_total += float(np.square(weights).sum())
        self.w_menu += float(weights[menu_pass].sum())
        for key in self.keys:
            self.w_pass[key] += float(weights[decisions[key]].sum())
            self.n_pass[key] += int(np.count_nonzero(decisions[key]))
            self.w_unique[key] += float(weights[decisions[key] & ~menu_pass].sum())

        patterns, pattern_of_event = decision_patterns(decisions, self.keys)
        n_patterns = len(patterns)
        binned = variable_bins if variable_bins is not None else bin_variables(features, VARIABLES)
        for name, var in VARIABLES.items():
            idx, nbins = binned[name], var.n_bins
            # Totals, squares and one histogram of (bin, decision pattern) in one compiled pass
            # (the extra bin, absent events, dropped); a key's passed histogram sums the patterns that pass it.
            totals, totals_w2, by_pattern = np.zeros(nbins + 1), np.zeros(nbins + 1), np.zeros((nbins + 1, n_patterns))
            kernels.variable_histograms(idx, weights, pattern_of_event, totals, totals_w2, by_pattern)
            self.totals[name] += totals[:nbins]
            self.totals_w2[name] += totals_w2[:nbins]
            by_pattern = by_pattern[:nbins]
            for j, key in enumerate(self.keys):
                self.passed[name][key] += by_pattern[:, patterns[:, j]].sum(axis=1)
            if name in self.score_2d and score is not None:
                n_score = len(self.score_edges) - 1
                self.score_2d[name] += histogram(idx, nbins, weights, n_score, bin_index(score, self.score_edges))

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
