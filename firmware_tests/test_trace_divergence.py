"""Per-layer traces: the integer reference equals the generated C++ at every layer, and a
disagreement is reported with the first layer that diverges and its first events."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import edge_events

from gelato.hls.config import DEFAULT_CONFIG
from gelato.hls.trace import first_divergence
from gelato.io import write_events

LAYERS = ["bit_shift", "dense_0", "relu_0", "dense_1", "relu_1", "mu", "score"]


def test_reference_equals_the_generated_cpp_at_every_layer(firmware):
    from gelato.hls.reference import reference_trace
    from gelato.hls.trace import firmware_trace

    emulator, work = firmware
    events = edge_events(n_random=47, seed=13)  # 13 limit events + 47 realistic ones
    expected = reference_trace(emulator.keras_model, emulator.config, events)
    actual = firmware_trace(work / "firmware_model.h5", DEFAULT_CONFIG, work / "build", events)

    assert list(actual) == LAYERS and list(expected) == ["l1_objects", *LAYERS]
    assert first_divergence(expected, actual) is None
    assert np.any(expected["relu_0"] == 16 - 2.0**-6) and np.any(expected["relu_0"] == 0)  # saturates and clips


def test_first_divergence_names_the_earliest_layer_and_its_first_events():
    expected = {"a": np.zeros((6, 2)), "b": np.ones((6, 3)), "c": np.full((6, 1), 2.0)}
    actual = {name: values.copy() for name, values in expected.items()}
    actual["c"][[0, 1]] = 9.0  # later layer differs on more events ...
    actual["b"][4, 2] = 1.5  # ... but b comes first
    found = first_divergence(expected, actual, event_ids=np.arange(100, 106))

    assert (found.layer, found.events, found.n_events, found.agreeing_layers) == ("b", [104], 1, ["a"])
    assert found.details == [{"event": 104, "unit": 2, "expected": 1.0, "actual": 1.5, "units_differing": 1}]
    assert "first diverging layer: b" in found.summary()
    assert first_divergence(expected, {k: v.copy() for k, v in expected.items()}) is None


def test_bitexact_report_names_dense_1_when_the_reference_weights_differ_by_one_lsb(firmware, tmp_path, monkeypatch):
    """A one-LSB weight difference in dense_1 (what a weight-export bug looks like) is pinned to dense_1."""
    import gelato.hls.bitexact as bitexact
    from gelato.hls.reference import reference_scores, reference_trace
    from gelato.model.firmware import load_firmware_model

    emulator, work = firmware
    faulty = load_firmware_model(work / "firmware_model.h5")
    kernel, bias = faulty.get_layer("dense_1").get_weights()
    kernel[3, 5] = kernel[3, 5] - 2.0**-5 if kernel[3, 5] > 0 else kernel[3, 5] + 2.0**-5  # one LSB of ap_fixed<8,3>
    faulty.get_layer("dense_1").set_weights([kernel, bias])
    monkeypatch.setattr(bitexact, "reference_scores", lambda model, config, x: reference_scores(faulty, config, x))
    monkeypatch.setattr(bitexact, "reference_trace", lambda model, config, x: reference_trace(faulty, config, x))

    samples = write_events(tmp_path / "edges.h5", edge_events(n_random=400, seed=17))
    result = bitexact.run_bitexact(work / "firmware_model.h5", DEFAULT_CONFIG, work / "build", [samples],
                                   tmp_path / "reports", n_random=3000, seed=5)  # fmt: skip

    pairs = result["pairs"]
    assert result["verdict"] == "FAIL" and pairs["csim_vs_emulation"]["mismatches"] == 0
    assert pairs["reference_vs_emulation"]["mismatches"] == pairs["csim_vs_reference"]["mismatches"] > 0
    divergence = result["divergence"]
    assert divergence["layer"] == "dense_1" and divergence["agreeing_layers"] == ["bit_shift", "dense_0", "relu_0"]
    assert all(detail["unit"] == 5 for detail in divergence["details"])
    first = pairs["reference_vs_emulation"]["first_mismatches"][0]
    assert divergence["events"][0] == f"{first['set']}#{first['event']}"
    assert "first diverging layer dense_1 at " in result["verdict_line"]
    assert "first diverging layer: dense_1" in (tmp_path / "reports" / "bitexact.md").read_text()
    assert json.loads((tmp_path / "reports" / "bitexact.json").read_text())["verdict"] == "FAIL"


@pytest.mark.slow
def test_trace_of_the_trained_model_on_committed_events_agrees_at_every_layer(tmp_path):
    from gelato.hls.reference import reference_trace
    from gelato.hls.trace import firmware_trace
    from gelato.io import read_events
    from gelato.model.firmware import load_firmware_model
    from gelato.hls.config import load_hls_config

    events = read_events("data/samples/ZZ4lep.h5", max_events=300).features
    model = load_firmware_model("model/default/firmware_model.h5")
    expected = reference_trace(model, load_hls_config(DEFAULT_CONFIG), events)
    actual = firmware_trace("model/default/firmware_model.h5", DEFAULT_CONFIG, tmp_path, events)
    assert first_divergence(expected, actual) is None
