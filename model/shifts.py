"""Power-of-two input scaling of the model stage: the shift table, its files, its derivation.

Every feature x_i enters the encoder as x_i / 2**s_i.  The default table is the seed
paper's (:data:`gelato.features.SEED_SHIFTS`).  :func:`derive_shifts` proposes a table from
a sample with one documented rule:

    s_i = ceil(log2(q_i)),  q_i = quantile_Q(|x_i| over the events where x_i != 0)

that is, the smallest integer s with q_i / 2**s <= 1, so that at least a fraction Q of
the non-zero entries of feature i lands in [-1, 1] after scaling.  The quantile is the
empirical one without interpolation (numpy's ``inverted_cdf``): the smallest observed
|x| such that a fraction >= Q of the non-zero entries are <= it.  A feature that is zero in every event
keeps s = 0.  Exponents are clipped to [:data:`MIN_SHIFT`, :data:`MAX_SHIFT`].

Shift tables are stored as JSON: ``{"shifts": [44 ints], "feature_names": [...], ...}``
with optional provenance keys; a bare list of 44 integers is accepted on reading.  How
the firmware applies the shift (in the wide input type, before the cast) is the hls
stage's business, not this module's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gelato.features import FEATURE_NAMES, N_FEATURES, SEED_SHIFTS
from gelato.io import Names, atomic_output, iter_event_chunks

log = logging.getLogger(__name__)

DEFAULT_QUANTILE = 0.99
MIN_SHIFT = -8
MAX_SHIFT = 15


def validate_shifts(shifts: Sequence[Any], source: str = "shift table") -> list[int]:
    """Return ``shifts`` as 44 Python ints, or raise ``ValueError`` saying what is wrong."""
    values = list(shifts)
    if len(values) != N_FEATURES:
        raise ValueError(f"{source}: expected {N_FEATURES} shift exponents, got {len(values)}")
    for i, value in enumerate(values):
        if isinstance(value, bool) or not float(value).is_integer():
            raise ValueError(f"{source}: shift {i} ({FEATURE_NAMES[i]}) is {value!r}, expected an integer")
        if not MIN_SHIFT <= int(value) <= MAX_SHIFT:
            raise ValueError(
                f"{source}: shift {i} ({FEATURE_NAMES[i]}) is {value}, expected {MIN_SHIFT}..{MAX_SHIFT}"
            )
    return [int(v) for v in values]


def scale_features(features: np.ndarray, shifts: Sequence[int]) -> np.ndarray:
    """x / 2**s per column, float32; exact (a power-of-two factor only changes the exponent)."""
    factors = np.ldexp(np.float32(1.0), -np.asarray(validate_shifts(shifts), dtype=np.int32))
    return np.asarray(features, dtype=np.float32) * factors.astype(np.float32)


def shift_for_magnitude(magnitude: float) -> int:
    """The smallest integer s with magnitude / 2**s <= 1 (0 for a zero magnitude), clipped."""
    if not np.isfinite(magnitude) or magnitude < 0:
        raise ValueError(f"magnitude must be finite and >= 0, got {magnitude}")
    if magnitude == 0:
        return 0
    mantissa, exponent = np.frexp(magnitude)  # magnitude = mantissa * 2**exponent, 0.5 <= m < 1
    s = int(exponent) - 1 if mantissa == 0.5 else int(exponent)
    return int(np.clip(s, MIN_SHIFT, MAX_SHIFT))


def nonzero_quantiles(features: np.ndarray, quantile: float) -> np.ndarray:
    """Per-feature quantile of |x| over the non-zero entries (0 where a column is all zero)."""
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    magnitudes = np.abs(np.asarray(features, dtype=np.float64))
    out = np.zeros(magnitudes.shape[1])
    for i in range(magnitudes.shape[1]):
        column = magnitudes[:, i][magnitudes[:, i] > 0]
        if column.size:
            out[i] = np.quantile(column, quantile, method="inverted_cdf")
    return out


def derive_shifts(features: np.ndarray, quantile: float = DEFAULT_QUANTILE) -> list[int]:
    """Shift exponents from a sample by the rule in the module docstring."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[1] != N_FEATURES:
        raise ValueError(f"features must have shape (N, {N_FEATURES}), got {features.shape}")
    return [shift_for_magnitude(q) for q in nonzero_quantiles(features, quantile)]


def derive_shifts_from_file(
    path: str | os.PathLike[str], quantile: float = DEFAULT_QUANTILE, max_events: int | None = None,
    names: Names = None,
) -> tuple[list[int], np.ndarray, int]:
    """Read an event file (or its first ``max_events``) and derive shifts.

    ``names`` is the feature-name mapping of the shared loader (any accepted layout).

    Returns the exponents, the per-feature quantiles and the number of events used.
    """
    blocks, used = [], 0
    for _, features, _ in iter_event_chunks(path, names=names):
        if max_events is not None:
            features = features[: max_events - used]
        blocks.append(features)
        used += len(features)
        if max_events is not None and used >= max_events:
            break
    if used == 0:
        raise ValueError(f"{path}: the file holds no events; cannot derive shift exponents")

    features = np.concatenate(blocks)
    quantiles = nonzero_quantiles(features, quantile)
    return [shift_for_magnitude(q) for q in quantiles], quantiles, used


def save_shifts(path: str | os.PathLike[str], shifts: Sequence[int], **provenance: Any) -> Path:
    """Write a shift table as JSON (see the module docstring), atomically."""
    document = {"shifts": validate_shifts(shifts), "feature_names": list(FEATURE_NAMES), **provenance}
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(document, indent=1) + "\n")
    return Path(path)


def load_shifts(path: str | os.PathLike[str] | None) -> list[int]:
    """Read a shift table written by :func:`save_shifts` (or a bare list); None -> the seed's."""
    if path is None:
        return list(SEED_SHIFTS)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no shift table here (write one with `gelato derive-shifts`)")
    try:
        document = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None

    if isinstance(document, dict):
        names = document.get("feature_names")
        if names is not None and tuple(names) != FEATURE_NAMES:
            raise ValueError(f"{path}: 'feature_names' differ from gelato.features.FEATURE_NAMES")
        if "shifts" not in document:
            raise ValueError(f"{path}: expected a key 'shifts' with {N_FEATURES} integers, found {sorted(document)}")
        document = document["shifts"]
    if not isinstance(document, list):
        raise ValueError(f"{path}: expected a list of {N_FEATURES} integers or an object with 'shifts'")
    return validate_shifts(document, source=str(path))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, the provenance stamp of shift tables and training records."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def format_shift_table(derived: Sequence[int], quantiles: Sequence[float], reference: Sequence[int]) -> str:
    """A plain-text table: feature, quantile, derived s, the reference (seed) s, difference."""
    lines = [f"{'feature':<16} {'quantile':>10} {'derived':>8} {'seed':>5} {'diff':>5}"]
    for name, q, s, ref in zip(FEATURE_NAMES, quantiles, derived, reference):
        diff = f"{s - ref:+d}" if s != ref else "."
        lines.append(f"{name:<16} {q:>10.4g} {s:>8d} {ref:>5d} {diff:>5}")
    n_same = sum(int(a == b) for a, b in zip(derived, reference))
    lines.append(f"{n_same}/{N_FEATURES} exponents equal to the seed's")
    return "\n".join(lines)
