"""End-to-end calibration on synthetic events and a synthetic scorer: summary.json, menu override, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from gelato import features as F
from gelato.calibration.config import DEFAULT_CONFIG, load_settings, settings_from_dict
from gelato.calibration.pipeline import run_calibration
from gelato.calibration.report import build_summary, write_report
from gelato.cli import main
from gelato.hls.fixedpoint import FixedType
from gelato.io import write_events

RATES = ("500", "1000", "2000", "3000", "4000", "5000")


def synthetic_events(n: int, rng: np.random.Generator, pt_scale: float) -> np.ndarray:
    """Events that look like L1 objects: pT-ordered, zero-padded jets, taus, muons and MET."""
    x = np.zeros((n, F.N_FEATURES), np.float32)
    for block, count, scale, mean_mult in ((F.jets(x), F.N_JETS, pt_scale, 3.0), (F.taus(x), F.N_TAUS, 15.0, 0.7),
                                           (F.muons(x), F.N_MUONS, 8.0, 0.4)):
        pt = -np.sort(-rng.exponential(scale, (n, count)), axis=1)
        mult = np.minimum(rng.poisson(mean_mult, n), count)
        pt[np.arange(count)[None, :] >= mult[:, None]] = 0.0
        block[:, :, 0] = pt
        block[:, :, 1] = np.where(pt > 0, rng.uniform(-2.5, 2.5, (n, count)), 0.0)
        block[:, :, 2] = np.where(pt > 0, rng.uniform(-np.pi, np.pi, (n, count)), 0.0)
    F.met(x)[:, 0] = rng.exponential(20.0, n)
    F.met(x)[:, 1] = rng.uniform(-np.pi, np.pi, n)
    return x


class SyntheticScorer:
    """A stand-in for the firmware emulation: score grows with the scalar jet-pT sum and MET."""

    score_type = FixedType.parse("ap_ufixed<18,10>")

    def float_scores(self, features: np.ndarray) -> np.ndarray:
        ht = F.jets(features)[:, :, 0].sum(axis=1).astype(np.float64)
        return (ht / 64.0) ** 2 + (F.met(features)[:, 0].astype(np.float64) / 128.0) ** 2

    def emulated_scores(self, features: np.ndarray) -> np.ndarray:
        lsb = self.score_type.lsb
        return np.floor(self.float_scores(features) / lsb) * lsb

    def scaled_features(self, features: np.ndarray) -> np.ndarray:
        return (features * np.ldexp(1.0, -np.asarray(F.SEED_SHIFTS))).astype(np.float32)

    def input_saturation(self, features: np.ndarray) -> np.ndarray:
        return np.count_nonzero(np.abs(features) > 400.0, axis=0).astype(np.int64)


def write_synthetic_samples(folder: Path, n_ref: int = 40000, n_proc: int = 3000, menu_in_file: bool = False) -> dict:
    rng = np.random.default_rng(7)
    settings = load_settings()
    paths = {}
    for i, process in enumerate(settings.all_processes):
        n = n_ref if process == settings.reference_process else n_proc
        x = synthetic_events(n, rng, pt_scale=10.0 if process == settings.reference_process else 25.0 + 10 * i)
        menu = np.zeros(n, bool) if menu_in_file and process == settings.reference_process else None
        paths[process] = write_events(folder / f"{process}.h5", x, weights=np.ones(n), attrs={"process": process},
                                      menu_pass=menu)
    return paths


def few_plot_settings():
    """The default settings with a handful of plots, to keep the test fast."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["plots"] = {"efficiency_features": ["jet0_pt"], "extra_efficiency_features": {"ZZ4lep": ["muon3_pt_endcap"]},
                     "score_vs_features": ["n_jets"]}
    return settings_from_dict(data)


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory):
    root = tmp_path_factory.mktemp("calib")
    samples = write_synthetic_samples(root / "samples")
    settings = few_plot_settings()
    result = run_calibration(settings, SyntheticScorer(), samples, root / "build", {"csim_vs_emulation": {"events": 0}}, {})
    summary = write_report(result, root / "reports")
    return root, settings, result, summary


def test_summary_json_has_the_documented_keys(calibrated):
    root, _, _, _ = calibrated
    summary = json.loads((root / "reports" / "summary.json").read_text())
    assert {"thresholds", "efficiencies", "bit_exact", "settings", "saturation"} <= set(summary)
    for kind in ("float", "emulated"):
        assert tuple(summary["thresholds"][kind]) == RATES
        for entry in summary["thresholds"][kind].values():
            assert {"threshold", "rate_hz", "n_pass", "rate_lo68_hz", "rate_hi68_hz", "rate_lo95_hz", "rate_hi95_hz"} <= set(entry)
            assert entry["rate_hz"] <= entry["target_rate_hz"]
            assert entry["rate_lo68_hz"] <= entry["rate_hz"] <= entry["rate_hi68_hz"]
        assert set(summary["efficiencies"][kind]) == {"jz1", "jz2", "jz4", "ttbar_1lep", "ttbar_2lep", "ZZ4lep"}
        for by_rate in summary["efficiencies"][kind].values():
            assert tuple(by_rate) == RATES
            for e in by_rate.values():
                assert 0.0 <= e["lo"] <= e["efficiency"] <= e["hi"] <= 1.0
    assert summary["settings"]["bunch_crossing_rate_hz"] == 2544 * 11245.5
    assert summary["settings"]["rule"] == "pass if score >= threshold"
    assert len(summary["saturation"]["zerobias"]["per_feature"]) == 44


