"""Arbitrary-precision fixed-point types (``ap_fixed`` / ``ap_ufixed``) modelled in numpy.

This module belongs to the hls stage.  A :class:`FixedType` is the Python twin of a Xilinx
``ap_fixed<W,I,Q,O>``: ``W`` bits in total, ``I`` of them integer bits (including the sign
bit when signed), so the least significant bit is worth ``2**(I-W)``.  Its
:meth:`FixedType.quantize` reproduces exactly what the C++ conversion from ``double`` does:

* quantization ``Q``: ``AP_TRN`` floors to the LSB grid (towards minus infinity),
  ``AP_TRN_ZERO`` truncates towards zero, ``AP_RND`` rounds half up (towards plus
  infinity), ``AP_RND_CONV`` rounds half to even (what QKeras' ``tf.round`` does);
* overflow ``O``: ``AP_SAT`` clamps to [min_value, max_value], ``AP_WRAP`` keeps the low
  ``W`` bits (two's complement when signed).

The other ap_fixed modes (``AP_RND_ZERO``, ``AP_RND_INF``, ``AP_RND_MIN_INF``, ``AP_SAT_ZERO``,
``AP_SAT_SYM``) and saturation bits are not used by GELATO and are refused by
:meth:`FixedType.parse` rather than modelled approximately.  Codes are held in int64 and
values in float64, so types are limited to 53 bits (every value exactly representable).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

ROUNDING_MODES = ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_CONV")
OVERFLOW_MODES = ("AP_WRAP", "AP_SAT")
MAX_WIDTH = 53

_TYPE_PATTERN = re.compile(r"^\s*ap_(u?)(fixed|int)\s*<\s*([^>]*)>\s*$")


@dataclass(frozen=True)
class FixedType:
    """An ``ap_fixed``/``ap_ufixed`` type: width and integer bits, rounding and overflow mode."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "AP_TRN"
    overflow: str = "AP_WRAP"

    def __post_init__(self) -> None:
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"{self}: width must be 1..{MAX_WIDTH} bits to be modelled exactly, got {self.width}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"{self}: rounding mode {self.rounding!r} not supported; expected one of {ROUNDING_MODES}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"{self}: overflow mode {self.overflow!r} not supported; expected one of {OVERFLOW_MODES}")

    # -- description -------------------------------------------------------------------

    def __str__(self) -> str:
        base = f"ap_{'' if self.signed else 'u'}fixed<{self.width},{self.integer}"
        if (self.rounding, self.overflow) == ("AP_TRN", "AP_WRAP"):
            return base + ">"
        if self.overflow == "AP_WRAP":
            return f"{base},{self.rounding}>"
        return f"{base},{self.rounding},{self.overflow}>"

    @property
    def fractional(self) -> int:
        """Number of fractional bits (may be negative when integer > width)."""
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        """Value of the least significant bit, 2**(integer - width)."""
        return math.ldexp(1.0, self.integer - self.width)

    @property
    def min_code(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_code(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        """Most negative representable value (0 when unsigned)."""
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        """Largest representable value, 2**(integer - signed) - lsb."""
        return self.max_code * self.lsb

    def with_modes(self, rounding: str, overflow: str) -> FixedType:
        """The same bits with other rounding/overflow modes."""
        return FixedType(self.width, self.integer, self.signed, rounding, overflow)

    def contains(self, other: FixedType) -> bool:
        """True if every value of ``other`` is exactly representable in this type."""
        return (
            self.fractional >= other.fractional
            and self.min_value <= other.min_value
            and self.max_value >= other.max_value
        )

    # -- arithmetic --------------------------------------------------------------------

    def _round(self, scaled: np.ndarray) -> np.ndarray:
        if self.rounding == "AP_TRN":
            return np.floor(scaled)
        if self.rounding == "AP_TRN_ZERO":
            return np.trunc(scaled)
        if self.rounding == "AP_RND":
            return np.floor(scaled + 0.5)
        return np.rint(scaled)  # AP_RND_CONV: half to even

    def _overflow(self, codes: np.ndarray) -> np.ndarray:
        if self.overflow == "AP_SAT":
            return np.clip(codes, self.min_code, self.max_code)
        wrapped = np.mod(codes, float(1 << self.width))
        if self.signed:
            wrapped = np.where(wrapped > self.max_code, wrapped - float(1 << self.width), wrapped)
        return wrapped

    def codes(self, values: np.ndarray) -> np.ndarray:
        """Integer codes (value / lsb, int64) of ``values`` after the cast to this type."""
        scaled = np.ldexp(np.asarray(values, dtype=np.float64), self.width - self.integer)
        if np.isnan(scaled).any():
            raise ValueError(f"cannot convert NaN to {self}")
        return self._overflow(self._round(scaled)).astype(np.int64)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Values (float64) after the C++ cast ``T(double(v))``; an exact model of ap_fixed."""
        return np.ldexp(self.codes(values).astype(np.float64), self.integer - self.width)

    def saturates(self, values: np.ndarray) -> np.ndarray:
        """Boolean mask of values that fall outside the range after rounding (clamped or wrapped)."""
        scaled = self._round(np.ldexp(np.asarray(values, dtype=np.float64), self.width - self.integer))
        return (scaled < self.min_code) | (scaled > self.max_code)

    # -- parsing -----------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str) -> FixedType:
        """Parse ``ap_fixed<16,6,AP_RND_CONV,AP_SAT>``, ``ap_ufixed<10,4>``, ``ap_int<8>`` ..."""
        match = _TYPE_PATTERN.match(str(text))
        if match is None:
            raise ValueError(f"{text!r} is not an ap_fixed/ap_ufixed/ap_int/ap_uint type")
        unsigned, kind, args_text = match.groups()
        args = [a.strip() for a in args_text.split(",")]

        n_numeric = 1 if kind == "int" else 2
        try:
            numbers = [int(a) for a in args[:n_numeric]]
        except ValueError:
            raise ValueError(f"{text!r}: width and integer bits must be integers") from None
        if len(numbers) < n_numeric or len(args) > n_numeric + 2 or (kind == "int" and len(args) > 1):
            raise ValueError(f"{text!r}: expected ap_{unsigned}{kind}<{'W' if kind == 'int' else 'W,I[,Q[,O]]'}>")

        width = numbers[0]
        integer = numbers[0] if kind == "int" else numbers[1]
        rounding = args[n_numeric] if len(args) > n_numeric else "AP_TRN"
        overflow = args[n_numeric + 1] if len(args) > n_numeric + 1 else "AP_WRAP"
        return cls(width, integer, signed=not unsigned, rounding=rounding, overflow=overflow)


def product_type(a: FixedType, b: FixedType) -> FixedType:
    """The exact (full-precision) type of ``a * b``, as ap_fixed's operator* returns it."""
    signed = a.signed or b.signed
    return FixedType(a.width + b.width, a.integer + b.integer, signed)


def bits_for_range(lowest: float, highest: float, fractional: int, signed: bool) -> FixedType:
    """The narrowest type with ``fractional`` fraction bits holding every value in [lowest, highest]."""
    magnitude = max(abs(lowest), abs(highest) + math.ldexp(1.0, -fractional))
    integer = max(1, math.ceil(math.log2(magnitude))) if magnitude > 0 else 1
    if signed:
        integer += 1
    fixed = FixedType(integer + fractional, integer, signed)
    while fixed.min_value > lowest or fixed.max_value < highest:
        fixed = FixedType(fixed.width + 1, fixed.integer + 1, signed)
    return fixed
