"""The fast scorer's C++ kernel: exactness proof and code generation from the hls4ml model.

This module belongs to the hls stage.  It walks the layers of the converted hls4ml model
(the same IR, types and quantized weights the firmware C++ is written from) and writes a
kernel that computes every fixed-point value as its integer code (value / LSB) in a native
``double`` or ``float``, from ``hls/templates/gelato_fast.cpp``.  The arithmetic is exact
because the generator proves, layer by layer with interval arithmetic on the codes, that

* every accumulator holds its products without dropping a fraction bit, so a dense layer is
  ``bias + sum_i x_i w_i`` in integer units of the accumulator LSB;
* every code, product and partial sum stays below 2**51 (``double``) or 2**23 (``float``,
  chosen where it suffices because it is twice as wide per SIMD register), so each multiply,
  add and FMA on these integers is exact in any order;
* every cast that can leave its type's range saturates (a clamp); wrap-around is refused.

A cast to fewer fraction bits multiplies by a power of two (exact) and rounds with the
type's quantization mode (``AP_TRN`` floor, ``AP_TRN_ZERO`` trunc, ``AP_RND`` floor(x + 1/2),
``AP_RND_CONV`` rint under round-to-nearest-even).  What it cannot model exactly raises
:class:`FastKernelRefused` (a ``NotImplementedError``) naming the layer, what was found and
what is needed; :mod:`gelato.hls.fastscore` builds and runs the kernel.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gelato.hls.extension import IR_CLASS, from_hls4ml_precision
from gelato.hls.fixedpoint import FixedType

log = logging.getLogger(__name__)

TEMPLATE = Path(__file__).parent / "templates" / "gelato_fast.cpp"
EXACT_CODE_LIMIT = {"float": 2**23, "double": 2**51}
COLUMN_BLOCK = 4  # column_block in the template
ROUNDING = {"AP_TRN": "trn", "AP_TRN_ZERO": "trn_zero", "AP_RND": "rnd", "AP_RND_CONV": "rnd_conv"}


INPUT_CONFIG = """static const unsigned n_features = {n_features};
struct input_config {{
    static const unsigned n_in = n_features;
    static constexpr double raw_scale = {raw_scale}; // raw_input {raw}
    static const int raw_rounding = {raw_rounding};
    static constexpr double raw_min_code = {raw_min}, raw_max_code = {raw_max};
    static constexpr double shift_scale[n_features] = {{{shift_scales}}}; // 2**-s times the LSB ratio
    static const int scaled_rounding = {scaled_rounding}; // scaled_input {scaled}
    static constexpr double scaled_min_code = {scaled_min}, scaled_max_code = {scaled_max};
}};
"""


class FastKernelRefused(NotImplementedError):
    """The firmware uses arithmetic the fast scorer cannot reproduce exactly (the reason is in the message)."""


@dataclass(frozen=True)
class Codes:
    """What the generator knows about one array of codes: grid, proven range, C++ type and name."""

    fractional: int
    low: int
    high: int
    arithmetic: str
    array: str
    size: int

    @property
    def magnitude(self) -> int:
        return max(abs(self.low), abs(self.high))


def _round_code(scaled: float, rounding: str) -> int:
    """One value rounded as ap_fixed's quantization mode does (for the range proofs)."""
    if rounding == "AP_TRN":
        return math.floor(scaled)
    if rounding == "AP_TRN_ZERO":
        return math.trunc(scaled)
    if rounding == "AP_RND":
        return math.floor(scaled + 0.5)
    return round(scaled)  # half to even


def _literal(value: float, arithmetic: str) -> str:
    text = repr(float(value))
    return text + "f" if arithmetic == "float" else text


def _table(values: np.ndarray, arithmetic: str) -> str:
    return ", ".join(_literal(v, arithmetic) for v in np.asarray(values, dtype=np.float64).ravel())


def _fixed(precision) -> FixedType:
    return from_hls4ml_precision(precision)


