"""The emulator's float scores and saturation counts, as the calibration takes them, equal the slow references."""

from __future__ import annotations

import numpy as np
from conftest import edge_events

from gelato import PROJECT_ROOT
from gelato.hls.emulate import FLOAT_BATCH
from gelato.io import read_events


def real_and_edge_events() -> np.ndarray:
    real = read_events(PROJECT_ROOT / "data" / "samples" / "zerobias.h5", max_events=70000).features
    return np.concatenate([edge_events(), real]).astype(np.float32)


def signal_events() -> np.ndarray:
    samples = PROJECT_ROOT / "data" / "samples"
    return np.concatenate([read_events(samples / f"{p}.h5").features for p in ("jz4", "ttbar_1lep", "ZZ4lep")])


def test_compiled_float_model_equals_predict_bit_for_bit(firmware):
    emulator, _ = firmware
    events = real_and_edge_events()
    predicted = emulator.keras_model.predict(events, batch_size=FLOAT_BATCH, verbose=0).astype(np.float64).ravel()
    np.testing.assert_array_equal(emulator.float_scores(events), predicted)


def test_xla_float_model_equals_predict_on_signal_and_does_not_depend_on_padding(firmware):
    """The XLA-compiled model pads short batches with zero rows: neither they nor the batch size change a score."""
    emulator, _ = firmware
    events = signal_events()
    predicted = emulator.keras_model.predict(events, batch_size=1000, verbose=0).astype(np.float64).ravel()
    scores = emulator.float_scores(events)
    np.testing.assert_array_equal(scores, predicted)
    np.testing.assert_array_equal(emulator.float_scores(events[:7]), scores[:7])
    assert len(np.unique(scores)) > 1000  # real, varied scores, not a constant


def test_saturation_counts_of_the_fast_kernel_equal_the_numpy_model(firmware):
    emulator, _ = firmware
    events = real_and_edge_events()
    counts = emulator.input_saturation(events)
    np.testing.assert_array_equal(counts, emulator.input_saturation(events, method="ap_fixed"))
    assert counts.sum() > 0  # the edge events saturate
