"""Property-based tests (hypothesis): over random small models and precisions, the implementations agree.

Two properties:

* the integer reference equals the QKeras model (TensorFlow, float32) at every dense,
  relu and mu output, for any quantizers, whenever the inputs and types keep float32
  exact (every accumulator at most 24 bits wide): no compilation, many examples;
* the integer reference, the compiled emulation and the g++ C-simulation agree on every
  event for random models, quantizers and model-input types: each example converts and
  compiles an hls4ml project (tens of seconds), so ``make test`` runs one fixed example
  and the slow suite explores more.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_paths_identical, edge_events, small_firmware, three_path_scores
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from gelato.features import N_FEATURES, SEED_SHIFTS
from gelato.hls.config import DenseSpec, full_width_accumulator
from gelato.hls.fixedpoint import FixedType
from gelato.model.firmware import FirmwareQuantizers

FLOAT32_MANTISSA_BITS = 24
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)  # each example builds a model: report, do not shrink


@st.composite
def quantizers(draw) -> FirmwareQuantizers:
    kernel_bits, bias_bits, relu_bits = draw(st.integers(3, 8)), draw(st.integers(4, 12)), draw(st.integers(4, 10))
    kernel_integer = draw(st.integers(0, min(2, kernel_bits - 2)))
    bias_integer = draw(st.integers(0, min(4, bias_bits - 2)))
    relu_integer = draw(st.integers(1, min(4, relu_bits - 1)))
    return FirmwareQuantizers(kernel=f"quantized_bits({kernel_bits},{kernel_integer},alpha=1)",
                              bias=f"quantized_bits({bias_bits},{bias_integer},alpha=1)",
                              activation=f"quantized_relu({relu_bits},{relu_integer})")  # fmt: skip


architectures = st.tuples(st.lists(st.integers(2, 8), min_size=1, max_size=2), st.integers(1, 3))


def _float32_exact(model, input_type: FixedType) -> bool:
    """True when every dense sum of the model fits 24 bits, so float32 computes it exactly."""
    from gelato.hls.convert import quantizer_type

    current = input_type
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "QDense":
            weight_type = quantizer_type(layer.kernel_quantizer_internal)
            spec = DenseSpec(layer.name, int(layer.input_shape[-1]), current, weight_type,
                             quantizer_type(layer.bias_quantizer_internal))
            current = full_width_accumulator(spec)
            if current.width > FLOAT32_MANTISSA_BITS:
                return False
        elif kind == "QActivation":
            current = quantizer_type(layer.quantizer)
    return True


@settings(max_examples=15, deadline=None, derandomize=True, phases=NO_SHRINK,
          suppress_health_check=[HealthCheck.too_slow])
@given(quantizers(), architectures, st.integers(2, 6), st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_reference_equals_qkeras_at_every_layer_where_float32_is_exact(quant, architecture, fraction, integer, seed):
    import tensorflow as tf

    from gelato.hls.config import load_hls_config
    from gelato.hls.exact_types import exact_precisions
    from gelato.hls.reference import reference_trace
    from gelato.model.firmware import build_firmware_model

    hidden, latent = architecture
    model = build_firmware_model(SEED_SHIFTS, quant, hidden, latent)
    assume(_float32_exact(model, FixedType(fraction + integer + 1, integer + 1)))  # the inputs' own grid and range
    rng = np.random.default_rng(seed)
    for layer in (layer for layer in model.layers if type(layer).__name__ == "QDense"):
        layer.set_weights([rng.uniform(-4, 4, w.shape).astype(np.float32) for w in layer.get_weights()])

    # model inputs on the 2**-fraction grid inside +-2**integer, as raw words (exact after any seed shift)
    scaled = rng.integers(-(2 ** (integer + fraction)), 2 ** (integer + fraction), (300, N_FEATURES)) / 2.0**fraction
    events = (scaled * 2.0 ** np.asarray(SEED_SHIFTS)).astype(np.float32)
    trace = reference_trace(model, exact_precisions(load_hls_config(), model), events)
    for name in [layer.name for layer in model.layers if type(layer).__name__ in ("QDense", "QActivation")]:
        qkeras = tf.keras.Model(model.input, model.get_layer(name).output)(events).numpy().astype(np.float64)
        differ = np.flatnonzero((qkeras != trace[name]).any(axis=1))
        assert len(differ) == 0, f"{quant} {architecture}: {name} differs from QKeras on events {differ[:5]}"


def _three_paths_agree(quant: FirmwareQuantizers, architecture, scaled_input: str, seed: int) -> None:
    from gelato.hls.input_sets import input_sets

    hidden, latent = architecture
    with tempfile.TemporaryDirectory(prefix="gelato-property-") as work:
        emulator = small_firmware(Path(work), quantizers=quant, hidden_units=hidden, latent_dim=latent,
                                  scaled_input=scaled_input, seed=seed)  # fmt: skip
        generated = input_sets(1500, emulator.raw_type, emulator.scaled_type, emulator.shifts, seed)
        events = np.concatenate([edge_events(n_random=300, seed=seed), *generated.values()])
        scores = three_path_scores(emulator, events)
    assert_paths_identical(scores, f"{quant}, hidden {hidden}, latent {latent}, scaled_input {scaled_input}")
    assert len(np.unique(scores["emulation"])) > 10  # the model is not trivially constant


scaled_inputs = st.builds(lambda integer, fraction: f"ap_fixed<{integer + fraction},{integer},AP_RND_CONV,AP_SAT>",
                          st.integers(8, 11), st.integers(8, 14))


@settings(max_examples=1, deadline=None, derandomize=True, phases=NO_SHRINK,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(quantizers(), architectures, scaled_inputs, st.integers(0, 2**31 - 1))
def test_reference_emulation_and_csim_agree_for_a_random_small_model(quant, architecture, scaled_input, seed):
    _three_paths_agree(quant, architecture, scaled_input, seed)


@pytest.mark.slow
@settings(max_examples=6, deadline=None, phases=NO_SHRINK, suppress_health_check=[HealthCheck.too_slow])
@given(quantizers(), architectures, scaled_inputs, st.integers(0, 2**31 - 1))
def test_reference_emulation_and_csim_agree_for_random_small_models(quant, architecture, scaled_input, seed):
    _three_paths_agree(quant, architecture, scaled_input, seed)
