"""Bit-exactness: g++ C-simulation == compiled emulation == integer reference, on edge events."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from conftest import edge_events

from gelato.features import FEATURE_NAMES
from gelato.io import write_events


def assert_scores_identical(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    differ = np.flatnonzero(got != expected)
    first = [(int(i), float(got[i]), float(expected[i])) for i in differ[:5]]
    assert len(differ) == 0, f"{what}: {len(differ)} of {len(got)} events differ; first (event, got, expected): {first}"


def test_csim_equals_emulation_on_every_edge_and_random_event(firmware, tmp_path):
    from gelato.hls.csim import run_csim_report

    emulator, _ = firmware
    events = edge_events()
    files = [write_events(tmp_path / "edges.h5", events[:150]), write_events(tmp_path / "random.h5", events[150:])]
    result = run_csim_report(emulator, files, tmp_path / "reports", n_events=len(events))

    exact = result["csim_vs_emulation"]
    assert exact["events"] == len(events) == 313
    assert exact["mismatches"] == 0, exact["first_mismatches"]
    written = json.loads((tmp_path / "reports" / "csim.json").read_text())
    assert written["csim_vs_emulation"]["mismatches"] == 0
    assert "identical on every event" in (tmp_path / "reports" / "csim.md").read_text()


def test_emulation_equals_integer_reference(firmware):
    from gelato.hls.reference import reference_scores

    emulator, _ = firmware
    events = edge_events(n_random=1000, seed=9)
    expected = reference_scores(emulator.keras_model, emulator.config, events)
    assert_scores_identical(emulator.emulated_scores(events), expected, "emulation vs reference")


def test_emulated_scores_are_exact_values_of_the_score_type(firmware):
    emulator, _ = firmware
    scores = emulator.emulated_scores(edge_events())
    assert np.array_equal(emulator.score_type.quantize(scores), scores)
    assert scores.min() >= 0.0 and scores.max() <= emulator.score_type.max_value
    assert len(np.unique(scores)) > 100  # the random weights give a spread of scores


def test_float_model_agrees_with_emulation_within_input_rounding(firmware):
    emulator, _ = firmware
    events = edge_events()[13:]  # realistic events only: no saturated words
    floats, emulated = emulator.float_scores(events), emulator.emulated_scores(events)
    relative = np.abs(floats - emulated) / np.maximum(floats, 1.0)
    assert np.median(relative) < 1e-3 and np.mean(floats == emulated) < 1.0


def test_input_saturation_counts_raw_and_scaled_words(firmware):
    emulator, _ = firmware
    events = edge_events(n_random=0)
    counts = dict(zip(FEATURE_NAMES, emulator.input_saturation(events).tolist()))
    # 4096, -4097 beyond +-4096 - lsb: events 3 (4096), 5 (1e6), 6 (-1e6) saturate every feature; -4096 fits
    # (event 2, 4095.9995, rounds to 4096 - 2**-11 and fits). Scaled words: -4096 / 2**s fits, 4096 * 4 for
    # muon3_pt (shift -2) saturates, and muon3_pt = 300 GeV x 4 = 1200 > 1024 saturates in event 12.
    assert counts["jFexSR_jet0_pt"] == 3
    assert counts["muon3_pt"] == 3 + 2 + 1  # + events 2 and 4 (|4096 x 4| > 1024) + event 12
    assert counts["muon3_eta"] == 3 + 2  # shift -1: 4096 x 2 saturates too
    assert emulator.input_saturation(edge_events()[13:]).sum() == 0


def test_scaled_features_are_x_over_two_to_the_shift(firmware):
    emulator, _ = firmware
    events = edge_events(n_random=20)
    expected = events.astype(np.float64) / 2.0 ** np.asarray(emulator.shifts)
    assert np.array_equal(emulator.scaled_features(events), expected.astype(np.float32))


def test_compiled_build_is_reused_when_model_and_config_are_unchanged(firmware):
    from gelato.hls.config import DEFAULT_CONFIG
    from gelato.hls.emulate import FirmwareEmulator

    emulator, work = firmware
    start = time.perf_counter()
    again = FirmwareEmulator(work / "firmware_model.h5", DEFAULT_CONFIG, work / "build")
    assert again.project.reused and time.perf_counter() - start < 30
    events = edge_events(n_random=50)
    assert np.array_equal(again.emulated_scores(events), emulator.emulated_scores(events))


def test_batch_driver_equals_hls4ml_predict(firmware):
    emulator, _ = firmware
    events = edge_events(n_random=400, seed=21)
    assert_scores_identical(emulator.emulated_scores(events), emulator.hls4ml_scores(events), "batch vs hls4ml predict")
    assert emulator.emulated_scores(events[:0]).shape == (0,)


def test_cli_convert_reuses_and_csim_reports_zero_mismatches(firmware, tmp_path, capsys, monkeypatch):
    from gelato.cli import main

    emulator, work = firmware
    events = edge_events(n_random=100, seed=33)
    samples = tmp_path / "samples"
    write_events(samples / "a.h5", events[:50])
    write_events(samples / "b.h5", events[50:])
    monkeypatch.chdir(work)  # relative paths, as the Makefile passes them
    common = ["--model", "firmware_model.h5", "--out", "build"]

    assert main(["convert", *common]) == 0
    assert capsys.readouterr().out.startswith("reused ")
    code = main(["csim", *common, "--samples", str(samples), "--reports", str(tmp_path / "reports"), "--events", "80"])
    out = capsys.readouterr().out
    assert code == 0 and "80 events, 0 mismatches" in out
    report = json.loads((tmp_path / "reports" / "csim.json").read_text())
    assert report["events_per_sample"] == {"a": 40, "b": 40}


def test_batch_library_keeps_its_shift_table_private(firmware):
    """A static local of an inline function (the generated shift table) must not become a process-wide
    unique symbol, or the batch drivers of two firmware models in one process share one table."""
    import shutil
    import subprocess

    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    emulator, _ = firmware
    library = emulator.project.batch_library
    symbols = subprocess.run([nm, "-D", "--defined-only", str(library)], check=True, capture_output=True,
                             text=True).stdout.splitlines()
    assert [line for line in symbols if line.split()[1:2] == ["u"]] == []
