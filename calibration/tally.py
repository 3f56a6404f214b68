"""Per-chunk partial results of a sample that merge exactly: the first pass of the calibration (calibration stage).

The calibration streams.  Each chunk of a sample (events [start, stop) of one file) is
scored and reduced to a :class:`SampleTally`; the tallies of a sample are then merged in
chunk-index order (:meth:`SampleTally.add`).  Nothing per event survives the chunk except
the score *tail* (:class:`ScoreTail`), so memory does not grow with the sample.

Why the merge is exact:

* counts are integers and add exactly in any order;
* weighted sums are floating point, whose result depends on the order of additions, so
  partials are always added in chunk-index order, whatever order they were computed in
  (see :mod:`.execution`): a single-process run and a distributed run add the same numbers
  in the same order and give the same bits.  With unit weights every sum is an integer
  below 2**53 and exact in any case;
* thresholds need, for every score value v, the weight of reference events at or above v,
  but only where that weight is near the largest target rate: f_bc x W(>= v) / W ~ 5 kHz
  is the top 2e-4 of the events.  Each chunk keeps every event whose score (of either
  kind) is at or above the ``keep``-th largest score among its events outside the menu
  (its *cut*).  After the merge every event scoring at or above the largest cut of all
  chunks is present with its exact score, weight and menu flag, so any threshold above
  that cut, its counts, the total and overlap rates and the float-versus-emulated flips
  are computed exactly from the tail (:mod:`.thresholds` checks that the threshold lies
  above the cut and says what to change when it does not).  The tail holds about
  ``keep`` / ``chunk_events`` of the events (1.6% by default) and both scores, which the
  flips need, so it does not depend on how many distinct score codes the sample has.

Score histograms (for plots) use a fixed, fine logarithmic axis of the score type
(:func:`fine_score_edges`), so they are filled in this first pass before any threshold
is known and are cropped for drawing afterwards (:func:`plot_score_axis`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gelato.calibration import kernels
from gelato.calibration.efficiency import VARIABLES, bin_index, histogram
from gelato.calibration.menu import any_per_row
from gelato.features import N_FEATURES

log = logging.getLogger(__name__)

KINDS = ("float", "emulated")

#: Events outside the menu whose scores each chunk keeps in the tail, per score kind.
DEFAULT_TAIL_EVENTS = 1024

#: Bins per factor of two of the fine score axis.
BINS_PER_OCTAVE = 8


def score_bin_index(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """:func:`.efficiency.bin_index` of ``scores`` on fine score ``edges`` (:func:`fine_score_edges`), faster.

    The bin is guessed from the logarithm (edge k >= 1 is lsb * 2**((k - 1) / 8)) and then
    corrected against the edges themselves (compiled: :func:`.kernels.log_bins`), so it
    equals the binary search for every value, NaN, negatives and infinities included
    (tested).  Other edges take the binary search.
    """
    scores = np.asarray(scores, np.float64)
    fine = len(edges) > 2 and edges[0] == 0.0 and edges[1] > 0 and np.allclose(
        edges[1:], edges[1] * np.exp2(np.arange(len(edges) - 1) / BINS_PER_OCTAVE), rtol=1e-12, atol=0)
    if not fine:
        return bin_index(scores, edges)
    return kernels.log_bins(scores, float(edges[1]), float(BINS_PER_OCTAVE), edges)


def fine_score_edges(lsb: float, max_value: float) -> np.ndarray:
    """Edges 0, lsb, lsb * 2**(1/8), ... up to the type's largest value: 8 log bins per octave [score units]."""
    octaves = int(np.ceil(np.log2(max_value / lsb)))
    return np.concatenate([[0.0], lsb * np.exp2(np.arange(octaves * BINS_PER_OCTAVE + 1) / BINS_PER_OCTAVE)])


@dataclass
class ScoreTail:
    """Events at or above a per-kind cut: both scores, weight and menu decision, in event order.

    ``cut[kind]`` is the score from which on every event is present (-inf: every event is).
    """

    scores: dict[str, np.ndarray]
    weight: np.ndarray
    menu_pass: np.ndarray
    cut: dict[str, float]

    @classmethod
    def of_chunk(cls, scores: Mapping[str, np.ndarray], weight: np.ndarray, menu_pass: np.ndarray,
                 keep: int) -> ScoreTail:
        """The tail of one chunk: events at or above the ``keep``-th largest score outside the menu, per kind."""
        cut, kept = {}, np.zeros(len(weight), bool)
        for kind in KINDS:
            counted = scores[kind][~menu_pass]
            if len(counted) > keep:
                cut[kind] = float(np.partition(counted, len(counted) - keep)[len(counted) - keep])
            else:
                cut[kind] = -np.inf
            kept |= scores[kind] >= cut[kind]
        return cls({k: scores[k][kept] for k in KINDS}, weight[kept], menu_pass[kept], cut)

    @classmethod
    def merged(cls, tails: Sequence[ScoreTail]) -> ScoreTail:
        """Concatenate tails of consecutive chunks (in chunk order); the cut is the largest of theirs."""
        return cls(
            {k: np.concatenate([t.scores[k] for t in tails]) for k in KINDS},
            np.concatenate([t.weight for t in tails]),
            np.concatenate([t.menu_pass for t in tails]),
            {k: max(t.cut[k] for t in tails) for k in KINDS},
        )

    def __len__(self) -> int:
        return len(self.weight)


