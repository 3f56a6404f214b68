"""The fast bin lookups equal numpy's binary search (`bin_index`) on every value, edges and oddities included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gelato.calibration.efficiency import VARIABLES, GridLookup, bin_index
from gelato.calibration.tally import fine_score_edges, score_bin_index

ODD = np.array([np.nan, np.inf, -np.inf, -1.0, 0.0, -0.0, 1e300, -1e300, 5e-324])


def around_edges(edges: np.ndarray) -> np.ndarray:
    """Every edge, its float32 and float64 neighbours on both sides, and the odd values."""
    edges = np.asarray(edges, np.float64)
    near = [edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf)]
    e32 = edges.astype(np.float32)
    near += [np.nextafter(e32, np.float32(-np.inf)).astype(np.float64),
             np.nextafter(e32, np.float32(np.inf)).astype(np.float64), e32.astype(np.float64)]
    return np.concatenate([*near, ODD])


@pytest.mark.parametrize("name", sorted(VARIABLES))
def test_every_variable_has_a_grid_lookup_equal_to_the_binary_search(name):
    var = VARIABLES[name]
    assert var.lookup is not None, f"{name}: edges on no grid, the slow path would be taken"
    rng = np.random.default_rng(3)
    span = var.edges[-1] - var.edges[0]
    values = np.concatenate([around_edges(var.edges), rng.uniform(var.edges[0] - span, var.edges[-1] + span, 20000)])
    np.testing.assert_array_equal(var.bins(values), bin_index(values, var.edges))
    with np.errstate(over="ignore"):  # 1e300 becomes inf in float32, on purpose
        single = values.astype(np.float32)
    np.testing.assert_array_equal(var.bins(single), bin_index(single, var.edges))


def test_edges_on_no_grid_get_no_lookup():
    assert GridLookup.of(np.array([0.0, 1.0, np.pi, 10.0])) is None
    assert GridLookup.of(np.array([0.0, 1.0])) is not None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=50))
def test_score_bins_equal_the_binary_search(values):
    edges = fine_score_edges(2.0**-10, 2.0**12)
    values = np.array(values)
    np.testing.assert_array_equal(score_bin_index(values, edges), bin_index(values, edges))


def test_score_bins_on_edges_neighbours_and_lsb_multiples():
    lsb = 2.0**-8
    edges = fine_score_edges(lsb, 2.0**14)
    rng = np.random.default_rng(5)
    multiples = lsb * rng.integers(0, 2**22, 50000)  # what emulated scores are
    values = np.concatenate([around_edges(edges), multiples, rng.exponential(20.0, 50000)])
    np.testing.assert_array_equal(score_bin_index(values, edges), bin_index(values, edges))


def test_score_bins_take_the_binary_search_on_other_edges():
    edges = np.array([0.0, 1.0, 5.0, 100.0])
    values = np.array([-1.0, 0.5, 1.0, 4.9, 5.0, 99.0, 1e9])
    np.testing.assert_array_equal(score_bin_index(values, edges), [0, 0, 1, 1, 2, 2, 2])


def test_grid_lookup_takes_integers_strided_columns_and_absent_events():
    var = VARIABLES["n_jets"]
    counts = np.array([-3, 0, 1, 2, 6, 7, 100], np.int64)
    np.testing.assert_array_equal(var.bins(counts), bin_index(counts, var.edges))
    jets = np.random.default_rng(8).uniform(-50, 1200, (3000, 6, 3)).astype(np.float32)
    column = jets[:, 2, 0]  # every 18th float: a strided view
    present = column > 0
    lookup = VARIABLES["jet2_pt"].lookup
    np.testing.assert_array_equal(lookup.index(column, present, 99),
                                  np.where(present, bin_index(column, lookup.edges), 99))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=1, max_size=50))
def test_grid_bins_of_single_precision_values_equal_the_binary_search(values):
    values = np.array(values, np.float32)
    for name in ("jet0_pt", "jet0_eta", "jet0_phi", "mjj", "muon0_pt_endcap"):
        np.testing.assert_array_equal(VARIABLES[name].bins(values), bin_index(values, VARIABLES[name].edges))


def test_binned_marks_absent_events_one_past_the_last_bin():
    features = np.zeros((4, 44), np.float32)
    features[1, 0] = 35.0  # leading jet pT: only event 1 has a jet
    var = VARIABLES["jet0_pt"]
    np.testing.assert_array_equal(var.binned(features), [var.n_bins, 3, var.n_bins, var.n_bins])
