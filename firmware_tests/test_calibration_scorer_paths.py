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


def test_compiled_float_model_equals_predict_bit_for_bit(firmware):
    emulator, _ = firmware
    events = real_and_edge_events()
    predicted = emulator.keras_model.predict(events, batch_size=FLOAT_BATCH, verbose=0).astype(np.float64).ravel()
    np.testing.assert_array_equal(emulator.float_scores(events), predicted)


def test_saturation_counts_of_the_fast_kernel_equal_the_numpy_model(firmware):
    emulator, _ = firmware
    events = real_and_edge_events()
    counts = emulator.input_saturation(events)
    np.testing.assert_array_equal(counts, emulator.input_saturation(events, method="ap_fixed"))
    assert counts.sum() > 0  # the edge events saturate