class KernelWriter:
    """Walks the hls4ml layers once, proving exactness and collecting the C++ pieces."""

    def __init__(self) -> None:
        self.config: list[str] = []
        self.layers: list[str] = []
        self.codes: dict[str, Codes] = {}
        self.n_features = 0
        self.raw: FixedType | None = None
        self.score: Codes | None = None

    # -- one step per hls4ml layer kind ----------------------------------------------------

    def input_layer(self, layer) -> None:
        raw = _fixed(layer.get_output_variable().type.precision)
        if raw.overflow != "AP_SAT":
            raise FastKernelRefused(f"input {layer.name}: {raw} wraps on overflow; the fast scorer needs AP_SAT")
        self.n_features = int(layer.get_output_variable().size())
        self.raw = raw
        self._arithmetic(layer.name, max(-raw.min_code, raw.max_code), ("double",))
        self.codes[layer.outputs[0]] = Codes(raw.fractional, raw.min_code, raw.max_code, "double", "raw", 0)

    def bitshift_layer(self, layer) -> None:
        raw_codes = self.codes[layer.inputs[0]]
        scaled = _fixed(layer.get_output_variable().type.precision)
        shifts = [int(s) for s in layer.get_attr("shifts")]
        if scaled.overflow != "AP_SAT":
            raise FastKernelRefused(f"layer {layer.name}: {scaled} wraps on overflow; the fast scorer needs AP_SAT")
        if len(shifts) != self.n_features:
            raise FastKernelRefused(f"layer {layer.name}: {len(shifts)} shifts for {self.n_features} inputs")
        scales = [math.ldexp(1.0, scaled.fractional - raw_codes.fractional - s) for s in shifts]
        self._arithmetic(layer.name, raw_codes.magnitude * int(max(1.0, max(scales))), ("double",))
        self._arithmetic(layer.name, max(-scaled.min_code, scaled.max_code), ("double",))
        raw = self.raw
        self.config.append(INPUT_CONFIG.format(
            n_features=self.n_features, raw=raw, raw_scale=_literal(math.ldexp(1.0, raw.fractional), "double"),
            raw_rounding=ROUNDING[raw.rounding], raw_min=_literal(raw.min_code, "double"),
            raw_max=_literal(raw.max_code, "double"), shift_scales=_table(np.array(scales), "double"),
            scaled=scaled, scaled_rounding=ROUNDING[scaled.rounding], scaled_min=_literal(scaled.min_code, "double"),
            scaled_max=_literal(scaled.max_code, "double"),
        ))  # fmt: skip
        self.layers.append(f"    double poison[lanes] = {{}};\n    double scaled[{self.n_features}][lanes];\n"
                           "    input_codes<input_config>(features, scaled, poison);")
        self.codes[layer.outputs[0]] = Codes(scaled.fractional, scaled.min_code, scaled.max_code, "double",
                                             "scaled", self.n_features)

    def dense_layer(self, layer) -> None:
        data = self.codes[layer.inputs[0]]
        weight_var, bias_var = layer.weights["weight"], layer.weights["bias"]
        weight_type, bias_type = _fixed(weight_var.type.precision), _fixed(bias_var.type.precision)
        accum = _fixed(layer.get_attr("accum_t").precision)
        product_fraction = data.fractional + weight_type.fractional
        if accum.fractional < product_fraction or accum.fractional < bias_type.fractional:
            raise FastKernelRefused(
                f"layer {layer.name}: accumulator {accum} has {accum.fractional} fraction bits but the products need "
                f"{product_fraction} and the bias {bias_type.fractional}: the firmware truncates them; the fast "
                f"scorer models only exact (full-width) accumulators")

        n_out = int(layer.get_attr("n_out"))
        weights = weight_type.codes(np.asarray(weight_var.data, np.float64)).reshape(data.size, n_out)
        weights = weights * float(2 ** (accum.fractional - product_fraction))
        biases = bias_type.codes(np.asarray(bias_var.data, np.float64))
        biases = biases * float(2 ** (accum.fractional - bias_type.fractional))
        low, high, bound = self._dense_range(data, weights, biases)
        padded = -(-n_out // COLUMN_BLOCK) * COLUMN_BLOCK
        weights = np.pad(weights, ((0, 0), (0, padded - n_out)))
        biases = np.pad(biases, (0, padded - n_out))
        self._check_accumulator(layer.name, accum, low, high)
        arithmetic = self._arithmetic(layer.name, max(bound, data.magnitude))

        self.config.append(
            f"struct {layer.name}_config {{ // accum {accum}, weights {weight_type}, biases {bias_type}\n"
            f"    typedef {arithmetic} accum_t;\n"
            f"    static const unsigned n_in = {data.size}, n_out = {n_out}, n_out_padded = {padded};\n"
            f"    static constexpr accum_t weights[{weights.size}] = {{{_table(weights, arithmetic)}}};\n"
            f"    static constexpr accum_t biases[{padded}] = {{{_table(biases, arithmetic)}}};\n}};\n")
        self.layers.append(f"    {arithmetic} {layer.name}[{padded}][lanes];\n"
                           f"    dense_codes<{data.arithmetic}, {layer.name}_config>({data.array}, {layer.name});")
        codes = Codes(accum.fractional, low, high, arithmetic, layer.name, n_out)
        result = _fixed(layer.get_output_variable().type.precision)
        self.codes[layer.outputs[0]] = self._cast(f"{layer.name}_result", codes, result)

    def activation_layer(self, layer) -> None:
        data = self.codes[layer.inputs[0]]
        activation = layer.get_attr("activation")
        if activation == "relu":
            self.layers.append(f"    relu_codes<{data.arithmetic}, {data.size}>({data.array});")
            data = Codes(data.fractional, max(data.low, 0), max(data.high, 0), data.arithmetic, data.array, data.size)
        elif activation != "linear":
            raise FastKernelRefused(f"layer {layer.name}: activation {activation!r}; the fast scorer has relu, linear")
        self.codes[layer.outputs[0]] = self._cast(layer.name, data, _fixed(layer.get_output_variable().type.precision))

    def dot_layer(self, layer) -> None:
        if len(set(layer.inputs)) != 1:
            raise FastKernelRefused(f"layer {layer.name}: Dot of two different vectors; the score is mu . mu")
        data = self.codes[layer.inputs[0]]
        accum = _fixed(layer.get_attr("accum_t").precision)
        if accum.fractional < 2 * data.fractional:
            raise FastKernelRefused(f"layer {layer.name}: accumulator {accum} drops fraction bits of the squares "
                                    f"({2 * data.fractional} needed); the fast scorer models only exact accumulators")
        scale = 2 ** (accum.fractional - 2 * data.fractional)
        high = data.size * data.magnitude**2 * scale
        self._check_accumulator(layer.name, accum, 0, high)
        self._arithmetic(layer.name, high, allowed=("double",))

        self.config.append(f"struct {layer.name}_config {{ // accum {accum}\n"
                           f"    static const unsigned n_in = {data.size};\n"
                           f"    static constexpr double scale = {_literal(scale, 'double')};\n}};\n")
        self.layers.append(f"    double {layer.name}[1][lanes];\n"
                           f"    dot_codes<{data.arithmetic}, {layer.name}_config>({data.array}, {layer.name});")
        codes = Codes(accum.fractional, 0, high, "double", layer.name, 1)
        self.codes[layer.outputs[0]] = self._cast(layer.name, codes, _fixed(layer.get_output_variable().type.precision))
        self.score = self.codes[layer.outputs[0]]

    # -- proofs and casts ---------------------------------------------------------------

    @staticmethod
    def _dense_range(data: Codes, weights: np.ndarray, biases: np.ndarray) -> tuple[int, int, int]:
        """Per-output extremes of bias + sum x w over the input range, and a bound on every partial sum."""
        ends = np.stack([weights * data.low, weights * data.high])  # exact: both < 2**53 when the bound holds
        low = biases + ends.min(axis=0).sum(axis=0)
        high = biases + ends.max(axis=0).sum(axis=0)
        bound = np.abs(biases) + np.abs(ends).max(axis=0).sum(axis=0)
        return int(low.min()), int(high.max()), int(bound.max())

    @staticmethod
    def _check_accumulator(name: str, accum: FixedType, low: int, high: int) -> None:
        if low < accum.min_code or high > accum.max_code:
            raise FastKernelRefused(
                f"layer {name}: the sum reaches [{math.ldexp(low, -accum.fractional)}, "
                f"{math.ldexp(high, -accum.fractional)}] but accumulator {accum} holds [{accum.min_value}, "
                f"{accum.max_value}]; it would wrap, which the fast scorer does not model")

    @staticmethod
    def _arithmetic(name: str, magnitude: int, allowed: tuple[str, ...] = ("float", "double")) -> str:
        for arithmetic in allowed:
            if magnitude <= EXACT_CODE_LIMIT[arithmetic]:
                return arithmetic
        widest = allowed[-1]
        raise FastKernelRefused(f"layer {name}: codes reach {magnitude} (2**{math.log2(magnitude):.1f}), beyond "
                                f"2**{math.log2(EXACT_CODE_LIMIT[widest]):.0f} where {widest} arithmetic stops "
                                f"being exact; the fast scorer cannot model it")

    def _cast(self, name: str, data: Codes, target: FixedType) -> Codes:
        """Emit the cast of ``data`` to ``target`` (nothing when it is the identity) and return the new codes."""
        shift = target.fractional - data.fractional
        low = _round_code(math.ldexp(data.low, shift), target.rounding)
        high = _round_code(math.ldexp(data.high, shift), target.rounding)
        saturate = low < target.min_code or high > target.max_code
        if saturate and target.overflow != "AP_SAT":
            raise FastKernelRefused(f"{name}: values reach [{math.ldexp(low, -target.fractional)}, "
                                    f"{math.ldexp(high, -target.fractional)}], outside {target}, which wraps "
                                    f"({target.overflow}); the fast scorer models saturation only")
        self._arithmetic(name, max(abs(low), abs(high), data.magnitude * 2 ** max(shift, 0)), (data.arithmetic,))
        if shift == 0 and not saturate:
            return data

        self.config.append(
            f"struct {name}_cast {{ // to {target}\n"
            f"    static const unsigned n = {data.size};\n"
            f"    static constexpr double scale = {_literal(math.ldexp(1.0, shift), 'double')};\n"
            f"    static const int rounding = {ROUNDING[target.rounding]};\n"
            f"    static const bool saturate = {'true' if saturate else 'false'};\n"
            f"    static constexpr double min_code = {_literal(target.min_code, 'double')}, "
            f"max_code = {_literal(target.max_code, 'double')};\n}};\n")
        self.layers.append(f"    cast_codes<{data.arithmetic}, {name}_cast>({data.array});")
        low, high = max(low, target.min_code), min(high, target.max_code)
        return Codes(target.fractional, low, high, data.arithmetic, data.array, data.size)


def kernel_source(hls_model) -> str:
    """The C++ source of the fast scorer for ``hls_model``; :class:`FastKernelRefused` if not exact."""
    writer = KernelWriter()
    steps = {"Input": writer.input_layer, IR_CLASS: writer.bitshift_layer, "Dense": writer.dense_layer,
             "Activation": writer.activation_layer, "Dot": writer.dot_layer}
    layers = list(hls_model.get_layers())
    kinds = [layer.class_name for layer in layers]
    if kinds[:2] != ["Input", IR_CLASS] or kinds[-1] != "Dot" or "Dot" in kinds[:-1]:
        raise FastKernelRefused(f"the fast scorer needs the GELATO graph Input -> {IR_CLASS} -> ... -> Dot, "
                                f"got {' -> '.join(kinds)}")
    for layer in layers:
        if layer.class_name not in steps:
            raise FastKernelRefused(f"layer {layer.name}: {layer.class_name} is not a layer the fast scorer knows "
                                    f"({', '.join(steps)})")
        steps[layer.class_name](layer)

    score = writer.score
    lsb = _literal(math.ldexp(1.0, -score.fractional), "double")
    writer.layers.append(f"    for (unsigned b = 0; b < lanes; b++) {{\n"
                         f"        scores[b] = {score.array}[0][b] * {lsb} + poison[b]; // NaN if not finite\n    }}")
    source = TEMPLATE.read_text().replace("@CONFIG@", "\n".join(writer.config))
    return source.replace("@LAYERS@", "\n".join(writer.layers))
