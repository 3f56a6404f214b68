"""The end-to-end benchmark's pieces: the replicated input, the raw read, the calibration run (no speed asserted)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from test_calibration_pipeline import SyntheticScorer, synthetic_events, write_synthetic_samples

from gelato.calibration.bench import compare, end_to_end, raw_read, replicate_sample
from gelato.calibration.config import load_settings
from gelato.io import read_events, write_events


def test_replicated_sample_repeats_every_per_event_dataset_in_order_with_the_same_storage(tmp_path):
    features = synthetic_events(70, np.random.default_rng(1), pt_scale=10.0)
    weights, menu = np.arange(70, dtype=np.float32), np.arange(70) % 3 == 0
    source = write_events(tmp_path / "zerobias.h5", features, weights=weights, attrs={"process": "zerobias"},
                          menu_pass=menu)

    out = replicate_sample(source, tmp_path / "big.h5", 225, block_events=32)
    copy = read_events(out)

    rows = np.arange(225) % 70
    np.testing.assert_array_equal(copy.features, features[rows])
    np.testing.assert_array_equal(copy.weights, weights[rows])
    np.testing.assert_array_equal(copy.menu_pass, menu[rows])
    with h5py.File(source) as f, h5py.File(out) as g:
        assert g.attrs["n_events"] == 225 and g.attrs["process"] == "zerobias"
        assert g["features"].compression == f["features"].compression and g["features"].shuffle
        assert list(g["features"].attrs["feature_names"]) == list(f["features"].attrs["feature_names"])


def test_replicated_sample_refuses_no_events(tmp_path):
    source = write_events(tmp_path / "zerobias.h5", synthetic_events(5, np.random.default_rng(2), pt_scale=10.0))
    with pytest.raises(ValueError, match="at least one event, got 0"):
        replicate_sample(source, tmp_path / "big.h5", 0)


def test_raw_read_counts_the_events_of_every_file(tmp_path):
    paths = write_synthetic_samples(tmp_path, n_ref=1000, n_proc=100)
    figures = raw_read(paths, chunk_events=300)
    assert figures["events"] == 1000 + 6 * 100
    assert figures["megabytes"] == pytest.approx((1000 + 600) * (44 * 4 + 4 + 8 * 0) / 1e6, rel=0.01)


def test_end_to_end_gives_the_thresholds_of_the_full_calibration_and_a_verdict(tmp_path):
    paths = write_synthetic_samples(tmp_path, n_ref=4000, n_proc=300)
    figures = compare(paths, SyntheticScorer(), work_dir=tmp_path)

    assert figures["end_to_end"]["events"] == figures["raw_read"]["events"] == 4000 + 6 * 300
    assert isinstance(figures["pass"], bool) and isinstance(figures["peak_pass"], bool)
    assert figures["end_to_end"]["peak_memory_mb"] > 0
    assert set(figures["end_to_end"]["thresholds"]) == {str(r) for r in load_settings().rates_hz}
    assert list(tmp_path.glob("gelato-bench-*")) == []  # its score files are gone


def test_end_to_end_needs_the_reference_sample_and_known_processes(tmp_path):
    paths = write_synthetic_samples(tmp_path, n_ref=500, n_proc=50)
    with pytest.raises(ValueError, match="no sample for the reference process 'zerobias'"):
        end_to_end({"jz4": paths["jz4"]}, SyntheticScorer(), work_dir=tmp_path)
    with pytest.raises(ValueError, match="samples extra are no process"):
        end_to_end({"zerobias": paths["zerobias"], "extra": paths["jz4"]}, SyntheticScorer(), work_dir=tmp_path)


def test_repeated_comparison_judges_the_ratio_of_the_median_runs(tmp_path):
    paths = write_synthetic_samples(tmp_path, n_ref=2000, n_proc=100)
    figures = compare(paths, SyntheticScorer(), repeats=3, work_dir=tmp_path)

    assert figures["repeats"] == 3 and len(figures["runs"]) == 3
    raw_median = sorted(run["raw_read_s"] for run in figures["runs"])[1]
    e2e_median = sorted(run["end_to_end_s"] for run in figures["runs"])[1]
    assert figures["raw_read"]["seconds"] == raw_median and figures["end_to_end"]["seconds"] == e2e_median
    assert figures["ratio"] == pytest.approx(raw_median / e2e_median)  # same events in both
    assert figures["pass"] == (figures["ratio"] >= 1 / 3)
    with pytest.raises(ValueError, match="at least 1 run"):
        compare(paths, SyntheticScorer(), repeats=0, work_dir=tmp_path)