def test_thresholds_are_values_of_the_score_type_and_decrease_with_rate(calibrated):
    _, settings, result, _ = calibrated
    lsb = SyntheticScorer.score_type.lsb
    thresholds = [result.thresholds["emulated"][r]["threshold"] for r in settings.rates_hz]
    assert all(t / lsb == int(t / lsb) for t in thresholds)
    assert thresholds == sorted(thresholds, reverse=True)


def test_efficiencies_rise_with_rate(calibrated):
    _, _, _, summary = calibrated
    effs = [summary["efficiencies"]["emulated"]["jz4"][r]["efficiency"] for r in RATES]
    assert effs == sorted(effs) and effs[-1] > effs[0]


def test_report_links_exist(calibrated):
    root, _, _, _ = calibrated
    index = (root / "reports" / "index.md").read_text()
    links = [part.split(")")[0] for part in index.split("](")[1:]]
    missing = [link for link in links if not (root / "reports" / link).exists() and not link.startswith("csim")]
    assert links and missing == []
    assert not list((root / "reports").glob(".calibration-*"))


def test_rerun_reuses_scores_and_gives_identical_summary(calibrated):
    root, settings, _, summary = calibrated
    samples = {p: root / "samples" / f"{p}.h5" for p in settings.all_processes}
    before = (root / "build" / "scores" / "zerobias.h5").stat().st_mtime_ns
    result = run_calibration(settings, SyntheticScorer(), samples, root / "build", {"csim_vs_emulation": {"events": 0}}, {})
    again = build_summary(result)
    assert (root / "build" / "scores" / "zerobias.h5").stat().st_mtime_ns == before
    from_result = {k: v for k, v in summary.items() if k != "synthesis"}  # synthesis: read from synth.json by write_report
    from_result["bit_exact"] = {k: v for k, v in summary["bit_exact"].items() if k != "three_way"}  # bitexact.json
    assert json.dumps(again, sort_keys=True, default=str) == json.dumps(from_result, sort_keys=True, default=str)


def test_menu_decision_in_event_file_overrides_emulated_menu(tmp_path):
    samples = write_synthetic_samples(tmp_path / "samples", n_ref=5000, n_proc=500, menu_in_file=True)
    result = run_calibration(load_settings(), SyntheticScorer(), samples, tmp_path / "build", {}, {})
    reference = result.scored["zerobias"]
    assert reference.menu_source == "file:l1_menu_pass"
    assert reference.menu_used_n == 0 < reference.menu_emulated_n
    assert result.menu_rates["total"]["rate_hz"] == 0.0 < result.menu_rates["emulated_total"]["rate_hz"]
    for entry in result.thresholds["emulated"].values():  # nothing vetoed: unique rate == total rate
        assert entry["rate_hz"] == entry["total_rate_hz"]
    assert result.scored["jz1"].menu_source == "emulated"


def run_cli(tmp_path, samples_dir) -> int:
    model, config = tmp_path / "model.h5", tmp_path / "hls.yaml"
    model.write_bytes(b"x"), config.write_text("x: 1\n")
    return main(["calibrate", "--config", str(config), "--model", str(model), "--samples", str(samples_dir),
                 "--build", str(tmp_path / "build"), "--reports", str(tmp_path / "reports")])


def test_missing_sample_file_exits_2_naming_it(tmp_path, capsys):
    samples = write_synthetic_samples(tmp_path / "samples", n_ref=100, n_proc=10)
    samples["ttbar_2lep"].unlink()
    assert run_cli(tmp_path, tmp_path / "samples") == 2
    err = capsys.readouterr().err
    assert "ttbar_2lep.h5" in err and "missing" in err and "Traceback" not in err
    assert not (tmp_path / "reports").exists()


def test_wrong_feature_shape_exits_2_naming_file_and_dataset(tmp_path, capsys):
    write_synthetic_samples(tmp_path / "samples", n_ref=100, n_proc=10)
    with h5py.File(tmp_path / "samples" / "jz2.h5", "w") as f:
        f.create_dataset("features", data=np.zeros((5, 43), np.float32))
    assert run_cli(tmp_path, tmp_path / "samples") == 2
    err = capsys.readouterr().err
    assert "jz2.h5" in err and "features" in err and "Traceback" not in err


def test_menu_flag_with_wrong_length_exits_2_naming_it(tmp_path, capsys):
    write_synthetic_samples(tmp_path / "samples", n_ref=100, n_proc=10)
    with h5py.File(tmp_path / "samples" / "jz1.h5", "a") as f:
        f.create_dataset("l1_menu_pass", data=np.zeros(4, bool))
    assert run_cli(tmp_path, tmp_path / "samples") == 2
    err = capsys.readouterr().err
    assert "jz1.h5" in err and "l1_menu_pass" in err
