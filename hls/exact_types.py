"""The narrowest exact fixed-point types for a firmware model (hls stage).

:func:`gelato.hls.convert.precision_plan` checks the types a config gives; this module
proposes them.  :func:`exact_precisions` walks the firmware model and sets every type
after the model input to the narrowest one that never rounds and never overflows for
any value the input, weight and bias types allow:

* each dense accumulator (and result) at full width: the products' fraction bits and
  the integer bits of n_in products plus the bias (at least input width + weight width
  + ceil(log2 n_in) bits, one more where the bias needs it);
* each relu result exactly the QKeras quantizer's type (rounding happens there, as in
  QKeras);
* the latent mean as the last accumulator, the score accumulator and the score wide
  enough for the largest sum of squares.

It is used to make configs for models of other sizes and precisions (the property tests
of ``firmware_tests/``) and as the answer to "which types are safe" for a new model.
"""

from __future__ import annotations

import copy

from gelato.hls.config import DenseSpec, config_types, full_width_accumulator, score_range
from gelato.hls.convert import quantizer_type
from gelato.hls.fixedpoint import FixedType, bits_for_range, product_type


def exact_precisions(config: dict, keras_model) -> dict:
    """A copy of ``config`` whose layer, latent and score types are the narrowest exact ones."""
    types = config_types(config)
    current, layers, latent = types["scaled_input"], {}, None
    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "QDense":
            weight_type = quantizer_type(layer.kernel_quantizer_internal)
            bias_type = quantizer_type(layer.bias_quantizer_internal)
            accum = full_width_accumulator(DenseSpec(layer.name, int(layer.input_shape[-1]), current, weight_type,
                                                     bias_type))
            layers[layer.name] = {"accum": str(accum), "result": str(accum)}
            current = latent = accum
        elif kind == "QActivation":
            current = quantizer_type(layer.quantizer)
            layers[layer.name] = {"result": str(current)}

    exact = copy.deepcopy(config)
    last = list(layers)[-1]
    layers[last] = {"accum": layers[last]["accum"]}  # the latent mean is the last accumulator itself
    exact["precision"]["layers"] = layers
    exact["precision"].update(latent_mean=str(latent), **_score_types(latent, _n_latent(keras_model)))
    return exact


def _n_latent(keras_model) -> int:
    dense = [layer for layer in keras_model.layers if type(layer).__name__ == "QDense"]
    return int(dense[-1].units)


def _score_types(latent: FixedType, n_latent: int) -> dict[str, str]:
    highest = score_range(latent, n_latent)
    fraction = product_type(latent, latent).fractional
    return {"score_accum": str(bits_for_range(0.0, highest, fraction, signed=True)),
            "score": str(bits_for_range(0.0, highest, fraction, signed=False))}
