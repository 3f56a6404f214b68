"""Register-transfer-level firmware of the GELATO encoder, made with da4ml (open-source path).

This module belongs to the hls stage. It writes Verilog for the same fixed-point network
that hls4ml compiles (the config's types, the Keras model's quantized weights), but
without HLS: da4ml traces the arithmetic symbolically and solves every constant matrix
as a multiplier-free adder graph (distributed arithmetic), then cuts it into pipeline
stages of at most ``adders_per_clock`` adder levels each.

What da4ml expresses, and how every cast stays bit-exact with ``ap_fixed``:

    raw word (input port)        ap_fixed<24,13>: the words the L1 objects arrive in
    x / 2**s                     a binary-point move, no logic
    cast to scaled_input         AP_RND_CONV + AP_SAT, see :func:`cast`
    dense (QDense)               exact sum of constant products: adder graph
    quantized_relu               relu, then AP_RND_CONV + AP_SAT cast
    mu                           exact (full-width accumulator)

da4ml rounds only by truncation or half-up. Round-half-to-even is built from its
primitives with the usual hardware identity

    round_conv(x, f) = floor(x + 2**-(f+1) - 2**-F + b_f * 2**-F)

where ``F`` is the fraction width of ``x`` and ``b_f`` the bit of weight ``2**-f`` (the
LSB kept): below a tie nothing carries, above a tie the carry rounds up, and at an
exact tie the carry happens only when the kept LSB is odd, i.e. towards even.

The score (three squares of the 23-bit latent means and their sum) is not left to
da4ml: its variable x variable product is one atomic operation of 23 adder levels,
longer than any pipeline stage, so :mod:`gelato.hls.rtl_top` writes that stage as plain
Verilog registers around da4ml's output. This module does not run simulators or
synthesis (see :mod:`gelato.hls.verilator_sim`, :mod:`gelato.hls.yosys_synth`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gelato.hls.config import config_types, file_digest, load_hls_config
from gelato.hls.convert import precision_plan, quantizer_type
from gelato.hls.fixedpoint import FixedType

log = logging.getLogger(__name__)

DEFAULT_ADDERS_PER_CLOCK = 5
"""Adder levels per pipeline stage at 6.25 ns. An UltraScale+ -2 carry-chain adder of
~30 bits plus routing takes ~1.1-1.3 ns, so five levels fill a 160 MHz clock; this is an
estimate (no place-and-route here), stated in every report."""


def da4ml_kif(fixed: FixedType) -> tuple[int, int, int]:
    """(sign, integer bits without sign, fraction bits) of an ap_fixed type: da4ml's kif."""
    sign = int(fixed.signed)
    return sign, fixed.integer - sign, fixed.fractional


def _round_half_even(value, fraction_bits: int):
    """Round a traced da4ml variable to ``fraction_bits`` with ties to even (AP_RND_CONV)."""
    _, _, value_fraction = value.kif
    if value_fraction <= fraction_bits:
        return value

    kept_lsb = value.quantize(False, 1 - fraction_bits, fraction_bits, "WRAP", "TRN")
    offset = 2.0 ** (-fraction_bits - 1) - 2.0 ** (-value_fraction)
    nudged = value + offset + kept_lsb * 2.0 ** (fraction_bits - value_fraction)
    sign, integer, _ = nudged.kif
    return nudged.quantize(sign, integer, fraction_bits, "WRAP", "TRN")


def cast(value, fixed: FixedType):
    """The ``ap_fixed`` cast of one traced variable to ``fixed``: rounding, then overflow."""
    sign, integer, fraction = da4ml_kif(fixed)
    if fixed.rounding == "AP_RND_CONV":
        value = _round_half_even(value, fraction)
        rounding = "TRN"
    elif fixed.rounding == "AP_RND":
        rounding = "RND"
    elif fixed.rounding == "AP_TRN":
        rounding = "TRN"
    else:
        raise NotImplementedError(f"{fixed}: rounding {fixed.rounding} has no da4ml form here")

    overflow = {"AP_SAT": "SAT", "AP_WRAP": "WRAP"}.get(fixed.overflow)
    if overflow is None:
        raise NotImplementedError(f"{fixed}: overflow {fixed.overflow} has no da4ml form here")
    return value.quantize(sign, integer, fraction, overflow, rounding)


