"""Random and edge-case input events for the bit-exactness proof (hls stage).

The committed samples test the firmware where physics puts events; the failures of
fixed-point firmware sit elsewhere: at saturation, at rounding ties, at zero padding, at
angles outside their physical range.  This module makes seeded event sets (float32,
shape (N, 44), the feature order of :mod:`gelato.features`) that go there on purpose:

* ``random_full_range``: every feature uniform over the raw input type's whole range and
  5 % beyond it on both sides (so both limits saturate);
* ``random_physical``: objects with pT log-uniform from 0.25 GeV to the top of the raw
  type, eta in +-5.5 and phi in +-4 (both beyond their physical ranges), each object
  zero-padded with probability rising with its rank;
* ``edge_cases``: per feature a list of critical values drawn at random per event:
  each type's limits (raw word and, through the feature's shift, the scaled word), one
  LSB inside and beyond them, exact rounding ties of the raw LSB and of the scaled LSB
  (half to even and half up differ on every one), zero, negative zero, tiny values,
  negative and out-of-range eta and phi; plus fully and partly zero-padded events.

Every value is exactly what the three paths receive: the float32 the testbench reads.
What the events are compared with is :mod:`gelato.hls.bitexact`'s business.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gelato.features import FEATURE_NAMES, N_FEATURES
from gelato.hls.fixedpoint import FixedType

BEYOND_FRACTION = 0.05
ETA_LIMIT, PHI_LIMIT = 5.5, 4.0
MIN_PT_GEV = 0.25


def random_full_range(n_events: int, raw: FixedType, seed: int) -> np.ndarray:
    """Every feature uniform over [raw.min, raw.max] widened by 5 % on each side."""
    rng = np.random.default_rng(seed)
    span = raw.max_value - raw.min_value
    low, high = raw.min_value - BEYOND_FRACTION * span, raw.max_value + BEYOND_FRACTION * span
    return rng.uniform(low, high, (n_events, N_FEATURES)).astype(np.float32)


def random_physical(n_events: int, raw: FixedType, seed: int) -> np.ndarray:
    """Objects with log-uniform pT, eta and phi beyond their physical ranges, random zero padding."""
    rng = np.random.default_rng(seed)
    events = np.zeros((n_events, N_FEATURES))
    for column in range(0, N_FEATURES - 2, 3):
        rank = int(FEATURE_NAMES[column].split("_")[-2][-1])  # jet0 -> 0, muon3 -> 3
        present = rng.random(n_events) >= 0.1 + 0.15 * rank
        events[:, column] = np.where(present, _log_uniform(rng, n_events, raw.max_value), 0.0)
        events[:, column + 1] = np.where(present, rng.uniform(-ETA_LIMIT, ETA_LIMIT, n_events), 0.0)
        events[:, column + 2] = np.where(present, rng.uniform(-PHI_LIMIT, PHI_LIMIT, n_events), 0.0)
    events[:, -2] = _log_uniform(rng, n_events, raw.max_value)
    events[:, -1] = rng.uniform(-PHI_LIMIT, PHI_LIMIT, n_events)
    return events.astype(np.float32)


def _log_uniform(rng: np.random.Generator, n: int, highest: float) -> np.ndarray:
    return np.exp(rng.uniform(np.log(MIN_PT_GEV), np.log(highest), n))


def feature_edge_values(raw: FixedType, scaled: FixedType, shift: int, angle: bool) -> np.ndarray:
    """Critical float32 values of one feature: type limits, one LSB either side, ties, zeros, angles."""
    lsb = raw.lsb
    raw_limits = [raw.min_value, raw.max_value, raw.min_value - lsb, raw.max_value + lsb, raw.min_value + lsb,
                  raw.max_value - lsb, raw.max_value + lsb / 2, raw.min_value - lsb / 2, 1e6, -1e6]
    factor = 2.0**shift
    scaled_limits = [scaled.max_value * factor, scaled.min_value * factor, (scaled.max_value + scaled.lsb) * factor,
                     (scaled.min_value - scaled.lsb) * factor, scaled.max_value * factor - lsb,
                     scaled.min_value * factor + lsb]
    raw_ties = [(k + 0.5) * lsb for k in (-3, -2, -1, 0, 1, 2, 5, 1000, -1001)]
    scaled_ties = [(k + 0.5) * scaled.lsb * factor for k in (-2, -1, 0, 1, 2, 3, 77, -78)]
    small = [0.0, -0.0, 1e-30, -1e-30, lsb / 4, -lsb / 4, 0.25, -0.25]
    angles = [np.pi, -np.pi, 2 * np.pi, -2 * np.pi, 4.9, -4.9, 5.0, -5.0, 7.0, -7.0] if angle else []
    values = np.array(raw_limits + scaled_limits + raw_ties + scaled_ties + small + angles, dtype=np.float64)
    return np.unique(values.astype(np.float32))


def exact_ties(values: np.ndarray, fixed: FixedType) -> np.ndarray:
    """Mask of values that lie exactly half-way between two codes of ``fixed`` (and inside its range)."""
    scaled = np.ldexp(np.asarray(values, dtype=np.float64), fixed.fractional)
    inside = (scaled > fixed.min_code) & (scaled < fixed.max_code)
    return inside & (scaled - np.floor(scaled) == 0.5)


def edge_cases(n_events: int, raw: FixedType, scaled: FixedType, shifts: Sequence[int], seed: int) -> np.ndarray:
    """Events whose every feature is one of its critical values; a tenth of the objects zero-padded."""
    rng = np.random.default_rng(seed)
    events = np.zeros((n_events, N_FEATURES), dtype=np.float32)
    for i, (name, shift) in enumerate(zip(FEATURE_NAMES, shifts)):
        candidates = feature_edge_values(raw, scaled, int(shift), angle=not name.endswith("_pt"))
        events[:, i] = candidates[rng.integers(0, len(candidates), n_events)]

    padded = rng.random((n_events, (N_FEATURES - 2) // 3)) < 0.1
    events[:, : N_FEATURES - 2] *= np.repeat(~padded, 3, axis=1)
    events[:: max(1, n_events // 100)] = 0.0  # fully zero-padded events
    return events


def coverage(features: np.ndarray, raw: FixedType, scaled: FixedType, shifts: Sequence[int]) -> dict[str, int]:
    """How many input words of a set sit on the cases that matter (ties, limits, padding, odd angles)."""
    values = np.asarray(features, dtype=np.float32).astype(np.float64)
    words = raw.quantize(values)
    shifted = np.ldexp(words, -np.asarray(shifts, dtype=np.int64))
    eta = np.array([name.endswith("_eta") for name in FEATURE_NAMES])
    phi = np.array([name.endswith("_phi") for name in FEATURE_NAMES])
    objects = values[:, : N_FEATURES - 2].reshape(len(values), -1, 3)
    return {
        "raw_word_ties": int(exact_ties(values, raw).sum()),
        "scaled_word_ties": int(exact_ties(shifted, scaled).sum()),
        "raw_words_saturated": int(raw.saturates(values).sum()),
        "scaled_words_saturated": int((scaled.saturates(shifted) & ~raw.saturates(values)).sum()),
        "zero_padded_objects": int((objects == 0).all(axis=2).sum()),
        "all_zero_events": int((values == 0).all(axis=1).sum()),
        "eta_beyond_4.9": int((np.abs(values[:, eta]) > 4.9).sum()),
        "phi_beyond_pi": int((np.abs(values[:, phi]) > np.float32(np.pi)).sum()),
        "negative_eta_or_phi": int((values[:, eta | phi] < 0).sum()),
    }


def input_sets(n_random: int, raw: FixedType, scaled: FixedType, shifts: Sequence[int], seed: int = 2026) -> dict:
    """The three generated sets, ``n_random`` events in all (a third each, the rest to the edge cases)."""
    if n_random < 0:
        raise ValueError(f"the number of random and edge-case events must be >= 0, got {n_random}")
    third = n_random // 3
    return {
        "random_full_range": random_full_range(third, raw, seed),
        "random_physical": random_physical(third, raw, seed + 1),
        "edge_cases": edge_cases(n_random - 2 * third, raw, scaled, shifts, seed + 2),
    }
