"""The firmware configuration: one YAML file, validated, with every fixed-point type checked.

This module belongs to the hls stage.  :func:`load_hls_config` reads the YAML
(``hls/configs/default.yaml`` is the default), validates it with the packaged JSON schema
``gelato/schemas/hls_config.schema.json`` and names the offending key when it does not
fit.  :func:`check_precisions` then proves, for the firmware model at hand, that no
accumulator and no score type can overflow or wrap for any value the input types allow
(interval arithmetic on the type ranges, not on a data sample), and that each
``quantized_relu`` is given exactly the type QKeras rounds to.  A config that fails is
refused with a message that names the layer, the range needed and the type given.

The conversion to hls4ml settings lives in :mod:`gelato.hls.convert`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from gelato.hls.fixedpoint import MAX_WIDTH, FixedType, bits_for_range, product_type

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).parent / "configs" / "default.yaml"
SCHEMA_FILE = "hls_config.schema.json"


class PrecisionError(ValueError):
    """A fixed-point type in the config can overflow, wrap, or disagrees with the model."""


def _schema() -> dict:
    return json.loads(resources.files("gelato").joinpath("schemas", SCHEMA_FILE).read_text())


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "pattern" and "description" in error.schema:
        return f"{error.instance!r} is not {error.schema['description']}"
    return error.message


def validate_hls_config(config: Any, source: str = "<config>") -> dict:
    """Validate a parsed config against the schema; ``ValueError`` naming the key otherwise."""
    validator = jsonschema.Draft202012Validator(_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        lines = [f"{_key_path(e)}: {_message(e)}" for e in errors[:5]]
        raise ValueError(f"{source}: invalid hls config:\n  " + "\n  ".join(lines))

    for key in ("raw_input", "scaled_input", "latent_mean", "score_accum", "score"):
        _parse_type(config["precision"][key], f"{source}: precision.{key}")
    for layer, entry in config["precision"]["layers"].items():
        for kind, text in entry.items():
            _parse_type(text, f"{source}: precision.layers.{layer}.{kind}")
    return config


def _parse_type(text: str, where: str) -> FixedType:
    try:
        return FixedType.parse(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def load_hls_config(path: str | os.PathLike[str] = DEFAULT_CONFIG) -> dict:
    """Read and validate a firmware YAML config (see ``hls/configs/default.yaml``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no hls config here (the default is {DEFAULT_CONFIG})")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML ({exc})") from None
    return validate_hls_config(config, str(path))


def config_types(config: dict) -> dict[str, FixedType]:
    """The named types of a validated config: raw_input, scaled_input, latent_mean, score_accum, score."""
    keys = ("raw_input", "scaled_input", "latent_mean", "score_accum", "score")
    return {key: FixedType.parse(config["precision"][key]) for key in keys}


