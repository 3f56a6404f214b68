"""Thresholds for rates on discrete scores, the >= rule at ties, weights, unique rates, Clopper-Pearson."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gelato.calibration.rates import (
    PASS_RULE, bunch_crossing_rate_hz, clopper_pearson, passes, threshold_for_rate, weighted_fraction_interval,
)

LSB = 0.25


def scores_of(codes) -> np.ndarray:
    return np.asarray(codes, dtype=np.float64) * LSB


def test_rule_is_greater_or_equal_and_ties_pass():
    assert PASS_RULE == ">="
    np.testing.assert_array_equal(passes(scores_of([1, 2, 3]), 2 * LSB), [False, True, True])


def test_bunch_crossing_rate_of_2544_bunches_is_28_61_mhz():
    assert bunch_crossing_rate_hz(2544) == 2544 * 11245.5 == 28608552.0


@pytest.mark.parametrize(
    ("target_hz", "threshold_code", "rate_hz", "n_pass"),
    [
        (1.0, 3, 1.0, 1),  # only the event at code 3
        (3.9, 3, 1.0, 1),  # code 2 would bring in three tied events: 4 Hz > 3.9 Hz
        (4.0, 2, 4.0, 4),  # the tied events at the threshold pass (>=): exactly 4 Hz is allowed
        (0.5, 4, 0.0, 0),  # nothing may pass: one LSB above the highest score
        (6.0, 0, 6.0, 6),  # everything may pass: the smallest value of the type
    ],
)
def test_threshold_with_ties_on_a_discrete_grid(target_hz, threshold_code, rate_hz, n_pass):
    # Six events, unit weights, f_bc = 6 Hz: each event is worth 1 Hz.
    res = threshold_for_rate(scores_of([0, 1, 2, 2, 2, 3]), np.ones(6), target_hz, 6.0, LSB)
    assert res.threshold == threshold_code * LSB
    assert res.rate_hz == rate_hz
    assert res.n_pass == n_pass
    assert res.rate_hz <= target_hz


def test_threshold_is_the_smallest_representable_value_not_the_next_observed_score():
    res = threshold_for_rate(scores_of([0, 1, 5]), np.ones(3), 1.0, 3.0, LSB)
    assert res.threshold == 2 * LSB  # codes 2..5 all give 1 Hz; 2 is the smallest
    assert res.n_pass == 1


def test_weights_set_the_rate():
    # Weights 1, 1, 2 (sum 4), f_bc = 4 Hz: the heaviest event alone is 2 Hz.
    scores, weights = scores_of([1, 2, 3]), np.array([1.0, 1.0, 2.0])
    at_two = threshold_for_rate(scores, weights, 2.0, 4.0, LSB)
    assert (at_two.threshold, at_two.rate_hz, at_two.n_pass, at_two.weight_pass) == (3 * LSB, 2.0, 1, 2.0)
    below = threshold_for_rate(scores, weights, 1.9, 4.0, LSB)
    assert (below.threshold, below.rate_hz, below.n_pass) == (4 * LSB, 0.0, 0)


def test_unique_rate_ignores_events_the_menu_accepts():
    scores, vetoed = scores_of([1, 2, 3, 4]), np.array([False, False, False, True])
    res = threshold_for_rate(scores, np.ones(4), 1.0, 4.0, LSB, vetoed=vetoed)
    assert res.threshold == 3 * LSB  # the menu takes code 4, so code 3 is the only unique event
    assert (res.rate_hz, res.n_pass) == (1.0, 1)
    plain = threshold_for_rate(scores, np.ones(4), 1.0, 4.0, LSB)
    assert plain.threshold == 4 * LSB


def test_continuous_scores_on_the_score_grid_and_without_one():
    scores = np.array([0.3, 0.55, 0.8])
    gridded = threshold_for_rate(scores, np.ones(3), 1.0, 3.0, LSB)
    assert gridded.threshold == 0.75 and gridded.n_pass == 1  # first grid value above 0.55
    free = threshold_for_rate(scores, np.ones(3), 1.0, 3.0, None)
    assert free.threshold == np.nextafter(0.55, 1.0) and free.n_pass == 1


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(st.integers(0, 40), min_size=1, max_size=60),
    target_fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_achieved_rate_never_exceeds_target_and_one_lsb_lower_would(codes, target_fraction, seed):
    rng = np.random.default_rng(seed)
    scores, weights = scores_of(codes), rng.uniform(0.1, 2.0, len(codes))
    vetoed = rng.random(len(codes)) < 0.2
    target = target_fraction * 1000.0
    res = threshold_for_rate(scores, weights, target, 1000.0, LSB, vetoed=vetoed)
    assert res.rate_hz <= target + 1e-9
    if res.threshold > 0:
        lower = res.threshold - LSB
        rate_lower = 1000.0 * weights[passes(scores, lower) & ~vetoed].sum() / weights.sum()
        assert rate_lower > target


def test_clopper_pearson_known_values():
    lo, hi = clopper_pearson(5, 10, 0.95)
    assert lo == pytest.approx(0.187086, abs=1e-6) and hi == pytest.approx(0.812914, abs=1e-6)
    lo, hi = clopper_pearson(0, 10, 0.95)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025**0.1, rel=1e-9)
    lo, hi = clopper_pearson(10, 10, 0.95)
    assert lo == pytest.approx(0.025**0.1, rel=1e-9) and hi == 1.0


def test_clopper_pearson_of_empty_denominator_is_the_whole_range():
    np.testing.assert_array_equal(clopper_pearson(np.array([0.0]), np.array([0.0]), 0.68), [[0.0], [1.0]])


def test_weighted_interval_equals_plain_interval_for_unit_weights_and_widens_with_uneven_weights():
    np.testing.assert_allclose(weighted_fraction_interval(3.0, 20.0, 20.0, 0.68), clopper_pearson(3, 20, 0.68))
    # Same fraction 3/20 from weights that make the sample worth fewer effective events.
    wide = weighted_fraction_interval(6.0, 40.0, 160.0, 0.68)
    plain = clopper_pearson(3, 20, 0.68)
    assert wide[0] < plain[0] and wide[1] > plain[1]


def test_threshold_interval_contains_the_rate():
    rng = np.random.default_rng(3)
    scores = np.floor(rng.exponential(4.0, 100000) / LSB) * LSB
    res = threshold_for_rate(scores, np.ones(len(scores)), 5000.0, 28.6e6, LSB)
    assert res.rate_lo95_hz < res.rate_lo68_hz < res.rate_hz < res.rate_hi68_hz < res.rate_hi95_hz
    assert res.n_pass == round(res.rate_hz / 28.6e6 * len(scores))
