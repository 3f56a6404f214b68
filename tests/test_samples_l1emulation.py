"""L1-object emulation on constructed particle lists (no event generator involved)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gelato.features import FEATURE_NAMES, jets, met, muons, taus
from gelato.samples.l1emulation import (
    L1Settings,
    ParticleBatch,
    calorimeter_deposits,
    tower_grid,
    truth_muons,
)
from gelato.samples.l1objects import l1_features

SETTINGS = L1Settings()


def particle(pt: float, eta: float, phi: float, pdg_id: int = 22, charge: float = 0.0) -> dict[str, np.ndarray]:
    """A massless particle as the per-event dict ParticleBatch.from_events reads."""
    return {
        "px": np.array([pt * np.cos(phi)]),
        "py": np.array([pt * np.sin(phi)]),
        "pz": np.array([pt * np.sinh(eta)]),
        "e": np.array([pt * np.cosh(eta)]),
        "pdg_id": np.array([pdg_id]),
        "charge": np.array([charge]),
    }


def merge(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def emulate(events: list[dict], settings: L1Settings = SETTINGS, seed: int = 1) -> np.ndarray:
    batch = ParticleBatch.from_events(events)
    grid = tower_grid(calorimeter_deposits(batch, settings), settings)
    return l1_features(grid, truth_muons(batch), np.random.default_rng(seed), settings)


def tower_centre_eta(eta: float) -> float:
    return (np.floor(eta / 0.1) + 0.5) * 0.1


def tower_centre_phi(phi: float) -> float:
    size = 2 * np.pi / 64
    return -np.pi + (np.floor((phi + np.pi) / size) + 0.5) * size


def test_single_photon_gives_one_jet_at_its_tower_with_pt_within_resolution():
    rows = emulate([particle(100.0, 0.53, 1.02)])

    j = jets(rows)[0]
    assert j[0, 0] == pytest.approx(100.0, abs=3 * 0.6 * np.sqrt(100.0))
    assert j[0, 1] == pytest.approx(tower_centre_eta(0.53), abs=1e-6)
    assert j[0, 2] == pytest.approx(tower_centre_phi(1.02), abs=1e-6)
    assert np.all(j[1:] == 0)


def test_met_balances_a_single_hard_photon():
    rows = emulate([particle(100.0, 0.53, 1.02)])

    met_pt, met_phi = met(rows)[0]
    assert met_pt == jets(rows)[0, 0, 0]
    assert met_phi == pytest.approx(tower_centre_phi(1.02 - np.pi), abs=1e-6)


def test_hadrons_are_read_at_em_scale():
    rows = emulate([particle(100.0, -1.23, -2.0, pdg_id=130)])

    assert jets(rows)[0, 0, 0] == pytest.approx(100.0 * SETTINGS.hadron_response, abs=3 * 0.6 * np.sqrt(70.0))


def test_neutrinos_and_soft_charged_particles_leave_no_energy():
    event = merge(particle(80.0, 0.0, 0.0, pdg_id=12), particle(0.3, 0.5, 0.5, pdg_id=211, charge=1.0))
    deposits = calorimeter_deposits(ParticleBatch.from_events([event]), SETTINGS)

    assert len(deposits.et) == 0
    assert np.all(emulate([event]) == 0)


def test_rho_times_area_removes_a_uniform_pileup_carpet():
    n_eta, n_phi = SETTINGS.n_eta, SETTINGS.tower_phi_bins
    carpet = np.full((1, n_eta, n_phi), 1.5)  # GeV per tower, below the rho cap
    photon = ParticleBatch.from_events([particle(100.0, 0.05, 0.05)])
    hard = tower_grid(calorimeter_deposits(photon, SETTINGS), SETTINGS)
    rows = l1_features(carpet + hard, truth_muons(photon), np.random.default_rng(3), SETTINGS)

    assert jets(rows)[0, 0, 0] == pytest.approx(100.0, abs=15.0)
    assert np.count_nonzero(jets(rows)[0, :, 0]) <= 2


def test_muons_outside_acceptance_or_below_threshold_are_dropped():
    always = dataclasses.replace(SETTINGS, muon_efficiency_barrel=1.0, muon_efficiency_endcap=1.0)
    event = merge(
        particle(20.0, 0.3, 0.4, pdg_id=13, charge=-1.0),
        particle(30.0, 2.6, 1.0, pdg_id=-13, charge=1.0),
        particle(1.5, -0.7, 2.0, pdg_id=13, charge=-1.0),
    )
    m = muons(emulate([event], always))[0]

    assert m[0, 0] == pytest.approx(20.0, abs=3 * 0.10 * 20.0)
    assert m[0, 1] == pytest.approx(tower_centre_eta(0.3), abs=1e-6)
    assert np.all(m[1:] == 0)


def test_muon_efficiency_is_applied_per_muon():
    events = [particle(20.0, 0.3, 0.4, pdg_id=13, charge=-1.0)] * 300
    found = np.count_nonzero(muons(emulate(events))[:, 0, 0] > 0)

    assert found / 300 == pytest.approx(SETTINGS.muon_efficiency_barrel, abs=0.08)  # 3 sigma


def test_objects_are_pt_ordered_and_zero_padded():
    photons = [particle(40.0 + 10 * k, -2.0 + 0.5 * k, -3.0 + 0.8 * k) for k in range(8)]
    two_muons = [particle(10.0, 0.2, 0.1, 13, -1.0), particle(25.0, -0.5, 2.5, -13, 1.0)]
    always = dataclasses.replace(SETTINGS, muon_efficiency_barrel=1.0)
    rows = emulate([merge(*photons, *two_muons)], always)

    jet_pt = jets(rows)[0, :, 0]
    assert np.all(np.diff(jet_pt) <= 0) and np.all(jet_pt > 0)
    muon_block = muons(rows)[0]
    assert muon_block[0, 0] > muon_block[1, 0] > 0
    assert np.all(muon_block[2:] == 0)


def test_empty_event_is_all_zero_and_features_are_float32_of_width_44():
    rows = emulate([merge(particle(1.0, 0, 0, 12)), particle(200.0, 1.0, 3.1)])

    assert rows.dtype == np.float32 and rows.shape == (2, len(FEATURE_NAMES))
    assert np.all(rows[0] == 0)


def test_phi_stays_inside_minus_pi_to_pi_at_the_wrap_around():
    events = [particle(60.0, 0.1 * k - 1.0, phi, pdg_id=22) for k, phi in enumerate(np.linspace(-np.pi, np.pi, 21))]
    rows = emulate(events)
    phis = np.concatenate([jets(rows)[:, :, 2].ravel(), taus(rows)[:, :, 2].ravel(), met(rows)[:, 1]])

    assert np.all(np.abs(phis) <= np.pi)
    assert np.count_nonzero(jets(rows)[:, 0, 0]) == len(events)


def test_stored_values_sit_on_the_l1_granularity():
    events = [merge(particle(57.3, 0.77, 0.3), particle(33.3, -1.91, 2.2, 211, 1.0))] * 20
    rows = emulate(events).astype(np.float64)
    pts = np.concatenate([jets(rows)[..., 0].ravel(), taus(rows)[..., 0].ravel(), met(rows)[:, 0]])

    np.testing.assert_array_equal(pts * 4, np.round(pts * 4))
    tau_eta = taus(rows)[..., 1]
    np.testing.assert_allclose(tau_eta / 0.025, np.round(tau_eta / 0.025), atol=1e-3)


def test_same_rng_seed_gives_identical_rows_and_another_seed_differs():
    events = [merge(particle(50.0, 0.5, 0.5, 211, 1.0), particle(20.0, 1.2, -1.0, 13, -1.0))] * 50

    np.testing.assert_array_equal(emulate(events, seed=5), emulate(events, seed=5))
    assert not np.array_equal(emulate(events, seed=5), emulate(events, seed=6))


def test_wrong_grid_shape_is_refused_with_the_expected_shape():
    no_muons = truth_muons(ParticleBatch.from_events([particle(1, 0, 0)]))
    with pytest.raises(ValueError, match=r"\(events, 98, 64\)"):
        l1_features(np.zeros((1, 10, 10)), no_muons, np.random.default_rng(), SETTINGS)


def test_narrow_cluster_is_a_tau_and_a_wide_one_fails_isolation():
    narrow = particle(50.0, 1.05, 0.5)
    offsets = [(de, dp) for de in (-0.2, -0.1, 0.0, 0.1, 0.2) for dp in (-0.2, -0.1, 0.0, 0.1, 0.2)]
    wide = merge(*[particle(4.0, -1.0 + de, -2.0 + dp) for de, dp in offsets])  # 100 GeV over 5x5 towers
    rows = emulate([narrow, wide])

    assert taus(rows)[0, 0, 0] == pytest.approx(50.0, abs=3 * 0.6 * np.sqrt(50.0))
    assert taus(rows)[0, 0, 1] == pytest.approx(1.05, abs=0.0125)
    assert np.all(taus(rows)[1] == 0)
    assert jets(rows)[1, 0, 0] == pytest.approx(100.0, abs=15.0)
