"""Shift tables of the model stage: the derive rule on data with a known answer, and files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gelato.cli import main
from gelato.features import FEATURE_NAMES, N_FEATURES, SEED_SHIFTS
from gelato.io import write_events
from gelato.model.shifts import (
    MAX_SHIFT,
    derive_shifts,
    load_shifts,
    save_shifts,
    scale_features,
    shift_for_magnitude,
    validate_shifts,
)


@pytest.mark.parametrize(
    ("magnitude", "expected"),
    [(128.0, 7), (128.5, 8), (127.9, 7), (1.0, 0), (0.3, -1), (0.25, -2), (0.0, 0), (3000.0, 12)],
)
def test_shift_for_magnitude_is_smallest_s_with_magnitude_over_two_to_s_at_most_one(magnitude, expected):
    assert shift_for_magnitude(magnitude) == expected
    if magnitude > 0:
        assert magnitude / 2.0**expected <= 1.0 < magnitude / 2.0 ** (expected - 1)


def _constructed_sample(rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """Column i: +-c_i on 990 of 1000 events, +-1000 c_i on 10, zero elsewhere; answer ceil(log2 c_i)."""
    n_events = 2000
    magnitudes = 2.0 ** rng.uniform(-3, 9, N_FEATURES)
    magnitudes[5] = 64.0  # exactly a power of two: s = 6, not 7
    features = np.zeros((n_events, N_FEATURES), dtype=np.float32)
    for i, c in enumerate(magnitudes):
        rows = rng.choice(n_events, 1000, replace=False)
        values = np.full(1000, c)
        values[:10] *= 1000.0
        features[rows, i] = values * rng.choice([-1.0, 1.0], 1000)
    features[:, 7] = 0.0  # a feature that never fires keeps s = 0
    expected = [int(np.ceil(np.log2(np.float32(c)))) for c in magnitudes]
    expected[7] = 0
    return features, expected


def test_derive_shifts_ignores_zeros_and_the_top_one_percent():
    features, expected = _constructed_sample(np.random.default_rng(7))
    assert derive_shifts(features, quantile=0.99) == expected


def test_derive_shifts_at_higher_quantile_covers_the_outliers():
    features, expected = _constructed_sample(np.random.default_rng(7))
    derived = derive_shifts(features, quantile=0.995)
    outlier_shifts = [0 if i == 7 else shift_for_magnitude(float(np.max(np.abs(features[:, i])))) for i in range(44)]
    assert derived == outlier_shifts
    assert derived[5] == min(16, MAX_SHIFT)  # 64 * 1000 = 64000 <= 2**16, clipped to the table's range


def test_scale_features_divides_by_powers_of_two_exactly():
    x = np.arange(1, 45, dtype=np.float32)[np.newaxis, :] * 3.0
    scaled = scale_features(x, SEED_SHIFTS)
    np.testing.assert_array_equal(scaled[0], x[0] / np.float32(2.0) ** np.array(SEED_SHIFTS, dtype=np.float32))
    assert scaled[0, 39] == x[0, 39] * 4  # muon3 pT: s = -2 is a left shift


def test_shift_table_round_trips_through_json(tmp_path):
    shifts = [(i % 24) - 8 for i in range(44)]
    path = save_shifts(tmp_path / "s.json", shifts, source="unit test")
    assert load_shifts(path) == shifts
    assert json.loads(path.read_text())["feature_names"] == list(FEATURE_NAMES)
    assert load_shifts(None) == list(SEED_SHIFTS)


def test_load_shifts_rejects_wrong_length_and_non_integers(tmp_path):
    (tmp_path / "short.json").write_text(json.dumps([1, 2, 3]))
    with pytest.raises(ValueError, match="expected 44 shift exponents, got 3"):
        load_shifts(tmp_path / "short.json")
    with pytest.raises(ValueError, match="shift 2 .* is 1.5"):
        validate_shifts([0, 0, 1.5] + [0] * 41)


def test_cli_derive_shifts_prints_table_and_writes_json(tmp_path, capsys):
    features, expected = _constructed_sample(np.random.default_rng(3))
    write_events(tmp_path / "zb.h5", features)
    code = main(["derive-shifts", str(tmp_path / "zb.h5"), "--out", str(tmp_path / "derived.json")])
    out = capsys.readouterr().out

    assert code == 0
    assert load_shifts(tmp_path / "derived.json") == expected
    assert "jFexSR_jet0_pt" in out and "seed" in out


def test_cli_derive_shifts_missing_file_exits_2_naming_it(tmp_path, capsys):
    code = main(["derive-shifts", str(tmp_path / "nothing.h5")])
    assert code == 2
    assert "nothing.h5" in capsys.readouterr().err
