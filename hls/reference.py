"""An independent integer-arithmetic reference of the firmware, in numpy.

This module belongs to the hls stage and exists to check the other two bit-accurate
paths (the g++ C-simulation and the compiled hls4ml emulation) against arithmetic
written from the config alone: no hls4ml, no QKeras, no C++.  Every value is carried as
an int64 code on its type's LSB grid:

    raw word        raw_input.quantize(x)                       (AP_RND_CONV, AP_SAT)
    model input     scaled_input.quantize(word / 2**s)          exact shift, one rounding
    dense           sum_i x_i w_i + b in integer codes           exact (full-width accumulator)
    relu            relu_type.quantize(max(acc, 0))              where QKeras rounds
    mu              latent_mean.quantize(acc)
    score           score.quantize(sum_j mu_j**2)

Weights are quantized here with the QKeras quantizer's fixed-point type (half to even,
saturating), so a disagreement with the emulation also catches a weight-export error.
It supports exactly the GELATO firmware graph checked by
:func:`gelato.hls.convert.precision_plan` and refuses anything else.
"""

from __future__ import annotations

import numpy as np

from gelato.hls.config import config_types
from gelato.hls.convert import precision_plan, quantizer_type
from gelato.hls.extension import shift_input_words
from gelato.hls.fixedpoint import FixedType

MAX_EXACT_BITS = 62


def _dense_codes(x_codes: np.ndarray, x_type: FixedType, layer, accum: FixedType) -> np.ndarray:
    """Integer codes of bias + x @ W on the accumulator's LSB grid (exact in int64)."""
    kernel, bias = (np.asarray(v, dtype=np.float64) for v in layer.get_weights())
    w_type, b_type = quantizer_type(layer.kernel_quantizer_internal), quantizer_type(layer.bias_quantizer_internal)
    product_fraction = x_type.fractional + w_type.fractional
    if product_fraction < b_type.fractional or accum.fractional != product_fraction:
        raise NotImplementedError(f"layer {layer.name}: the reference needs a full-width accumulator ({accum} given)")
    if accum.width > MAX_EXACT_BITS:
        raise NotImplementedError(f"layer {layer.name}: accumulator {accum} is wider than int64 can hold exactly")

    sums = x_codes @ w_type.codes(kernel)
    return sums + (b_type.codes(bias) << (product_fraction - b_type.fractional))


def reference_scores(keras_model, config: dict, features: np.ndarray) -> np.ndarray:
    """Firmware scores (N,) float64 computed with integer codes; see the module docstring."""
    plan = precision_plan(config, keras_model)
    types = config_types(config)
    values = shift_input_words(features, types["raw_input"], types["scaled_input"], plan.shifts)
    current_type = types["scaled_input"]
    codes = current_type.codes(values)

    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "QDense":
            accum = plan.layer_types[layer.name]["accum"]
            acc = np.ldexp(_dense_codes(codes, current_type, layer, accum).astype(np.float64), -accum.fractional)
            current_type = plan.layer_types[layer.name]["result"]
            codes = current_type.codes(acc)
        elif kind == "QActivation":
            current = np.ldexp(codes.astype(np.float64), -current_type.fractional)
            current_type = plan.layer_types[layer.name]["result"]
            codes = current_type.codes(np.maximum(current, 0.0))

    if current_type.width > 31:
        raise NotImplementedError(f"latent_mean {current_type} is too wide for exact int64 squares")
    squares = (codes * codes).sum(axis=1)  # exact: |code| < 2**30, three squares < 2**62
    score = np.ldexp(squares.astype(np.float64), -2 * current_type.fractional)
    return types["score"].quantize(score)
