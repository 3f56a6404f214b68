"""Level-1 object emulation: final-state particles -> the 44 trigger features.

Samples stage.  This module turns the stable particles of a bunch crossing (the hard
interaction plus its pileup) into objects that resemble what the ATLAS Level-1 system
hands to L1Topo: six jFEX small-R jets, four eFEX taus, four muons from the muon trigger
and the calorimeter missing transverse momentum.  It is pure numpy plus fastjet and
knows nothing about Pythia; the generator and the pileup pool feed it flat particle
arrays or ready-made tower deposits.

The calorimeter is a grid of 0.1 x 2pi/64 towers over |eta| < 4.9.  Each visible
particle (not neutrinos, not muons, not charged particles that curl up in the solenoid)
leaves its transverse energy in one tower; the summed tower energy is smeared with a
stochastic term and cut at a noise threshold.  Jets are anti-kT R = 0.4 clusters of the
towers, corrected by rho x area; taus are isolated narrow tower clusters; MET is the
negative vector sum of the towers.  Every number is a field of :class:`L1Settings`,
written into each event file and documented in ``docs/samples.md``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

NEUTRINO_IDS = (12, 14, 16)
MUON_ID = 13
EM_IDS = (11, 22)  # electrons and photons shower fully in the EM calorimeter


@dataclass(frozen=True)
class L1Settings:
    """Acceptance, thresholds, resolutions and granularity of the emulated L1 objects."""

    # Calorimeter towers.
    tower_eta_max: float = 4.9
    tower_eta_size: float = 0.1
    tower_phi_bins: int = 64
    looper_pt_gev: float = 0.4  # charged particles below this never reach the calorimeter
    hadron_response: float = 0.7  # EM-scale towers: hadron ET is read at this fraction
    tower_stochastic_gev: float = 0.6  # sigma(ET) = a * sqrt(ET / GeV) GeV per tower
    tower_noise_cut_gev: float = 1.0  # towers below this read zero
    # Pileup density rho: mean tower ET in |eta| bands, ignoring towers above the cap.
    rho_band_edges: tuple[float, ...] = (0.0, 1.6, 2.5, 3.2, 4.0, 4.9)
    rho_tower_cap_gev: float = 3.0
    # jFEX-like small-R jets.
    jet_radius: float = 0.4
    jet_pt_min_gev: float = 25.0
    # eFEX-like taus: 3x3-tower core, isolation ring out to 7x7 towers.
    tau_eta_max: float = 2.5
    tau_seed_min_gev: float = 1.0
    tau_pt_min_gev: float = 12.0
    tau_isolation_max: float = 0.25  # ring ET / core ET
    tau_eta_granularity: float = 0.025  # eFEX supercell eta pitch
    # Muon trigger.
    muon_eta_max: float = 2.4
    muon_pt_min_gev: float = 3.0
    muon_efficiency_barrel: float = 0.70
    muon_efficiency_endcap: float = 0.90
    muon_resolution_barrel: float = 0.10  # sigma(pT) / pT
    muon_resolution_endcap: float = 0.12
    muon_eta_granularity: float = 0.1
    # Stored values.
    pt_granularity_gev: float = 0.25
    max_objects: dict[str, int] = field(default_factory=lambda: {"jets": 6, "taus": 4, "muons": 4})

    @property
    def n_eta(self) -> int:
        return int(round(2 * self.tower_eta_max / self.tower_eta_size))

    @property
    def n_towers(self) -> int:
        return self.n_eta * self.tower_phi_bins

    @property
    def phi_size(self) -> float:
        return 2 * math.pi / self.tower_phi_bins

    def as_dict(self) -> dict:
        """Plain dictionary of every setting (written as JSON into event files)."""
        out = dataclasses.asdict(self)
        out["rho_band_edges"] = list(self.rho_band_edges)
        out["tower_phi_size_rad"] = self.phi_size
        return out


# --------------------------------------------------------------------------- helpers


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Map angles [rad] into [-pi, pi)."""
    return (np.asarray(phi) + np.pi) % (2 * np.pi) - np.pi


def quantize_pt(pt: np.ndarray, settings: L1Settings) -> np.ndarray:
    """Round transverse momenta [GeV] to the stored granularity."""
    step = settings.pt_granularity_gev
    return np.round(np.asarray(pt) / step) * step


def quantize_eta(eta: np.ndarray, pitch: float) -> np.ndarray:
    """Move pseudorapidities to the centre of their ``pitch``-wide bin."""
    return (np.floor(np.asarray(eta) / pitch) + 0.5) * pitch


