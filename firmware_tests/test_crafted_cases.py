"""Hand-computed events through every path: rounding ties, saturation, QKeras' own quantizers.

The model here uses the quantizers of a case reported in this field,
``QDense(kernel_quantizer=quantized_bits(8,0,alpha=1))`` followed by
``quantized_relu(10,2)``, with weights chosen so that single features reach the relu
layers exactly on rounding ties and beyond the relu range.  Every expected score below
is worked out by hand in the comments; each differs from what half-up rounding or a
wrapping relu would give, so these tests fail on either fault.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_paths_identical, small_firmware, three_path_scores

from gelato.features import N_FEATURES, feature_index
from gelato.model.firmware import FirmwareQuantizers

QUANTIZERS = FirmwareQuantizers(kernel="quantized_bits(8,0,alpha=1)", activation="quantized_relu(10,2)")
MET, JET0_PT = feature_index("MET_pt"), feature_index("jFexSR_jet0_pt")  # shifts 6 and 7


def crafted_weights() -> dict:
    """dense_0 unit 0 = MET/64 * 0.5, unit 1 = jet0 pT/128 * 0.5; dense_1 and mu halve again; no biases."""
    kernel_0 = np.zeros((N_FEATURES, 4), np.float32)
    kernel_0[MET, 0] = kernel_0[JET0_PT, 1] = 0.5
    kernel_1 = np.zeros((4, 2), np.float32)
    kernel_1[0, 0] = kernel_1[1, 1] = 0.5
    return {"dense_0": (kernel_0, np.zeros(4, np.float32)), "dense_1": (kernel_1, np.zeros(2, np.float32)),
            "mu": (np.diag([0.5, 0.5]).astype(np.float32), np.zeros(2, np.float32))}


# (MET GeV, jet0 pT GeV, score with half-to-even and saturation, score with half-up, score with a wrapping relu)
CASES = [
    # MET 1.25: dense_0 = 1.25/128 = 2.5 LSB of relu(10,2) (2**-8): tie -> 2 LSB (even; half up: 3);
    # dense_1 = 1 LSB exactly (half up: 1.5 LSB, a tie again -> 2); mu = 2**-9 -> score 2**-18 (half up: 2**-16)
    (1.25, 0.0, 2.0**-18, 2.0**-16, 2.0**-18),
    # jet0 pT 3.5: 3.5/256 = 3.5 LSB: tie -> 4 (even and up agree); dense_1 = 2 LSB; mu = 2**-8 -> 2**-16
    (0.0, 3.5, 2.0**-16, 2.0**-16, 2.0**-16),
    # MET 0.75: 1.5 LSB -> 2 (both); jet0 pT 2.5: 2.5 LSB -> 2 (up: 3, then 1.5 -> 2): 2 * 2**-18 (up: 2**-16 + 2**-18)
    (0.75, 2.5, 2.0**-17, 2.0**-16 + 2.0**-18, 2.0**-17),
    # MET 600: dense_0 = 4.6875 > 3.99609375 saturates (a wrapping relu keeps 0.6875); dense_1 = 1.998046875 is a
    # tie of 2**-8 -> 2.0 (odd 511.5 LSB -> 512); mu = 1.0 -> score 1.0 (wrapped: 0.6875/4 -> 0.171875**2)
    (600.0, 0.0, 1.0, 1.0, 0.171875**2),
]


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    return small_firmware(tmp_path_factory.mktemp("crafted"), crafted_weights(), quantizers=QUANTIZERS,
                          hidden_units=(4, 2), latent_dim=2)


def crafted_events() -> np.ndarray:
    events = np.zeros((len(CASES), N_FEATURES), np.float32)
    for row, (met, pt, *_) in enumerate(CASES):
        events[row, MET], events[row, JET0_PT] = met, pt
    return events


def test_ties_round_half_to_even_and_relu_saturates_in_every_path(crafted):
    events = crafted_events()
    scores = three_path_scores(crafted, events)
    assert_paths_identical(scores, "crafted ties")
    expected = np.array([case[2] for case in CASES])
    np.testing.assert_array_equal(scores["emulation"], expected)
    half_up, wrapped = np.array([case[3] for case in CASES]), np.array([case[4] for case in CASES])
    assert np.any(expected != half_up) and np.any(expected != wrapped)  # the cases tell the faults apart

    # every value in these events is a short dyadic fraction, so float32 computes them exactly:
    # the float QKeras model must agree too (one compiled model for both checks: it takes tens of seconds)
    np.testing.assert_array_equal(crafted.float_scores(events), expected)


def test_qdense_8_0_then_quantized_relu_10_2_matches_qkeras_layer_by_layer():
    """The reference equals the QKeras model at every layer, on inputs where float32 arithmetic is exact."""
    import tensorflow as tf

    from gelato.hls.config import load_hls_config
    from gelato.hls.exact_types import exact_precisions
    from gelato.hls.reference import reference_trace
    from gelato.features import SEED_SHIFTS
    from gelato.model.firmware import build_firmware_model

    tf.keras.utils.set_random_seed(4)
    model = build_firmware_model(SEED_SHIFTS, QUANTIZERS)
    config = exact_precisions(load_hls_config(), model)
    rng = np.random.default_rng(4)
    # model inputs on the 2**-6 grid in [-4, 4): 44 products with 8-bit weights stay below 2**24 LSBs
    scaled = rng.integers(-256, 256, (4000, N_FEATURES)) / 64.0
    events = (scaled * 2.0 ** np.asarray(SEED_SHIFTS)).astype(np.float32)

    trace = reference_trace(model, config, events)
    for name in ("dense_0", "relu_0", "dense_1", "relu_1", "mu"):
        qkeras = tf.keras.Model(model.input, model.get_layer(name).output)(events).numpy().astype(np.float64)
        differ = np.flatnonzero((qkeras != trace[name]).any(axis=1))
        assert len(differ) == 0, f"{name}: reference differs from QKeras on {len(differ)} events, first {differ[:5]}"
    assert 0 < np.mean(trace["relu_0"] == 4 - 2.0**-8) < 0.5  # the relu saturates on some units, not all
