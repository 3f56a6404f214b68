"""Generation with Pythia8: process selection, reproducibility, worker independence, manifest."""

from __future__ import annotations

import dataclasses
import json

import awkward as ak
import numpy as np
import pytest

from gelato.io import read_events
from gelato.samples import generate as gen
from gelato.samples.l1emulation import L1Settings
from gelato.samples.manifest import sha256_of, update_manifest
from gelato.samples.processes import (
    COMMON_SETTINGS,
    PROCESSES,
    count_prompt_leptons,
    leading_truth_jet_pt,
    prompt_lepton_counts,
    prompt_lepton_indices,
)
from gelato.samples.pileup import build_pool
from gelato.samples.pythia_io import PythiaRun


@pytest.fixture(scope="module")
def pool():
    """A small pileup pool.  Soft hard-QCD events stand in for minimum bias here: the
    pool mechanics are the same and Pythia initialises in 0.3 s instead of ~6 s."""
    stand_in = [*COMMON_SETTINGS, "HardQCD:all = on", "PhaseSpace:pTHatMin = 5."]
    return build_pool(40, seed=11, settings=L1Settings(), pythia_settings=stand_in)


def test_chunk_plan_cuts_fixed_chunks_with_a_short_last_one():
    plan = gen.chunk_plan(PROCESSES["jz1"], 4500, master_seed=1, pileup_mu=60.0)

    assert [t.n_events for t in plan] == [2000, 2000, 500]
    assert [t.index for t in plan] == [0, 1, 2]


def test_chunk_seeds_differ_between_processes_chunks_and_master_seeds():
    seeds = {gen.pythia_seed(gen.stream_seed(m, p, c)) for m in (1, 2) for p in ("jz1", "jz2") for c in (0, 1)}

    assert len(seeds) == 8
    assert gen.pythia_seed(gen.stream_seed(1, "jz1", 0)) == gen.pythia_seed(gen.stream_seed(1, "jz1", 0))


def test_prompt_lepton_walk_climbs_radiation_copies_and_ignores_tau_decays():
    # 0 system, 1 W+, 2 e+ (from W), 3 e+ (after photon radiation), 4 tau-, 5 mu- (from tau)
    ids = np.array([90, 24, -11, -11, 15, 13])
    mothers = np.array([0, 0, 1, 2, 0, 4])
    final = np.array([False, False, False, True, False, True])

    assert count_prompt_leptons(ids, mothers, final, parent_id=24) == 1
    assert count_prompt_leptons(ids, mothers, final, parent_id=23) == 0


def test_ttbar_2lep_events_have_two_prompt_leptons_in_the_record():
    process = PROCESSES["ttbar_2lep"]
    run = PythiaRun(process.pythia_settings(0), seed=5)
    records, n_generated = gen.accepted_records(process, run, 10)

    counts = prompt_lepton_counts(records[0], parent_id=24)
    np.testing.assert_array_equal(counts, np.full(10, 2))


def test_ttbar_1lep_chunks_alternate_the_leptonic_w_charge():
    process = PROCESSES["ttbar_1lep"]
    prompt_ids = []
    for chunk in (0, 1):
        record = PythiaRun(process.pythia_settings(chunk), seed=9).next_batch(6)
        ids = []
        for event in record:
            event_ids, mothers, status = np.asarray(event.id), np.asarray(event.mother1), np.asarray(event.status)
            ids += [event_ids[i] for i in prompt_lepton_indices(event_ids, mothers, status > 0, parent_id=24)]
        assert len(ids) == 6
        prompt_ids.append(np.array(ids))

    assert np.all(prompt_ids[0] < 0)  # even chunks: W+ -> e+ / mu+ (negative PDG codes)
    assert np.all(prompt_ids[1] > 0)  # odd chunks: W- -> e- / mu-


def test_dijet_slice_keeps_only_events_with_leading_truth_jet_in_window():
    process = PROCESSES["jz1"]
    run = PythiaRun(process.pythia_settings(0), seed=3)
    records, n_generated = gen.accepted_records(process, run, 20)
    accepted = ak.concatenate(records)
    lead = leading_truth_jet_pt(accepted[accepted.status > 0])

    assert len(lead) == 20
    assert np.all((lead >= 20.0) & (lead < 60.0))
    assert n_generated > 20  # the wider pTHat window makes some events fall outside the slice


def test_same_seed_gives_identical_features_and_another_seed_differs(pool):
    task = gen.ChunkTask("ZZ4lep", 0, 8, master_seed=4, pileup_mu=20.0)
    first, again = gen.run_chunk(task, pool), gen.run_chunk(task, pool)
    other = gen.run_chunk(dataclasses.replace(task, master_seed=5), pool)

    np.testing.assert_array_equal(first.features, again.features)
    assert first.features.shape == (8, 44)
    assert not np.array_equal(first.features, other.features)


def test_worker_count_does_not_change_the_files(tmp_path, monkeypatch, pool):
    monkeypatch.setitem(PROCESSES, "ttbar_2lep", dataclasses.replace(PROCESSES["ttbar_2lep"], chunk_events=4))
    counts = {"ttbar_2lep": 10, "ZZ4lep": 3}
    outputs = {}
    for workers in (1, 2):
        outputs[workers] = gen.generate(
            counts, tmp_path / f"w{workers}", master_seed=11, pileup_mu=10.0, pool_size=40, workers=workers, pool=pool
        )

    for name in counts:
        one, two = read_events(tmp_path / "w1" / f"{name}.h5"), read_events(tmp_path / "w2" / f"{name}.h5")
        np.testing.assert_array_equal(one.features, two.features)
        assert len(one) == counts[name]
        assert json.loads(one.attrs["generator"])["chunk_events"] == PROCESSES[name].chunk_events

    manifest = json.loads(update_manifest(tmp_path / "w2", outputs[2], 1.0, 2).read_text())
    entry = manifest["files"]["ttbar_2lep.h5"]
    assert entry["events"] == 10 and entry["seed"] == 11
    assert entry["sha256"] == sha256_of(tmp_path / "w2" / "ttbar_2lep.h5")


def test_file_attributes_record_the_pythia_strings_and_l1_settings(tmp_path):
    outputs = gen.generate({"ttbar_2lep": 2}, tmp_path, master_seed=2, pileup_mu=0.0, pool_size=0)
    attrs = read_events(outputs[0].path).attrs

    generator = json.loads(attrs["generator"])
    assert "24:onIfAny = 11 13" in generator["process"]
    assert "Beams:eCM = 13600." in generator["common"]
    assert json.loads(attrs["l1_emulation"])["jet_radius"] == 0.4
    assert attrs["pileup_mu"] == 0.0 and attrs["seed"] == 2
