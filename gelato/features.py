"""The 44 input features of the GELATO encoder, in the order the model and firmware use.

This is the contract every stage shares: event files store their columns in this order
and under these names, the shift table is indexed the same way, and the firmware input
array is laid out the same way.  Transverse momenta are in GeV, angles in radians.
"""

from __future__ import annotations

import numpy as np

N_JETS = 6
N_TAUS = 4
N_MUONS = 4
N_FEATURES = 3 * (N_JETS + N_TAUS + N_MUONS) + 2

#: Barrel/endcap boundary of the L1 muon trigger, |eta| >= this is endcap.
MUON_ENDCAP_ETA = 1.05


def _object_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}_{q}" for i in range(count) for q in ("pt", "eta", "phi")]


FEATURE_NAMES: tuple[str, ...] = tuple(
    _object_names("jFexSR_jet", N_JETS)
    + _object_names("eFex_tau", N_TAUS)
    + _object_names("muon", N_MUONS)
    + ["MET_pt", "MET_phi"]
)
assert len(FEATURE_NAMES) == N_FEATURES == 44

#: Power-of-two scaling exponents of the seed paper (Table 2): x_scaled = x / 2**s.
#: A negative exponent is a left shift (muon3 pT is multiplied by 4).
SEED_SHIFTS: tuple[int, ...] = (
    7, 5, 5, 7, 5, 5, 5, 4, 4, 5, 4, 3, 4, 3, 3, 3, 3, 2,  # jFexSR jets 0-5
    6, 5, 5, 5, 4, 5, 4, 3, 4, 3, 2, 3,  # eFex taus 0-3
    4, 4, 4, 2, 3, 3, 1, 1, 2, -2, -1, -1,  # muons 0-3
    6, 5,  # MET pt, phi
)  # fmt: skip
assert len(SEED_SHIFTS) == N_FEATURES

#: Column offsets of each object family in the feature vector.
JET_OFFSET = 0
TAU_OFFSET = 3 * N_JETS
MUON_OFFSET = TAU_OFFSET + 3 * N_TAUS
MET_OFFSET = MUON_OFFSET + 3 * N_MUONS


def feature_index(name: str) -> int:
    """Column of ``name`` in the feature vector (``ValueError`` naming the valid ones)."""
    try:
        return FEATURE_NAMES.index(name)
    except ValueError:
        raise ValueError(f"unknown feature {name!r}; expected one of {', '.join(FEATURE_NAMES)}") from None


def object_block(features: np.ndarray, offset: int, count: int) -> np.ndarray:
    """View of an object family as (N, count, 3) with columns pt, eta, phi."""
    return features[:, offset : offset + 3 * count].reshape(len(features), count, 3)


def jets(features: np.ndarray) -> np.ndarray:
    """Jets as (N, 6, 3): pt [GeV], eta, phi [rad]."""
    return object_block(features, JET_OFFSET, N_JETS)


def taus(features: np.ndarray) -> np.ndarray:
    """Taus as (N, 4, 3): pt [GeV], eta, phi [rad]."""
    return object_block(features, TAU_OFFSET, N_TAUS)


def muons(features: np.ndarray) -> np.ndarray:
    """Muons as (N, 4, 3): pt [GeV], eta, phi [rad]."""
    return object_block(features, MUON_OFFSET, N_MUONS)


def met(features: np.ndarray) -> np.ndarray:
    """Missing transverse momentum as (N, 2): pt [GeV], phi [rad]."""
    return features[:, MET_OFFSET : MET_OFFSET + 2]


def jet_multiplicity(features: np.ndarray) -> np.ndarray:
    """Number of jets with pT > 0 per event (objects are zero-padded)."""
    pts = jets(features)[:, :, 0]
    count = np.zeros(len(features), np.int64)
    for rank in range(N_JETS):  # column by column: four times faster than a reduction over the short axis
        count += pts[:, rank] > 0
    return count


def dijet_mass(features: np.ndarray) -> np.ndarray:
    """Invariant mass [GeV] of the two leading jets, treated as massless; 0 with < 2 jets."""
    j = jets(features)
    pt1, eta1, phi1, pt2, eta2, phi2 = (j[:, rank, q].astype(np.float64) for rank in (0, 1) for q in (0, 1, 2))
    m2 = 2.0 * pt1 * pt2 * (np.cosh(eta1 - eta2) - np.cos(phi1 - phi2))
    return np.sqrt(np.clip(m2, 0.0, None))
