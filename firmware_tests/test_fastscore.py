"""The fast scorer equals the g++ C-simulation, the ap_fixed batch driver and hls4ml's predict, bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import edge_events, random_firmware_model
from test_bitexact import assert_scores_identical

from gelato.io import read_events

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def real_events(per_file: int = 6000) -> np.ndarray:
    """The first events of every committed sample file (zero bias and the physics processes)."""
    files = sorted(SAMPLES.glob("*.h5"))
    assert files, f"no sample files in {SAMPLES}"
    return np.concatenate([read_events(path, max_events=per_file).features for path in files])


def test_fast_scorer_is_the_default_for_the_gelato_firmware(firmware):
    emulator, _ = firmware
    assert emulator.fast is not None, emulator.fast_refused
    assert emulator.fast.build_record["flags"][:2] == ["-O3", "-march=native"]


def test_fast_equals_csim_on_every_edge_event(firmware):
    from gelato.hls.csim import build_testbench, run_testbench, write_testbench_data
    from gelato.hls.convert import build_lock

    emulator, _ = firmware
    events = edge_events(n_random=500, seed=41)
    with build_lock(emulator.project_dir):
        write_testbench_data(emulator.project_dir, events, np.zeros(len(events)))
        build_testbench(emulator.project_dir, emulator.config["project_name"])
        csim = run_testbench(emulator.project_dir, len(events))
    assert_scores_identical(emulator.emulated_scores(events, method="fast"), csim, "fast vs C-simulation")


def test_fast_equals_ap_fixed_driver_and_predict_on_edge_events(firmware):
    emulator, _ = firmware
    events = edge_events(n_random=2000, seed=43)
    fast = emulator.emulated_scores(events, method="fast")
    assert_scores_identical(fast, emulator.emulated_scores(events, method="ap_fixed"), "fast vs ap_fixed driver")
    assert_scores_identical(fast[:400], emulator.hls4ml_scores(events[:400]), "fast vs hls4ml predict")
    assert_scores_identical(emulator.emulated_scores(events), fast, "default method vs fast")


def test_fast_equals_ap_fixed_driver_and_integer_reference_on_real_events(firmware):
    from gelato.hls.reference import reference_scores

    emulator, _ = firmware
    events = real_events()
    fast = emulator.emulated_scores(events, method="fast")
    assert_scores_identical(fast, emulator.emulated_scores(events, method="ap_fixed"), "fast vs ap_fixed on samples")
    expected = reference_scores(emulator.keras_model, emulator.config, events)
    assert_scores_identical(fast, expected, "fast vs integer reference on samples")


def test_fast_scorer_gives_the_same_scores_with_one_or_two_threads(firmware):
    emulator, _ = firmware
    events = np.concatenate([edge_events(n_random=3000, seed=s) for s in range(8)])  # > 2 x 8192 events
    one, two = emulator.fast.scores(events, threads=1), emulator.fast.scores(events, threads=2)
    assert_scores_identical(two, one, "2 threads vs 1 thread")
    three = emulator.fast.scores(events[:-5], threads=3)  # uneven shares, a partial last tile
    assert_scores_identical(three, one[:-5], "3 threads on N - 5 events vs 1 thread")


def test_fast_scorer_handles_empty_and_partial_tiles(firmware):
    emulator, _ = firmware
    events = edge_events(n_random=40)
    assert emulator.emulated_scores(events[:0], method="fast").shape == (0,)
    for count in (1, 15, 17, 33):
        expected = emulator.emulated_scores(events[:count], method="ap_fixed")
        assert_scores_identical(emulator.emulated_scores(events[:count], method="fast"), expected, f"{count} events")


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_fast_scorer_refuses_non_finite_features_naming_the_events(firmware, bad_value):
    emulator, _ = firmware
    events = edge_events(n_random=50)
    events[[7, 30], 20] = bad_value
    with pytest.raises(ValueError, match=r"NaN or infinite values \(2 events, first \[7, 30\]\)"):
        emulator.emulated_scores(events, method="fast")


def test_unknown_method_is_refused(firmware):
    emulator, _ = firmware
    with pytest.raises(ValueError, match="method must be one of auto, fast, ap_fixed, got 'float'"):
        emulator.emulated_scores(edge_events(n_random=2), method="float")


def test_truncating_accumulator_is_refused_and_the_ap_fixed_driver_takes_over(tmp_path):
    from gelato.hls.config import DEFAULT_CONFIG
    from gelato.hls.emulate import FirmwareEmulator
    from gelato.hls.fastkernel import FastKernelRefused

    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["precision"]["layers"]["dense_1"] = {"accum": "ap_fixed<22,13>", "result": "ap_fixed<22,13>"}
    config_path = tmp_path / "truncating.yaml"
    config_path.write_text(yaml.safe_dump(config))
    emulator = FirmwareEmulator(random_firmware_model(tmp_path / "model.h5"), config_path, tmp_path / "build")

    assert emulator.fast is None
    assert emulator.fast_refused == (
        "layer dense_1: accumulator ap_fixed<22,13> has 9 fraction bits but the products need 11 and the bias 7: "
        "the firmware truncates them; the fast scorer models only exact (full-width) accumulators")
    events = edge_events(n_random=100)
    assert_scores_identical(emulator.emulated_scores(events), emulator.hls4ml_scores(events), "fallback vs predict")
    with pytest.raises(FastKernelRefused, match="the fast scorer refused this firmware: layer dense_1"):
        emulator.emulated_scores(events, method="fast")


def test_fast_saturation_counts_equal_the_numpy_model(firmware):
    emulator, _ = firmware
    edges = np.concatenate([edge_events(n_random=0)] * 1500)  # 19,500 events: two threads, a partial tile
    counts = emulator.input_saturation(edges, method="fast")
    np.testing.assert_array_equal(counts, emulator.input_saturation(edges, method="ap_fixed"))
    assert counts.sum() > 0 and counts.min() > 0  # every feature saturates in some edge event
    np.testing.assert_array_equal(emulator.fast.input_saturation(edges, threads=1), counts)
    events = real_events(2000)
    np.testing.assert_array_equal(emulator.input_saturation(events, method="fast"),
                                  emulator.input_saturation(events, method="ap_fixed"))


def test_fast_saturation_refuses_non_finite_features(firmware):
    emulator, _ = firmware
    events = edge_events(n_random=20)
    events[3, 0], events[5, 43] = np.nan, -np.inf
    with pytest.raises(ValueError, match=r"NaN or infinite values \(2 values\)"):
        emulator.input_saturation(events)


def test_fast_library_exports_no_process_wide_unique_symbols(firmware):
    """g++ exports C++17 inline variables (the weight tables) as STB_GNU_UNIQUE symbols, which the
    dynamic loader shares across every library of the process: a second kernel would silently run the
    first one's weights.  The kernel keeps them internal; only the C entry points are exported."""
    import shutil
    import subprocess

    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) not installed")
    emulator, _ = firmware
    symbols = subprocess.run([nm, "-D", "--defined-only", str(emulator.fast.library_path)], check=True,
                             capture_output=True, text=True).stdout.splitlines()
    unique = [line for line in symbols if line.split()[1:2] == ["u"]]
    assert unique == [], f"process-wide unique symbols in the fast kernel: {unique[:5]}"
    exported = {line.split()[-1] for line in symbols if line.split()[1:2] == ["T"]}
    assert {"gelato_fast_scores", "gelato_fast_n_features"} <= exported