def file_digest(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a file's bytes (used to decide whether a compiled build is still valid)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# -- precision proofs ------------------------------------------------------------------


@dataclass(frozen=True)
class DenseSpec:
    """What the accumulator check needs to know about one dense layer."""

    name: str
    n_in: int
    input_type: FixedType
    weight_type: FixedType
    bias_type: FixedType


def dense_sum_range(spec: DenseSpec) -> tuple[float, float]:
    """Smallest and largest possible bias + sum_i x_i * w_i for the types' ranges."""
    corners = [
        a * b
        for a in (spec.input_type.min_value, spec.input_type.max_value)
        for b in (spec.weight_type.min_value, spec.weight_type.max_value)
    ]
    lowest = spec.n_in * min(corners) + spec.bias_type.min_value
    highest = spec.n_in * max(corners) + spec.bias_type.max_value
    return lowest, highest


def full_width_accumulator(spec: DenseSpec) -> FixedType:
    """The narrowest accumulator that holds every product and sum of ``spec`` exactly."""
    fractional = max(spec.input_type.fractional + spec.weight_type.fractional, spec.bias_type.fractional)
    return bits_for_range(*dense_sum_range(spec), fractional, signed=True)


def check_dense_accumulator(spec: DenseSpec, accum: FixedType) -> None:
    """Refuse an accumulator that can overflow; log when it drops fraction bits (rounds)."""
    lowest, highest = dense_sum_range(spec)
    if accum.min_value > lowest or accum.max_value < highest:
        raise PrecisionError(
            f"layer {spec.name}: accumulator {accum} holds [{accum.min_value}, {accum.max_value}] but "
            f"{spec.n_in} products of {spec.input_type} x {spec.weight_type} plus a bias of type {spec.bias_type} "
            f"reach [{lowest}, {highest}]; use at least {full_width_accumulator(spec)}"
        )
    exact = full_width_accumulator(spec)
    if accum.fractional < exact.fractional:
        log.warning("layer %s: accumulator %s drops %d fraction bits of the products (%s is exact)",
                    spec.name, accum, exact.fractional - accum.fractional, exact)


def score_range(latent: FixedType, n_latent: int) -> float:
    """Largest possible sum of ``n_latent`` squares of ``latent`` values."""
    largest_square = max(latent.min_value**2, latent.max_value**2)
    return n_latent * largest_square


def check_score_types(latent: FixedType, accum: FixedType, score: FixedType, n_latent: int) -> None:
    """Refuse a score accumulator or score type that can overflow, wrap or saturate."""
    highest = score_range(latent, n_latent)
    square = product_type(latent, latent)
    for name, fixed in (("score_accum", accum), ("score", score)):
        if fixed.max_value < highest:
            raise PrecisionError(
                f"precision.{name} = {fixed} reaches only {fixed.max_value}, but the sum of {n_latent} squares "
                f"of latent_mean {latent} reaches {highest}: it would "
                f"{'saturate' if fixed.overflow == 'AP_SAT' else 'wrap'}; "
                f"use at least {bits_for_range(0.0, highest, square.fractional, signed=fixed.signed)}"
            )
    if accum.fractional < square.fractional:
        log.warning("score_accum %s drops %d fraction bits of mu**2 (type %s)",
                    accum, square.fractional - accum.fractional, square)


def check_relu_type(name: str, quantizer_type: FixedType, configured: FixedType) -> None:
    """Refuse a quantized_relu result type that differs from what QKeras rounds to."""
    if configured != quantizer_type:
        raise PrecisionError(
            f"layer {name}: precision.layers.{name}.result is {configured}, but the model's quantizer "
            f"rounds to {quantizer_type}; the firmware must round where and as QKeras does"
        )


def check_input_types(raw: FixedType, scaled: FixedType, shifts: list[int]) -> None:
    """Refuse input types whose shift would lose more than the final rounding allows."""
    if not raw.signed or not scaled.signed:
        raise PrecisionError(f"raw_input {raw} and scaled_input {scaled} must be signed (eta and phi are signed)")
    for label, fixed in (("raw_input", raw), ("scaled_input", scaled)):
        if fixed.overflow != "AP_SAT":
            raise PrecisionError(f"precision.{label} = {fixed} wraps on overflow; use AP_SAT so large values clip")
    if len(shifts) == 0:
        raise PrecisionError("the model has no shift exponents")
    check_shift_exponents(raw, scaled, shifts)


def check_shift_exponents(raw: FixedType, scaled: FixedType, shifts: list[int]) -> None:
    """Refuse exponents that do not fit the input types: the feature would vanish, saturate, or not shift exactly.

    For each feature, a right shift s must leave the largest raw word at least one LSB of
    ``scaled_input`` (else every word rounds to zero or one LSB), a left shift must leave
    one raw LSB inside ``scaled_input`` (else every non-zero word saturates), and the wide
    type the shift is done in (raw width + largest right + largest left shift) must stay
    within the bits modelled exactly.
    """
    from gelato.features import FEATURE_NAMES

    names = FEATURE_NAMES if len(shifts) == len(FEATURE_NAMES) else [f"feature {i}" for i in range(len(shifts))]
    for i, exponent in enumerate(shifts):
        if exponent != int(exponent):
            raise PrecisionError(f"shift {i} ({names[i]}) is {exponent!r}; exponents must be integers")
        largest = raw.max_value * 2.0 ** -exponent
        smallest = raw.lsb * 2.0 ** -exponent
        if largest < scaled.lsb:
            raise PrecisionError(f"shift {i} ({names[i]}) = {exponent}: the largest raw word {raw.max_value} becomes "
                                 f"{largest}, below one LSB ({scaled.lsb}) of scaled_input {scaled}: "
                                 "the feature vanishes")
        if smallest > scaled.max_value:
            raise PrecisionError(f"shift {i} ({names[i]}) = {exponent}: one raw LSB becomes {smallest}, beyond the "
                                 f"largest scaled_input {scaled} value {scaled.max_value}: every word saturates")
    wide = raw.width + max(0, max(shifts)) + max(0, -min(shifts))
    if wide > MAX_WIDTH:
        raise PrecisionError(f"shifts from {min(shifts)} to {max(shifts)} need a {wide}-bit shift type for raw_input "
                             f"{raw}; at most {MAX_WIDTH} bits are modelled exactly")
