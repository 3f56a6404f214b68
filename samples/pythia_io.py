"""A thin wrapper around one seeded Pythia8 run (pythia8mc) and its batch records.

Samples stage.  Pythia's ``nextBatch`` returns whole batches of events as awkward
arrays, which keeps the per-event Python overhead small.  This module starts a run from
a list of settings and a seed, hands out batches, and converts the final-state
particles of a batch into the flat :class:`ParticleBatch` the L1 emulation reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import awkward as ak
import numpy as np
import pythia8mc

from gelato.samples.l1emulation import ParticleBatch

log = logging.getLogger(__name__)

#: Pythia accepts seeds in [1, 900 000 000].
MAX_PYTHIA_SEED = 900_000_000
MB_TO_PB = 1e9


class PythiaRun:
    """One initialised Pythia8 instance, seeded and configured from plain strings."""

    def __init__(self, settings: Sequence[str], seed: int) -> None:
        if not 1 <= seed <= MAX_PYTHIA_SEED:
            raise ValueError(f"Pythia seed must be in [1, {MAX_PYTHIA_SEED}], got {seed}")
        self.settings = [*settings, "Random:setSeed = on", f"Random:seed = {seed}"]
        self.pythia = pythia8mc.Pythia("", False)
        for line in self.settings:
            if not self.pythia.readString(line):
                raise ValueError(f"Pythia rejected the setting {line!r}")
        if not self.pythia.init():
            raise RuntimeError(f"Pythia failed to initialise with settings {self.settings}")
        self._charges: dict[int, float] = {}

    def next_batch(self, n_events: int) -> ak.Array:
        """The particle records of the next ``n_events`` events (failed events are skipped)."""
        return self.pythia.nextBatch(n_events, "skip").prt

    def cross_section_pb(self) -> float:
        """Pythia's estimate of the generated cross section [pb] so far."""
        return float(self.pythia.infoPython().sigmaGen()) * MB_TO_PB

    def charge_of(self, pdg_ids: np.ndarray) -> np.ndarray:
        """Electric charge [e] of each PDG identity code."""
        unique, inverse = np.unique(pdg_ids, return_inverse=True)
        for pid in unique.tolist():
            if pid not in self._charges:
                self._charges[pid] = float(self.pythia.particleData.charge(pid))
        return np.array([self._charges[p] for p in unique.tolist()])[inverse] if len(unique) else np.zeros(0)


def particle_batch(final: ak.Array, charge_of: Callable[[np.ndarray], np.ndarray]) -> ParticleBatch:
    """Flat particle arrays of a batch record already restricted to final-state particles."""
    counts = ak.to_numpy(ak.num(final.id))
    pdg_id = ak.to_numpy(ak.flatten(final.id)).astype(np.int64)
    mom = {k: ak.to_numpy(ak.flatten(final.p[k])).astype(np.float64) for k in ("px", "py", "pz", "e")}
    return ParticleBatch(
        n_events=len(counts),
        event=np.repeat(np.arange(len(counts)), counts),
        pdg_id=pdg_id,
        charge=charge_of(pdg_id),
        **mom,
    )