def _cast_array(values, fixed: FixedType):
    from da4ml.trace import FixedVariableArray

    flat = [cast(v, fixed) for v in values._vars.ravel()]
    return FixedVariableArray(np.array(flat).reshape(values.shape), values.solver_options)


def _dense(values, layer):
    """Exact ``x @ W + b`` with the QKeras-quantized kernel and bias (adder graph)."""
    kernel, bias = (np.asarray(v, dtype=np.float64) for v in layer.get_weights())
    kernel = quantizer_type(layer.kernel_quantizer_internal).quantize(kernel)
    bias = quantizer_type(layer.bias_quantizer_internal).quantize(bias)
    return values @ kernel + bias


@dataclass
class TracedEncoder:
    """da4ml combinational logic from raw input words to the latent means, and its I/O types."""

    comb: object
    raw_input: FixedType
    latent_mean: FixedType
    score: FixedType
    score_accum: FixedType
    n_inputs: int
    n_latent: int
    seconds: float


def trace_encoder(keras_model, config: dict) -> TracedEncoder:
    """Trace raw words -> shift -> dense/relu -> mu with da4ml (minutes for 44 x 32)."""
    from da4ml.trace import FixedVariableArray, HWConfig, comb_trace

    plan = precision_plan(config, keras_model)
    types = config_types(config)
    start = time.monotonic()

    n_inputs = len(plan.shifts)
    sign, integer, fraction = da4ml_kif(types["raw_input"])
    words = FixedVariableArray.from_kif(np.full(n_inputs, sign), np.full(n_inputs, integer),
                                        np.full(n_inputs, fraction), hwconf=HWConfig(1, -1, -1))
    values = words * 2.0 ** -np.asarray(plan.shifts, dtype=np.float64)
    values = _cast_array(values, types["scaled_input"])

    for layer in keras_model.layers:
        kind = type(layer).__name__
        if kind == "QDense":
            values = _dense(values, layer)
            log.info("traced %s (%.0f s so far)", layer.name, time.monotonic() - start)
        elif kind == "QActivation":
            values = _cast_array(values.relu(), plan.layer_types[layer.name]["result"])
    latent = _cast_array(values, types["latent_mean"])

    comb = comb_trace(words, latent)
    return TracedEncoder(comb, types["raw_input"], types["latent_mean"], types["score"], types["score_accum"],
                         n_inputs, latent.shape[0], time.monotonic() - start)


def trace_digest(model_path: Path, config_path: Path) -> str:
    """Identity of a trace: model and config contents plus the da4ml version."""
    import da4ml

    return f"{file_digest(model_path)}:{file_digest(config_path)}:da4ml-{da4ml.__version__}"


def load_or_trace(model_path: Path, config_path: Path, cache_dir: Path) -> TracedEncoder:
    """Trace the encoder, or reload the saved trace when model, config and da4ml are unchanged."""
    from da4ml.cmvm.types import CombLogic

    from gelato.model.firmware import load_firmware_model

    config = load_hls_config(config_path)
    model = load_firmware_model(model_path)
    digest = trace_digest(model_path, config_path)
    comb_path, meta_path = cache_dir / "encoder_comb.json", cache_dir / "encoder_trace.json"

    if comb_path.exists() and meta_path.exists() and json.loads(meta_path.read_text()).get("digest") == digest:
        traced = trace_encoder_types_only(model, config)
        traced.comb = CombLogic.load(comb_path)
        traced.seconds = float(json.loads(meta_path.read_text()).get("seconds", 0.0))
        log.info("reused da4ml trace %s", comb_path)
        return traced

    traced = trace_encoder(model, config)
    cache_dir.mkdir(parents=True, exist_ok=True)
    traced.comb.save(comb_path)
    meta_path.write_text(json.dumps({"digest": digest, "seconds": traced.seconds}))
    return traced


def trace_encoder_types_only(keras_model, config: dict) -> TracedEncoder:
    """The I/O description of :func:`trace_encoder` without tracing (for a reused trace)."""
    plan = precision_plan(config, keras_model)
    types = config_types(config)
    n_latent = [layer for layer in keras_model.layers if type(layer).__name__ == "QDense"][-1].units
    return TracedEncoder(None, types["raw_input"], types["latent_mean"], types["score"], types["score_accum"],
                         len(plan.shifts), n_latent, 0.0)
