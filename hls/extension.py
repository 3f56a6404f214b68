"""The bit-shift input scaling as an hls4ml layer (hls4ml's extension API).

This module belongs to the hls stage.  It teaches hls4ml the Keras layer
:class:`gelato.model.layers.BitShiftScaling` so that one hls4ml top function maps the raw
L1 input words to the score (shift -> dense/relu -> mu -> sum of squares):

* a Keras v2 layer handler turns the saved layer into an IR layer dict;
* :class:`GelatoBitShift` is the IR layer (one output, the model input type as result);
* a config template writes the ``nnet::bitshift_config`` struct (feature count, the wide
  shift type, the exponent table) and a function template writes the call of
  ``nnet::bitshift_scale`` from ``hls/templates/nnet_bitshift.h``;
* :func:`register_bitshift_extension` registers all of it with the Vitis and Vivado
  backends (once per process; later calls are no-ops).

The arithmetic is described in the header and mirrored exactly by
:func:`shift_input_words` for tests and the emulator's saturation counts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gelato.hls.fixedpoint import FixedType

log = logging.getLogger(__name__)

KERAS_CLASS = "BitShiftScaling"
IR_CLASS = "GelatoBitShift"
HEADER = Path(__file__).parent / "templates" / "nnet_bitshift.h"
BACKENDS = ("Vitis", "Vivado")

_registered = False


def from_hls4ml_precision(precision) -> FixedType:
    """The :class:`FixedType` of an hls4ml ``FixedPrecisionType`` (its str is 'fixed<W,I,RND,SAT,0>')."""
    if getattr(precision, "saturation_bits", None) not in (None, 0):
        raise ValueError(f"{precision}: saturation bits are not supported")
    rounding = getattr(precision, "rounding_mode", None)
    overflow = getattr(precision, "saturation_mode", None)
    return FixedType(
        int(precision.width),
        int(precision.integer),
        bool(precision.signed),
        "AP_" + str(rounding) if rounding is not None else "AP_TRN",
        "AP_" + str(overflow) if overflow is not None else "AP_WRAP",
    )


def shift_type(raw: FixedType, shifts: Sequence[int]) -> FixedType:
    """The wide type in which every raw word is shifted exactly (``shift_t`` in the header)."""
    right = max(0, max(shifts))
    left = max(0, -min(shifts))
    return FixedType(raw.width + right + left, raw.integer + left, signed=True)


def shift_input_words(features: np.ndarray, raw: FixedType, scaled: FixedType, shifts: Sequence[int]) -> np.ndarray:
    """Numpy twin of the firmware: raw cast, exact shift, cast to the model input type.

    Returns float64 values of ``scaled``, shape (N, n_features).
    """
    words = raw.quantize(np.asarray(features, dtype=np.float32).astype(np.float64))
    shifted = np.ldexp(words, -np.asarray(shifts, dtype=np.int64))  # exact: a binary-point move
    return scaled.quantize(shifted)


SHIFT_TABLE = re.compile(r"exponents\[(\d+)\]\s*=\s*\{([^}]*)\}")


def verify_generated_shift_table(parameters_header: Path, shifts: Sequence[int]) -> None:
    """Refuse generated firmware whose exponent table differs from the model's (swapped, reordered, truncated).

    Reads the ``exponents[n] = {...}`` table that the config template wrote into the
    project's ``firmware/parameters.h`` and compares it, feature by feature, with ``shifts``.
    """
    from gelato.features import FEATURE_NAMES
    from gelato.hls.config import PrecisionError

    tables = SHIFT_TABLE.findall(Path(parameters_header).read_text())
    if len(tables) != 1:
        raise PrecisionError(f"{parameters_header}: expected one shift exponent table, found {len(tables)}")
    size, text = tables[0]
    written = [int(v) for v in text.split(",") if v.strip()]
    if int(size) != len(shifts) or len(written) != len(shifts):
        raise PrecisionError(f"{parameters_header}: the exponent table has {len(written)} entries (declared {size}); "
                             f"the model has {len(shifts)}")
    for i, (got, want) in enumerate(zip(written, shifts)):
        if got != int(want):
            name = FEATURE_NAMES[i] if len(shifts) == len(FEATURE_NAMES) else f"feature {i}"
            raise PrecisionError(f"{parameters_header}: shift {i} ({name}) is {got} in the firmware but {want} in the "
                                 f"model: the table was swapped or reordered")


# -- hls4ml IR layer and templates -----------------------------------------------------


def _ir_layer_class():
    import hls4ml

    class GelatoBitShift(hls4ml.model.layers.Layer):
        """hls4ml IR of the per-feature power-of-two scaling (no weights, no multiplier)."""

        _expected_attributes = [
            hls4ml.model.attributes.Attribute("n_in"),
            hls4ml.model.attributes.Attribute("shifts", value_type=list),
        ]

        def initialize(self):
            inp = self.get_input_variable()
            if inp.shape[-1] != len(self.get_attr("shifts")):
                raise ValueError(
                    f"layer {self.name}: {len(self.get_attr('shifts'))} shift exponents for {inp.shape[-1]} inputs"
                )
            self.add_output_variable(inp.shape)

    return GelatoBitShift


def parse_bitshift_layer(keras_layer, input_names, input_shapes, data_reader):
    """Keras v2 handler: the saved BitShiftScaling config -> IR layer dict and output shape."""
    shifts = [int(s) for s in keras_layer["config"]["shifts"]]
    layer = {
        "class_name": IR_CLASS,
        "name": keras_layer["config"]["name"],
        "n_in": int(input_shapes[0][-1]),
        "shifts": shifts,
    }
    if input_names is not None:
        layer["inputs"] = input_names
    return layer, list(input_shapes[0])


CONFIG_TEMPLATE = """struct config{index} : nnet::bitshift_config {{
    static const unsigned n_in = {n_in};
    static const unsigned max_right_shift = {max_right_shift};
    static const unsigned max_left_shift = {max_left_shift};
    typedef {shift_type} shift_t;
    static int shift(unsigned i) {{
        static const int exponents[{n_in}] = {{{shift_table}}};
        return exponents[i];
    }}
}};
"""

FUNCTION_TEMPLATE = "nnet::bitshift_scale<{input_t}, {output_t}, {config}>({input}, {output});"


def _template_classes(ir_class):
    from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate

    class BitShiftConfigTemplate(LayerConfigTemplate):
        def __init__(self):
            super().__init__(ir_class)
            self.template = CONFIG_TEMPLATE

        def format(self, node):
            params = self._default_config_params(node)
            shifts = node.get_attr("shifts")
            raw = from_hls4ml_precision(node.get_input_variable().type.precision)
            params["max_right_shift"] = max(0, max(shifts))
            params["max_left_shift"] = max(0, -min(shifts))
            params["shift_type"] = str(shift_type(raw, shifts))
            params["shift_table"] = ", ".join(str(s) for s in shifts)
            return self.template.format(**params)

    class BitShiftFunctionTemplate(FunctionCallTemplate):
        def __init__(self):
            super().__init__(ir_class, include_header=["nnet_utils/nnet_bitshift.h"])
            self.template = FUNCTION_TEMPLATE

        def format(self, node):
            return self.template.format(**self._default_function_params(node))

    return BitShiftConfigTemplate, BitShiftFunctionTemplate


def register_bitshift_extension() -> None:
    """Register handler, IR layer, templates and header with hls4ml (idempotent)."""
    global _registered
    if _registered:
        return
    import hls4ml

    ir_class = _ir_layer_class()
    hls4ml.converters.register_keras_v2_layer_handler(KERAS_CLASS, parse_bitshift_layer)
    hls4ml.model.layers.register_layer(IR_CLASS, ir_class)

    config_template, function_template = _template_classes(ir_class)
    for backend_name in BACKENDS:
        backend = hls4ml.backends.get_backend(backend_name)
        backend.register_template(config_template)
        backend.register_template(function_template)
        backend.register_source(HEADER)
    _registered = True
    log.debug("registered %s -> %s with hls4ml backends %s", KERAS_CLASS, IR_CLASS, ", ".join(BACKENDS))