@dataclass
class SampleTally:
    """What the calibration keeps of a sample after the first pass; see the module docstring.

    Weighted sums: ``sum_weights`` and ``sum_w2`` of all events, ``menu_item_w`` per menu item,
    ``menu_emulated_w`` (any item) and ``menu_used_w`` (the decision used: the file's flag or
    the emulated menu); the ``_n`` fields are the matching event counts.  Score histograms are
    on ``score_edges`` (:func:`fine_score_edges`); ``score_2d[feature]`` is (feature bins, score
    bins) of the emulated score, weighted.
    """

    process: str
    score_edges: np.ndarray
    menu_item_names: list[str]
    score_vs: tuple[str, ...] = ()
    path: Path | None = None
    menu_source: str = "emulated"
    n_events: int = 0
    sum_weights: float = 0.0
    sum_w2: float = 0.0
    min_weight: float = np.inf
    saturation: np.ndarray = field(default_factory=lambda: np.zeros(N_FEATURES, np.int64))
    menu_item_n: np.ndarray | None = None
    menu_item_w: np.ndarray | None = None
    menu_emulated_n: int = 0
    menu_emulated_w: float = 0.0
    menu_used_n: int = 0
    menu_used_w: float = 0.0
    score_counts: dict[str, np.ndarray] = field(default_factory=dict)
    score_weights: dict[str, np.ndarray] = field(default_factory=dict)
    score_2d: dict[str, np.ndarray] = field(default_factory=dict)
    tail_parts: list[ScoreTail] = field(default_factory=list)
    _tail: ScoreTail | None = field(default=None, repr=False)

    @property
    def tail(self) -> ScoreTail:
        """The merged score tail of every chunk so far (concatenated in chunk order)."""
        if self._tail is None:
            if not self.tail_parts:
                raise ValueError(f"{self.process}: no score tail (no events tallied, or not the rate reference, "
                                 "the only sample whose tail is kept)")
            self._tail = ScoreTail.merged(self.tail_parts)
        return self._tail

    def __post_init__(self) -> None:
        n_items, n_bins = len(self.menu_item_names), len(self.score_edges) - 1
        if self.menu_item_n is None:
            self.menu_item_n, self.menu_item_w = np.zeros(n_items, np.int64), np.zeros(n_items)
        for kind in KINDS:
            self.score_counts.setdefault(kind, np.zeros(n_bins, np.int64))
            self.score_weights.setdefault(kind, np.zeros(n_bins))
        for name in self.score_vs:
            self.score_2d.setdefault(name, np.zeros((len(VARIABLES[name].edges) - 1, n_bins)))

    def __len__(self) -> int:
        return self.n_events

    def add(self, other: SampleTally) -> None:
        """Merge the tally of the next chunk into this one (call in chunk order; see module docstring)."""
        if other.menu_item_names != self.menu_item_names or len(other.score_edges) != len(self.score_edges):
            raise ValueError(f"{self.process}: cannot merge tallies with menu items {other.menu_item_names} and "
                             f"{len(other.score_edges)} score edges into {self.menu_item_names} and "
                             f"{len(self.score_edges)}")
        if other.n_events and other.menu_source != self.menu_source and self.n_events:
            raise ValueError(f"{self.process}: menu decision from {other.menu_source} in one chunk and "
                             f"{self.menu_source} in another; expected one source per file")
        self.menu_source = other.menu_source if other.n_events else self.menu_source
        self.n_events += other.n_events
        self.sum_weights += other.sum_weights
        self.sum_w2 += other.sum_w2
        self.min_weight = min(self.min_weight, other.min_weight)
        self.saturation = self.saturation + other.saturation
        self.menu_item_n = self.menu_item_n + other.menu_item_n
        self.menu_item_w = self.menu_item_w + other.menu_item_w
        self.menu_emulated_n += other.menu_emulated_n
        self.menu_emulated_w += other.menu_emulated_w
        self.menu_used_n += other.menu_used_n
        self.menu_used_w += other.menu_used_w
        for kind in KINDS:
            self.score_counts[kind] = self.score_counts[kind] + other.score_counts[kind]
            self.score_weights[kind] = self.score_weights[kind] + other.score_weights[kind]
        for name in self.score_2d:
            self.score_2d[name] = self.score_2d[name] + other.score_2d[name]
        self.tail_parts = [*self.tail_parts, *other.tail_parts]
        self._tail = None


