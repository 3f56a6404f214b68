"""Pileup: a recycled pool of minimum-bias events overlaid Poisson(mu) times per crossing.

Samples stage.  Generating ~60 fresh inelastic interactions for every event would cost
60 times the hard process, so, as the experiments do with pre-mixed pileup, a pool of
minimum-bias events is generated once from its own seed and stored in the compact form
the L1 emulation needs: calorimeter tower deposits and truth muons.  Each crossing then
draws n ~ Poisson(mu) pool members (with replacement) and adds their deposits to the
hard event's.  The pool depends only on (master seed, pool size), so every chunk and
every worker sees the same pool.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from gelato.samples.l1emulation import L1Settings, TowerDeposits, TruthMuons, calorimeter_deposits, truth_muons
from gelato.samples.pythia_io import PythiaRun, particle_batch

log = logging.getLogger(__name__)

POOL_BATCH = 1000


@dataclass
class PileupPool:
    """Minimum-bias events as sparse tower deposits and muons, indexed by ``*_offsets``."""

    size: int
    tower_offsets: np.ndarray
    tower: np.ndarray
    et: np.ndarray
    muon_offsets: np.ndarray
    muon_pt: np.ndarray
    muon_eta: np.ndarray
    muon_phi: np.ndarray

    def overlay(self, n_events: int, mu: float, rng: np.random.Generator) -> tuple[TowerDeposits, TruthMuons]:
        """Deposits and muons of Poisson(``mu``) pool events for each of ``n_events`` crossings."""
        counts = rng.poisson(mu, n_events) if self.size else np.zeros(n_events, dtype=np.int64)
        picks = rng.integers(0, max(self.size, 1), counts.sum())
        owner = np.repeat(np.arange(n_events), counts)

        t_idx, t_owner = _gather(self.tower_offsets, picks, owner)
        m_idx, m_owner = _gather(self.muon_offsets, picks, owner)
        towers = TowerDeposits(n_events, t_owner, self.tower[t_idx].astype(np.int64), self.et[t_idx].astype(np.float64))
        muons = TruthMuons(n_events, m_owner, self.muon_pt[m_idx], self.muon_eta[m_idx], self.muon_phi[m_idx])
        return towers, muons


def _gather(offsets: np.ndarray, picks: np.ndarray, owner: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Entry indices of the picked pool events (CSR rows) and the crossing each belongs to."""
    starts = offsets[picks]
    lengths = offsets[picks + 1] - starts
    first = np.cumsum(lengths) - lengths
    index = np.repeat(starts - first, lengths) + np.arange(lengths.sum())
    return index, np.repeat(owner, lengths)


def _offsets(event: np.ndarray, n_events: int) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.bincount(event, minlength=n_events))]).astype(np.int64)


def build_pool(size: int, seed: int, settings: L1Settings, pythia_settings: list[str]) -> PileupPool:
    """Generate ``size`` minimum-bias events with Pythia seed ``seed`` and compress them."""
    towers, muons = [], []
    if size:
        run = PythiaRun(pythia_settings, seed)
        for start in range(0, size, POOL_BATCH):
            n = min(POOL_BATCH, size - start)
            record = run.next_batch(n)
            particles = particle_batch(record[record.status > 0], run.charge_of)
            towers.append(_merge_towers(calorimeter_deposits(particles, settings), start, settings))
            mu = truth_muons(particles)
            muons.append((mu.event + start, mu.pt, mu.eta, mu.phi))

    cat = (lambda parts, k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0))
    pool = PileupPool(
        size=size,
        tower_offsets=_offsets(cat(towers, 0).astype(np.int64), size),
        tower=cat(towers, 1).astype(np.int16),
        et=cat(towers, 2).astype(np.float32),
        muon_offsets=_offsets(cat(muons, 0).astype(np.int64), size),
        muon_pt=cat(muons, 1),
        muon_eta=cat(muons, 2),
        muon_phi=cat(muons, 3),
    )
    log.info("pileup pool: %d minimum-bias events, %.0f tower deposits per event", size, len(pool.et) / max(size, 1))
    return pool


def _merge_towers(
    deposits: TowerDeposits, start: int, settings: L1Settings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the deposits of one event that share a tower; return (event, tower, ET) sorted by event."""
    key = deposits.event.astype(np.int64) * settings.n_towers + deposits.tower
    unique, inverse = np.unique(key, return_inverse=True)
    et = np.bincount(inverse, weights=deposits.et)
    return unique // settings.n_towers + start, unique % settings.n_towers, et
