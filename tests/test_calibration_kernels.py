"""The compiled kernels (menu items, jet multiplicity, efficiency histograms) equal their numpy definitions."""

from __future__ import annotations

import numpy as np
import pytest

from gelato import features as F
from gelato.calibration import kernels
from gelato.calibration.config import load_settings
from gelato.calibration.efficiency import VARIABLES, ProcessHistograms, bin_index
from gelato.calibration.menu import Menu, MenuItem


def awkward_events(n: int, seed: int) -> np.ndarray:
    """Events with pT and |eta| on and beside the menu's thresholds (float32 neighbours of 2.4, 3.2, ...),
    zero and negative pT, NaN, and infinities."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, F.N_FEATURES), np.float32)
    pts = np.array([0.0, -5.0, 4.0, 6.0, 40.0, 50.0, 100.0, 110.0, 130.0, np.nan, np.inf], np.float32)
    etas = np.array([0.0, 1.05, 2.4, 2.5, 3.2, np.nan, -np.inf], np.float32)
    etas = np.concatenate([etas, np.nextafter(etas, np.float32(9)), np.nextafter(etas, np.float32(-9)), -etas])
    for block in (F.jets(x), F.taus(x), F.muons(x)):
        shape = block.shape[:2]
        block[:, :, 0] = np.where(rng.random(shape) < 0.5, rng.choice(pts, shape), rng.uniform(0, 200, shape))
        block[:, :, 1] = np.where(rng.random(shape) < 0.5, rng.choice(etas, shape), rng.uniform(-4, 4, shape))
    F.met(x)[:, 0] = np.where(rng.random(n) < 0.3, rng.choice(pts, n), rng.uniform(0, 300, n))
    return x


MENUS = {
    "default": load_settings().menu,
    "odd": Menu((MenuItem("endcap", "muon", 4.0, count=2, eta_min=1.05), MenuItem("any jet", "jet", 0.0),
                 MenuItem("4 taus", "tau", 7.3, count=4, eta_max=2.3), MenuItem("met0", "met", 0.0),
                 MenuItem("met", "met", 130.0))),
}


@pytest.mark.parametrize("menu", sorted(MENUS))
def test_menu_kernel_equals_every_items_numpy_decision(menu):
    menu = MENUS[menu]
    x = awkward_events(20000, seed=4)
    expected = np.stack([item.fires(x) for item in menu.items], axis=1)
    decisions = menu.item_decisions(x)
    np.testing.assert_array_equal(decisions, expected)
    assert 0 < decisions.sum() < decisions.size  # the events are on both sides of every threshold
    np.testing.assert_array_equal(menu.item_decisions(x.astype(np.float64)),  # numpy's own path
                                  np.stack([item.fires(x.astype(np.float64)) for item in menu.items], axis=1))


def test_menu_kernel_compares_single_precision_features_as_numpy_does():
    # 2.4 is not a float32; numpy compares a float32 |eta| with float32(2.4), and so must the kernel
    just_below = np.nextafter(np.float32(2.4), np.float32(0))
    at = np.float32(2.4)
    item = MenuItem("L1_MU6", "muon", 6.0, eta_max=2.4)
    x = np.zeros((2, F.N_FEATURES), np.float32)
    F.muons(x)[:, 0, 0] = 10.0
    F.muons(x)[:, 0, 1] = [just_below, at]
    assert Menu((item,)).item_decisions(x)[:, 0].tolist() == item.fires(x).tolist() == [True, False]


def test_menu_refuses_features_of_the_wrong_width():
    with pytest.raises(ValueError, match=r"shape \(N, 44\), got \(3, 40\)"):
        MENUS["default"].item_decisions(np.zeros((3, 40), np.float32))


def test_variable_histograms_equal_bincount_sums_in_event_order():
    rng = np.random.default_rng(9)
    n, n_bins, n_patterns = 5000, 17, 4
    index = rng.integers(0, n_bins + 1, n)
    weights, pattern = rng.lognormal(0, 2, n), rng.integers(0, n_patterns, n)
    totals, totals_w2, by_pattern = np.zeros(n_bins + 1), np.zeros(n_bins + 1), np.zeros((n_bins + 1, n_patterns))
    kernels.variable_histograms(index, weights, pattern, totals, totals_w2, by_pattern)
    np.testing.assert_array_equal(totals, np.bincount(index, weights, n_bins + 1))
    np.testing.assert_array_equal(totals_w2, np.bincount(index, np.square(weights), n_bins + 1))
    np.testing.assert_array_equal(by_pattern, np.bincount(index * n_patterns + pattern, weights,
                                                          (n_bins + 1) * n_patterns).reshape(n_bins + 1, n_patterns))


def test_efficiency_fill_equals_a_bincount_per_variable_and_decision():
    x = awkward_events(4000, seed=6)
    x[~np.isfinite(x) | (np.abs(x) > 1e4)] = 0.0  # the calibration only sees validated features
    rng = np.random.default_rng(2)
    weights, menu = rng.uniform(0.1, 3.0, len(x)), rng.random(len(x)) < 0.2
    decisions = {("emulated", 500): rng.random(len(x)) < 0.3}
    decisions[("emulated", 5000)] = decisions[("emulated", 500)] | (rng.random(len(x)) < 0.3)
    h = ProcessHistograms(tuple(decisions))
    h.fill(x, weights, decisions, menu)
    for name, var in VARIABLES.items():
        values, present = var.compute(x)
        bins = bin_index(values[present], var.edges)
        np.testing.assert_array_equal(h.totals[name], np.bincount(bins, weights[present], var.n_bins))
        np.testing.assert_array_equal(h.totals_w2[name], np.bincount(bins, np.square(weights[present]), var.n_bins))
        for key, passed in decisions.items():
            chosen = passed[present]
            np.testing.assert_allclose(h.passed[name][key], np.bincount(bins[chosen], weights[present][chosen],
                                                                        var.n_bins), rtol=1e-13, atol=0)


def test_compiled_jet_multiplicity_equals_the_numpy_definition():
    from gelato.calibration.efficiency import jet_multiplicity

    x = awkward_events(5000, seed=12)
    np.testing.assert_array_equal(jet_multiplicity(x), F.jet_multiplicity(x))
    x[:50, :18] = 0.0  # events without jets
    np.testing.assert_array_equal(jet_multiplicity(x), F.jet_multiplicity(x))
    assert set(np.unique(jet_multiplicity(x))) == set(range(7))
    with pytest.raises(ValueError, match="shape"):
        jet_multiplicity(x[:, :10])


def test_histogram_kernel_refuses_bins_and_patterns_outside_its_arrays():
    totals, totals_w2, by_pattern = np.zeros(3), np.zeros(3), np.zeros((3, 2))
    with pytest.raises(ValueError, match="1 events with a bin outside 0..2 or a pattern outside 0..1"):
        kernels.variable_histograms(np.array([0, 3, 1]), np.ones(3), np.array([0, 1, 1]), totals, totals_w2,
                                    by_pattern)
    with pytest.raises(ValueError, match="expected equal lengths"):
        kernels.variable_histograms(np.array([0, 1]), np.ones(3), np.array([0, 1]), totals, totals_w2, by_pattern)


def test_kernels_are_built_once_into_the_cache_folder(tmp_path, monkeypatch):
    import subprocess
    import sys

    code = ("from gelato.calibration import kernels; import numpy as np; "
            "print(kernels.count_positive(np.ones((2, 44), np.float32), 0, 6).tolist())")
    env = {**__import__("os").environ, kernels.CACHE_ENV: str(tmp_path)}
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == "[6, 6]"
    assert len(list(tmp_path.glob("libgelato_calibration-*.so"))) == 1
