"""An independent integer-arithmetic reference of the firmware, in numpy.

This module belongs to the hls stage and exists to check the other two bit-accurate
paths (the g++ C-simulation and the compiled hls4ml emulation) against arithmetic
written from the config alone: no hls4ml, no QKeras, no C++.  Every value is carried as
an integer code on its type's LSB grid:

    raw word        raw_input.quantize(x)                       (AP_RND_CONV, AP_SAT)
    model input     scaled_input.quantize(word / 2**s)          exact shift, one rounding
    dense           sum_i x_i w_i + b in integer codes           exact (full-width accumulator)
    relu            relu_type.quantize(max(acc, 0))              where QKeras rounds
    mu              latent_mean.quantize(acc)
    score           score.quantize(sum_j score_accum(mu_j**2))   each square and sum in the accumulator type

Weights are quantized here with the QKeras quantizer's fixed-point type (half to even,
saturating), so a disagreement with the emulation also catches a weight-export error.
Batch normalization is not modelled: the firmware model carries it folded into the dense
weights (:mod:`gelato.model.export` folds once), and :func:`gelato.hls.convert.precision_plan`
refuses a model with a separate BatchNormalization layer, so neither path can fold twice.
It supports exactly the GELATO firmware graph checked by ``precision_plan`` and refuses
anything else.

:func:`reference_trace` gives the value of every layer, named as hls4ml names them in its
trace (``bit_shift``, ``dense_0``, ``relu_0``, ..., ``mu``, ``score``), so that a
disagreement can be pinned to the first layer that diverges (:mod:`gelato.hls.trace`).
"""

from __future__ import annotations

import numpy as np

from gelato.hls.config import config_types
from gelato.hls.convert import precision_plan, quantizer_type
from gelato.hls.extension import shift_input_words
from gelato.hls.fixedpoint import FixedType

MAX_EXACT_BITS = 62
FLOAT64_EXACT_BITS = 53
INPUT_LAYER = "l1_objects"


def _exact_integer_matmul(x_codes: np.ndarray, w_codes: np.ndarray) -> np.ndarray:
    """x_codes @ w_codes in int64; through float64 BLAS when every partial sum is below 2**53 (exact)."""
    largest = float(np.abs(x_codes).max(initial=0)) * float(np.abs(w_codes).max(initial=0)) * w_codes.shape[0]
    if largest < 2.0**FLOAT64_EXACT_BITS:
        return (x_codes.astype(np.float64) @ w_codes.astype(np.float64)).astype(np.int64)
    return x_codes @ w_codes


def _dense_codes(x_codes: np.ndarray, x_type: FixedType, layer, accum: FixedType) -> np.ndarray:
    """Integer codes of bias + x @ W on the accumulator's LSB grid (exact in int64).

    Products and bias are moved onto the accumulator's grid by left shifts, as the C++
    casts them into ``accum_t``; an accumulator with fewer fraction bits (which rounds)
    is not modelled.
    """
    kernel, bias = (np.asarray(v, dtype=np.float64) for v in layer.get_weights())
    w_type, b_type = quantizer_type(layer.kernel_quantizer_internal), quantizer_type(layer.bias_quantizer_internal)
    product_shift = accum.fractional - (x_type.fractional + w_type.fractional)
    bias_shift = accum.fractional - b_type.fractional
    if product_shift < 0 or bias_shift < 0:
        raise NotImplementedError(f"layer {layer.name}: accumulator {accum} drops fraction bits of the products or "
                                  f"the bias; the reference models full-width accumulators only")
    if accum.width > MAX_EXACT_BITS:
        raise NotImplementedError(f"layer {layer.name}: accumulator {accum} is wider than int64 can hold exactly")

    sums = _exact_integer_matmul(x_codes, w_type.codes(kernel)) << product_shift
    return sums + (b_type.codes(bias) << bias_shift)


def _values(codes: np.ndarray, fixed: FixedType) -> np.ndarray:
    return np.ldexp(codes.astype(np.float64), -fixed.fractional)


def reference_trace(keras_model, config: dict, features: np.ndarray) -> dict[str, np.ndarray]:
    """Every layer's output (float64 values of its fixed-point type), in dataflow order.

    Keys: the input layer (raw words), ``bit_shift``, each QDense and QActivation by its
    Keras name, and the Dot layer (score, shape (N, 1)), as hls4ml's trace names them.
    """
    plan = precision_plan(config, keras_model)
    types = config_types(config)
    trace = {INPUT_LAYER: types["raw_input"].quantize(np.asarray(features, dtype=np.float32).astype(np.float64))}
    current_type = types["scaled_input"]
    codes = current_type.codes(shift_input_words(features, types["raw_input"], current_type, plan.shifts))

    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "BitShiftScaling":
            trace[layer.name] = _values(codes, current_type)
        elif kind == "QDense":
            accum = plan.layer_types[layer.name]["accum"]
            acc = _values(_dense_codes(codes, current_type, layer, accum), accum)
            current_type = plan.layer_types[layer.name]["result"]
            codes = current_type.codes(acc)
            trace[layer.name] = _values(codes, current_type)
        elif kind == "QActivation":
            current_type = plan.layer_types[layer.name]["result"]
            codes = current_type.codes(np.maximum(trace[_previous(trace)], 0.0))
            trace[layer.name] = _values(codes, current_type)
        elif kind == "Dot":
            trace[layer.name] = _score(codes, current_type, types["score_accum"], types["score"])[:, np.newaxis]
    return trace


def _previous(trace: dict[str, np.ndarray]) -> str:
    return next(reversed(trace))


def _score(latent_codes: np.ndarray, latent_type: FixedType, accum: FixedType, score_type: FixedType) -> np.ndarray:
    """sum_j mu_j**2 as nnet::dot1d does it: each square and each partial sum cast to ``accum``, then to the score.

    The squares are formed exactly in int64; the casts apply the accumulator's own rounding
    and overflow modes (a narrow accumulator would wrap here exactly as in the C++).
    """
    n_latent = latent_codes.shape[1]
    if 2 * latent_type.width + max(1, n_latent).bit_length() > FLOAT64_EXACT_BITS:
        raise NotImplementedError(f"latent_mean {latent_type}: {n_latent} squares are too wide for exact float64 sums")
    squares = _values(latent_codes * latent_codes, FixedType(2 * latent_type.width, 2 * latent_type.integer))
    total = np.zeros(len(latent_codes))
    for j in range(n_latent):
        total = accum.quantize(total + accum.quantize(squares[:, j]))
    return score_type.quantize(total)


def reference_scores(keras_model, config: dict, features: np.ndarray) -> np.ndarray:
    """Firmware scores (N,) float64 computed with integer codes; see the module docstring."""
    trace = reference_trace(keras_model, config, features)
    return trace[_previous(trace)][:, 0]