def quantize_phi(phi: np.ndarray, settings: L1Settings) -> np.ndarray:
    """Move azimuths [rad] to the centre of their tower, inside (-pi, pi)."""
    size = settings.phi_size
    index = np.floor((wrap_phi(phi) + np.pi) / size) % settings.tower_phi_bins
    return -np.pi + (index + 0.5) * size


def eta_centres(settings: L1Settings) -> np.ndarray:
    """Pseudorapidity of the centre of each tower row."""
    return -settings.tower_eta_max + (np.arange(settings.n_eta) + 0.5) * settings.tower_eta_size


def phi_centres(settings: L1Settings) -> np.ndarray:
    """Azimuth [rad] of the centre of each tower column."""
    return -np.pi + (np.arange(settings.tower_phi_bins) + 0.5) * settings.phi_size


# --------------------------------------------------------------------- particle input


@dataclass
class ParticleBatch:
    """Stable particles of several events as flat arrays; ``event`` says whose each is."""

    n_events: int
    event: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    e: np.ndarray
    pdg_id: np.ndarray
    charge: np.ndarray

    @classmethod
    def from_events(cls, events: list[dict[str, np.ndarray]]) -> ParticleBatch:
        """Batch from per-event dicts with keys px, py, pz, e [GeV], pdg_id, charge."""
        keys = ("px", "py", "pz", "e", "pdg_id", "charge")
        sizes = [len(np.atleast_1d(ev["px"])) for ev in events]
        flat = {k: np.concatenate([np.atleast_1d(ev[k]) for ev in events] or [np.zeros(0)]) for k in keys}
        event = np.repeat(np.arange(len(events)), sizes)
        return cls(len(events), event, **{k: flat[k].astype(np.int64 if k == "pdg_id" else np.float64) for k in keys})

    def kinematics(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """pT [GeV], eta and phi [rad] of every particle (eta +-1e9 along the beam)."""
        pt = np.hypot(self.px, self.py)
        with np.errstate(divide="ignore", invalid="ignore"):
            eta = np.where(pt > 0, np.arcsinh(self.pz / np.where(pt > 0, pt, 1.0)), np.sign(self.pz) * 1e9)
        return pt, eta, np.arctan2(self.py, self.px)


@dataclass
class TowerDeposits:
    """Sparse calorimeter deposits: flat tower index and ET [GeV] per entry, per event."""

    n_events: int
    event: np.ndarray
    tower: np.ndarray
    et: np.ndarray


@dataclass
class TruthMuons:
    """Muons entering the muon spectrometer (truth): event index, pT [GeV], eta, phi."""

    n_events: int
    event: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray


def calorimeter_deposits(particles: ParticleBatch, settings: L1Settings) -> TowerDeposits:
    """Tower index and transverse energy of every particle the calorimeter sees."""
    pt, eta, phi = particles.kinematics()
    absid = np.abs(particles.pdg_id)
    visible = ~np.isin(absid, NEUTRINO_IDS) & (absid != MUON_ID)
    reaches = (particles.charge == 0) | (pt >= settings.looper_pt_gev)
    keep = visible & reaches & (np.abs(eta) < settings.tower_eta_max)

    eta, phi = eta[keep], phi[keep]
    electromagnetic = np.isin(absid[keep], EM_IDS)
    et = particles.e[keep] / np.cosh(eta) * np.where(electromagnetic, 1.0, settings.hadron_response)
    ieta = np.clip(((eta + settings.tower_eta_max) / settings.tower_eta_size).astype(np.int64), 0, settings.n_eta - 1)
    iphi = np.floor((phi + np.pi) / settings.phi_size).astype(np.int64) % settings.tower_phi_bins
    return TowerDeposits(particles.n_events, particles.event[keep], ieta * settings.tower_phi_bins + iphi, et)


def truth_muons(particles: ParticleBatch, min_pt_gev: float = 2.0) -> TruthMuons:
    """Muons above ``min_pt_gev`` (softer ones cannot pass any L1 muon threshold)."""
    pt, eta, phi = particles.kinematics()
    keep = (np.abs(particles.pdg_id) == MUON_ID) & (pt >= min_pt_gev)
    return TruthMuons(particles.n_events, particles.event[keep], pt[keep], eta[keep], phi[keep])


def tower_grid(deposits: TowerDeposits, settings: L1Settings) -> np.ndarray:
    """Dense (events, eta, phi) ET grid [GeV] summing all deposits of each event."""
    flat = deposits.event.astype(np.int64) * settings.n_towers + deposits.tower
    grid = np.bincount(flat, weights=deposits.et, minlength=deposits.n_events * settings.n_towers)
    return grid.reshape(deposits.n_events, settings.n_eta, settings.tower_phi_bins)
