"""Efficiency histograms on constructed events: bins, presence of objects, weights, chunk additivity."""

from __future__ import annotations

import numpy as np
import pytest

from gelato import features as F
from gelato.calibration.efficiency import VARIABLES, ProcessHistograms, bin_index

KEY = ("emulated", 500)


def events_with_leading_jet(pts, endcap_muon_eta=None) -> np.ndarray:
    x = np.zeros((len(pts), F.N_FEATURES), np.float32)
    F.jets(x)[:, 0, 0] = pts
    if endcap_muon_eta is not None:
        F.muons(x)[:, 0, 0] = 20.0
        F.muons(x)[:, 0, 1] = endcap_muon_eta
    return x


def fill(x, passed, weights=None, chunks=1) -> ProcessHistograms:
    h = ProcessHistograms((KEY,))
    weights = np.ones(len(x)) if weights is None else weights
    for idx in np.array_split(np.arange(len(x)), chunks):
        h.fill(x[idx], weights[idx], {KEY: passed[idx]}, np.zeros(len(idx), bool))
    return h


def test_bin_index_puts_overflow_in_the_last_bin_and_underflow_in_the_first():
    edges = np.array([0.0, 10.0, 20.0])
    np.testing.assert_array_equal(bin_index(np.array([-1.0, 0.0, 9.99, 10.0, 20.0, 500.0]), edges), [0, 0, 0, 1, 1, 1])


def test_efficiency_per_bin_on_known_counts():
    # Leading jet pT 5 GeV (bin 0-10): 1 of 2 pass; 15 GeV (bin 10-20): 2 of 2 pass.
    x = events_with_leading_jet([5.0, 5.0, 15.0, 15.0])
    h = fill(x, np.array([True, False, True, True]))
    curve = h.curve("jet0_pt", KEY)
    assert curve["efficiency"][:2] == [0.5, 1.0]
    assert curve["weight_total"][:3] == [2.0, 2.0, 0.0]
    assert curve["lo"][2] == 0.0 and curve["hi"][2] == 1.0  # empty bin: no information


def test_missing_objects_do_not_enter_their_variables():
    x = events_with_leading_jet([5.0, 0.0, 15.0])
    h = fill(x, np.array([True, True, False]))
    assert h.totals["jet0_pt"].sum() == 2.0  # the event without a jet is absent
    assert h.totals["jet1_pt"].sum() == 0.0
    assert h.totals["n_jets"].sum() == 3.0  # multiplicity includes every event
    assert h.totals["mjj"].sum() == 0.0  # fewer than two jets everywhere


def test_endcap_muon_variable_takes_only_abs_eta_at_least_1_05():
    x = events_with_leading_jet([30.0, 30.0, 30.0], endcap_muon_eta=np.array([1.05, -2.0, 1.0]))
    h = fill(x, np.array([True, False, True]))
    assert h.totals["muon0_pt_endcap"].sum() == 2.0
    assert h.passed["muon0_pt_endcap"][KEY].sum() == 1.0


def test_weights_and_overall_efficiency_with_interval():
    x = events_with_leading_jet([50.0] * 4)
    h = fill(x, np.array([True, False, False, False]), weights=np.array([3.0, 1.0, 1.0, 1.0]))
    overall = h.overall(KEY)
    assert overall["efficiency"] == 0.5 and overall["n_pass"] == 1 and overall["n_events"] == 4
    assert overall["lo"] < 0.5 < overall["hi"]


def test_chunked_filling_adds_up_exactly():
    rng = np.random.default_rng(1)
    x = events_with_leading_jet(rng.uniform(0, 800, 1000).astype(np.float32))
    passed = rng.random(1000) < 0.3
    one, many = fill(x, passed), fill(x, passed, chunks=7)
    for name in VARIABLES:
        np.testing.assert_array_equal(one.totals[name], many.totals[name])
        np.testing.assert_array_equal(one.passed[name][KEY], many.passed[name][KEY])
    assert one.overall(KEY) == many.overall(KEY)


def test_unique_efficiency_excludes_menu_events():
    x = events_with_leading_jet([50.0] * 4)
    h = ProcessHistograms((KEY,))
    h.fill(x, np.ones(4), {KEY: np.array([True, True, False, False])}, np.array([True, False, False, False]))
    assert h.overall(KEY)["efficiency"] == 0.5
    assert h.overall(KEY)["unique_efficiency"] == 0.25


def test_dijet_mass_variable_matches_features_helper():
    x = np.zeros((1, F.N_FEATURES), np.float32)
    F.jets(x)[0, 0] = 100.0, 1.0, 0.0
    F.jets(x)[0, 1] = 100.0, -1.0, np.pi
    values, present = VARIABLES["mjj"].compute(x)
    assert present[0]
    assert values[0] == pytest.approx(np.sqrt(2 * 100 * 100 * (np.cosh(2.0) + 1.0)), rel=1e-6)


def test_many_keys_fill_equals_one_histogram_per_key():
    """Filling every decision at once (histograms per decision pattern) gives each key's own histogram."""
    rng = np.random.default_rng(7)
    n = 3000
    x = np.zeros((n, F.N_FEATURES), np.float32)
    F.jets(x)[:, :3, 0] = rng.uniform(0, 600, (n, 3)) * (rng.random((n, 3)) < 0.8)
    F.jets(x)[:, :3, 1] = rng.uniform(-4, 4, (n, 3))
    F.muons(x)[:, 0, :2] = np.stack([rng.uniform(0, 150, n), rng.uniform(-2.5, 2.5, n)], axis=1)
    score = rng.exponential(10.0, n)
    keys = tuple((kind, rate) for kind in ("float", "emulated") for rate in (500, 1000, 5000))
    cuts = dict(zip(keys, (30.0, 25.0, 12.0, 31.0, 24.0, 12.5)))
    decisions = {key: score >= cuts[key] for key in keys}
    decisions[("float", 1000)] = rng.random(n) < 0.4  # not nested: any combination must work
    weights = rng.uniform(0.5, 2.0, n)
    menu = rng.random(n) < 0.1

    together = ProcessHistograms(keys)
    together.fill(x, weights, decisions, menu)
    for key in keys:
        alone = ProcessHistograms((key,))
        alone.fill(x, weights, {key: decisions[key]}, menu)
        assert together.overall(key) == alone.overall(key)
        for name in VARIABLES:
            np.testing.assert_allclose(together.passed[name][key], alone.passed[name][key], rtol=1e-12)
            assert together.passed[name][key].sum() > 0 or alone.passed[name][key].sum() == 0
        unit = ProcessHistograms((key,))
        unit.fill(x, np.ones(n), {key: decisions[key]}, menu)
        values, present = VARIABLES["jet0_pt"].compute(x)
        chosen = present & decisions[key]
        expected = np.bincount(bin_index(values[chosen], VARIABLES["jet0_pt"].edges),
                               minlength=len(VARIABLES["jet0_pt"].edges) - 1)
        np.testing.assert_array_equal(unit.passed["jet0_pt"][key], expected)


def test_a_chunk_where_every_event_makes_the_same_decisions_fills_like_any_other():
    x = events_with_leading_jet([5.0, 15.0, 25.0])
    h = fill(x, np.array([False, False, False]))
    assert h.totals["jet0_pt"][:3].tolist() == [1.0, 1.0, 1.0] and h.passed["jet0_pt"][KEY].sum() == 0.0
    h = fill(x, np.array([True, True, True]))
    assert h.passed["jet0_pt"][KEY][:3].tolist() == [1.0, 1.0, 1.0]