def tally_chunk(
    process: str,
    features: np.ndarray,
    columns,
    score_edges: np.ndarray,
    menu_item_names: list[str],
    score_vs: tuple[str, ...] = (),
    keep: int = DEFAULT_TAIL_EVENTS,
    variable_bins: Mapping[str, np.ndarray] | None = None,
    keep_tail: bool = True,
) -> SampleTally:
    """The :class:`SampleTally` of one chunk from its raw features (N, 44) and :class:`.scoring.ScoreColumns`.

    ``variable_bins`` (:func:`.efficiency.bin_variables` of the chunk) saves binning the
    ``score_vs`` variables again when the caller has them.  ``keep_tail=False`` keeps no score
    tail: only the rate reference's tail is ever used (thresholds, flips).
    """
    w, menu, items = columns.weight, columns.menu_pass, columns.menu_items
    tally = SampleTally(process, score_edges, list(menu_item_names), score_vs, menu_source=columns.menu_source)
    tally.n_events, tally.sum_weights, tally.sum_w2 = len(w), float(w.sum()), float(np.square(w).sum())
    tally.min_weight = float(w.min(initial=np.inf))
    tally.saturation = np.asarray(columns.saturation, np.int64)

    tally.menu_item_n = np.count_nonzero(items, axis=0).astype(np.int64)
    tally.menu_item_w = np.array([float(w[items[:, i]].sum()) for i in range(items.shape[1])])
    emulated = any_per_row(items)
    tally.menu_emulated_n, tally.menu_emulated_w = int(np.count_nonzero(emulated)), float(w[emulated].sum())
    tally.menu_used_n, tally.menu_used_w = int(np.count_nonzero(menu)), float(w[menu].sum())

    n_bins = len(score_edges) - 1
    scores = {"float": columns.score_float, "emulated": columns.score_emulated}
    emulated_bins = score_bin_index(columns.score_emulated, score_edges)
    for kind in KINDS:
        bins = emulated_bins if kind == "emulated" else score_bin_index(scores[kind], score_edges)
        tally.score_counts[kind] = np.bincount(bins, minlength=n_bins).astype(np.int64)
        tally.score_weights[kind] = np.bincount(bins, weights=w, minlength=n_bins)
    for name in score_vs:
        idx = variable_bins[name] if variable_bins is not None else VARIABLES[name].binned(features)
        tally.score_2d[name] = histogram(idx, VARIABLES[name].n_bins, w, n_bins, emulated_bins)

    tally.tail_parts = [ScoreTail.of_chunk(scores, w, menu, keep)] if keep_tail else []
    return tally


def _quantile_bin(counts: np.ndarray, q: float) -> int:
    """Index of the bin holding the q-quantile of the events counted in ``counts``."""
    cumulative = np.cumsum(counts)
    return int(np.searchsorted(cumulative, q * cumulative[-1], side="left"))


def plot_score_axis(tallies: Mapping[str, SampleTally], thresholds: Sequence[float]) -> np.ndarray:
    """Indices into the fine score edges for drawing: [first, last] edge of the drawn range.

    The drawn axis is 0, then the fine edges from the 0.1% quantile of the positive emulated
    scores of all samples up to 1.5 times the largest of every sample's 99.95% quantile and
    the thresholds (and at least two octaves).  Scores below fall in the first bin, above in
    the last.
    """
    first = next(iter(tallies.values()))
    edges = first.score_edges
    positive = sum(t.score_counts["emulated"] for t in tallies.values())[1:]
    low = 1 + (_quantile_bin(positive, 0.001) if positive.sum() else 0)
    tops = [edges[_quantile_bin(t.score_counts["emulated"], 0.9995) + 1] for t in tallies.values() if len(t)]
    high = max(1.5 * max([*tops, *thresholds, 0.0]), 4 * edges[low])
    top = min(int(np.searchsorted(edges, high, side="left")), len(edges) - 1)
    return np.array([low, max(top, low + 1)])


def crop_score_axis(values: np.ndarray, edges: np.ndarray, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rebin histogram ``values`` (last axis on the fine ``edges``) to the drawn range: (values, edges).

    Bins below the range join the first drawn bin [0, low), bins above it the last; sums only.
    """
    low, high = int(drawn[0]), int(drawn[1])
    starts = np.concatenate([[0], np.arange(low, high)])
    return np.add.reduceat(values, starts, axis=-1), np.concatenate([[0.0], edges[low : high + 1]])
