"""The calibration's shortcuts to the emulator's float scores and saturation counts give the same numbers."""

from __future__ import annotations

import numpy as np
from conftest import edge_events

from gelato import PROJECT_ROOT
from gelato.calibration.scoring import float_scores_of, input_saturation_of
from gelato.io import read_events


def real_and_edge_events() -> np.ndarray:
    real = read_events(PROJECT_ROOT / "data" / "samples" / "zerobias.h5", max_events=70000).features
    return np.concatenate([edge_events(), real]).astype(np.float32)


def test_compiled_float_model_equals_predict_bit_for_bit(firmware):
    emulator, _ = firmware
    events = real_and_edge_events()
    np.testing.assert_array_equal(float_scores_of(emulator, events), emulator.float_scores(events))


def test_saturation_prefilter_gives_the_emulator_counts(firmware):
    emulator, _ = firmware
    events = real_and_edge_events()
    counts = input_saturation_of(emulator, events)
    np.testing.assert_array_equal(counts, emulator.input_saturation(events))
    assert counts.sum() > 0  # the edge events saturate: the prefilter must pass them on
