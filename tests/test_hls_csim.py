"""C-simulation bookkeeping: event shares over samples, comparisons, testbench data format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gelato.hls.csim import (
    EventSelection,
    compare_exact,
    compare_float,
    event_shares,
    sample_labels,
    write_testbench_data,
)


def test_event_shares_are_equal_and_short_files_are_made_up_by_the_others():
    assert event_shares([1000] * 7, 10000) == [1000] * 7
    assert event_shares([5000] * 3, 10000) == [3334, 3333, 3333]
    assert event_shares([150, 163], 313) == [150, 163]
    assert event_shares([10, 1000, 1000], 100) == [10, 45, 45]
    assert event_shares([5, 5], 100) == [5, 5]


def test_sample_labels_stay_unique_across_directories():
    paths = [Path("preview/jz1.h5"), Path("preview/zerobias.h5"), Path("data/zerobias.h5")]
    assert sample_labels(paths) == ["jz1", "preview/zerobias", "data/zerobias"]


def test_compare_exact_lists_the_first_mismatches_with_their_sample():
    selection = EventSelection(np.zeros((4, 44), np.float32), ["jz1", "zerobias"], {"jz1": 2, "zerobias": 2})
    result = compare_exact(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.0, 2.5, 3.0, 4.25]), selection)
    assert result["events"] == 4 and result["mismatches"] == 2
    assert [(m["event"], m["sample"]) for m in result["first_mismatches"]] == [(1, "jz1"), (3, "zerobias")]


def test_compare_float_counts_differences_in_score_lsbs():
    lsb = 2.0**-22
    emulated = np.array([1.0, 2.0, 3.0, 4.0])
    floats = emulated + np.array([0.0, 0.5 * lsb, 2 * lsb, -3 * lsb])
    result = compare_float(emulated, floats, lsb)
    assert result["max_abs_diff_lsb"] == 3.0 and result["max_abs_diff"] == 3 * lsb
    assert result["frac_identical"] == 0.25 and result["frac_differ_more_than_1lsb"] == 0.5


def test_testbench_inputs_round_trip_float32_exactly(tmp_path):
    rng = np.random.default_rng(1)
    features = (rng.normal(0, 100, (50, 44)) * rng.choice([1, 1e-30, 1e6], (50, 44))).astype(np.float32)
    write_testbench_data(tmp_path, features, np.zeros(50))
    rows = (tmp_path / "tb_data" / "tb_input_features.dat").read_text().splitlines()
    read_back = np.array([[np.float32(float(v)) for v in row.split()] for row in rows], dtype=np.float32)
    assert np.array_equal(read_back, features)


def test_select_events_reads_other_spellings_through_the_name_mapping(tmp_path):
    from io_samples import physical_events, write_columns

    from gelato.features import FEATURE_NAMES
    from gelato.hls.csim import select_events
    from gelato.io import EventFileError

    x = physical_events(12, seed=3)
    spelled = [f"calo_{i:02d}" for i in range(len(FEATURE_NAMES))]
    path = write_columns(tmp_path / "own.h5", x, names=spelled)
    mapping = tmp_path / "names.yaml"
    mapping.write_text("".join(f"{name}: [{alias}]\n" for name, alias in zip(FEATURE_NAMES, spelled)))

    with pytest.raises(EventFileError, match="unknown layout"):
        select_events([path], 10)
    selection = select_events([path], 10, names=mapping)
    np.testing.assert_array_equal(selection.features, x[:10])
    assert selection.counts == {"own": 10}
