"""Tests of the findings section: each statistic on constructed inputs with a known answer, and the verdict rules."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from scipy.stats import spearmanr

from gelato.calibration import findings_efficiency as feff
from gelato.calibration import findings_kinematics as fkin
from gelato.calibration.efficiency import PT_EDGES
from gelato.calibration.findings import (
    EventColumns, FindingSettings, event_columns, load_event_columns, measure_findings,
)
from gelato.calibration.findings_report import findings_markdown
from gelato.calibration.resampling import (
    INCONCLUSIVE, NO, YES, Estimate, Ranked, all_of, bootstrap, interval_verdict, majority_of, significance_verdict,
    weighted_mean, weighted_spearman,
)
from gelato.calibration.turnon import dip_significance, efficiency_curve, erf_turn_on, fit_line, fit_turn_on

FAST = FindingSettings(n_resamples=30)
PROCESSES = ("jz1", "jz2", "jz4", "ttbar_1lep", "ttbar_2lep", "ZZ4lep")


def _spearman(x, y, w=None):
    return weighted_spearman(Ranked(x), Ranked(y), np.ones(len(x)) if w is None else np.asarray(w, float))


def _estimate(lo95, hi95, value=None):
    value = 0.5 * (lo95 + hi95) if value is None else value
    return Estimate(value, lo95, hi95, lo95, hi95)


def _exact_curve(pass_fractions, n_per_bin=400, edges=PT_EDGES):
    """Events at bin centres, with exactly round(f * n) passing in each bin."""
    centers = 0.5 * (edges[1:] + edges[:-1])
    values, passed = [], []
    for c, f in zip(centers, pass_fractions):
        k = int(round(f * n_per_bin))
        values += [c] * n_per_bin
        passed += [True] * k + [False] * (n_per_bin - k)
    values = np.array(values)
    return efficiency_curve(values, np.array(passed), np.ones(len(values)), edges)


# --- rank correlation and quantiles --------------------------------------------------


def test_spearman_of_a_monotone_relation_is_one_and_of_a_decreasing_one_minus_one():
    x = np.linspace(1.0, 50.0, 200)
    assert _spearman(x, np.exp(x / 10)) == pytest.approx(1.0, abs=1e-12)
    assert _spearman(x, -x**3) == pytest.approx(-1.0, abs=1e-12)


def test_spearman_equals_scipy_with_ties():
    rng = np.random.default_rng(3)
    x, y = rng.integers(0, 8, 500).astype(float), rng.integers(0, 5, 500).astype(float) + 0.1 * rng.integers(0, 2, 500)
    assert _spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_integer_weights_act_as_repeated_events_in_spearman_and_quantiles():
    rng = np.random.default_rng(4)
    x, y, k = rng.normal(size=60), rng.normal(size=60), rng.integers(1, 4, 60)
    repeated_x, repeated_y = np.repeat(x, k), np.repeat(y, k)
    assert _spearman(x, y, k) == pytest.approx(_spearman(repeated_x, repeated_y), abs=1e-12)
    assert Ranked(x).quantile(k.astype(float), 0.9) == np.quantile(repeated_x, 0.9, method="inverted_cdf")


def test_weighted_quantile_matches_numpy_inverted_cdf():
    values = np.array([5.0, 1.0, 3.0, 3.0, 9.0, 7.0, 2.0])
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        assert Ranked(values).quantile(np.ones(7), q) == np.quantile(values, q, method="inverted_cdf")


# --- bootstrap --------------------------------------------------------------------------


def _mean_builder(columns):
    return lambda w: weighted_mean(columns[0], w)


def test_bootstrap_is_reproducible_with_its_seed_and_changes_with_another():
    values = np.random.default_rng(5).exponential(size=2000)
    a = bootstrap(_mean_builder, [values], np.ones(2000), n_resamples=50, seed=11)
    b = bootstrap(_mean_builder, [values], np.ones(2000), n_resamples=50, seed=11)
    c = bootstrap(_mean_builder, [values], np.ones(2000), n_resamples=50, seed=12)
    assert a == b
    assert a != c
    assert a.value == pytest.approx(values.mean())
    assert a.lo95 <= a.lo68 < a.value < a.hi68 <= a.hi95


def test_bootstrap_interval_of_a_mean_has_the_standard_error_width_also_when_subsampled():
    values = np.random.default_rng(6).normal(size=20000)
    se = values.std() / np.sqrt(len(values))
    for max_events in (20000, 2000):  # direct, and subsample of 2000 rescaled by sqrt(2000/20000)
        est = bootstrap(_mean_builder, [values], np.ones(len(values)), n_resamples=400, seed=1, max_events=max_events)
        assert 0.5 * (est.hi68 - est.lo68) == pytest.approx(se, rel=0.2)


def test_bootstrap_of_an_undefined_statistic_gives_an_infinite_interval():
    est = bootstrap(lambda cols: lambda w: float("nan"), [np.zeros(20)], np.ones(20), n_resamples=20)
    assert (est.lo95, est.hi95) == (-np.inf, np.inf)
    assert interval_verdict(est, 0.0) == INCONCLUSIVE


# --- verdict rules at their boundaries ---------------------------------------------------


def test_interval_verdict_at_the_boundary():
    assert interval_verdict(_estimate(1e-9, 0.4), 0.0) == YES
    assert interval_verdict(_estimate(0.0, 0.4), 0.0) == INCONCLUSIVE  # touching from inside is not enough
    assert interval_verdict(_estimate(-0.4, 0.0), 0.0) == NO  # touching from outside counts as outside
    assert interval_verdict(_estimate(-0.1, 0.1), 0.0) == INCONCLUSIVE
    assert interval_verdict(_estimate(-0.2, 0.2), -0.5, 0.5) == YES
    assert interval_verdict(_estimate(0.5, 0.9), -0.5, 0.5) == NO


def test_significance_verdict_thresholds():
    assert significance_verdict(3.0) == YES
    assert significance_verdict(2.999) == INCONCLUSIVE
    assert significance_verdict(2.0) == INCONCLUSIVE
    assert significance_verdict(1.999) == NO
    assert significance_verdict(float("nan")) == INCONCLUSIVE


def test_majority_and_all_combinations():
    assert majority_of([YES, YES, NO]) == YES
    assert majority_of([YES, NO, INCONCLUSIVE, NO]) == NO  # even with the open one: 2 of 4 is not more than half
    assert majority_of([YES, INCONCLUSIVE, NO]) == INCONCLUSIVE
    assert majority_of([YES, YES, NO, NO]) == NO
    assert all_of([YES, YES]) == YES
    assert all_of([YES, INCONCLUSIVE]) == INCONCLUSIVE
    assert all_of([YES, INCONCLUSIVE, NO]) == NO


def test_universal_trend_classes_and_verdict():
    assert fkin.trend_class(_estimate(0.11, 0.3), 0.1) == "up"
    assert fkin.trend_class(_estimate(0.1, 0.3), 0.1) == "open"
    assert fkin.trend_class(_estimate(-0.05, 0.05), 0.1) == "flat"
    assert fkin.trend_class(_estimate(-0.5, -0.2), 0.1) == "down"
    assert fkin.universal_trend_verdict(["up", "up", "up"]) == NO
    assert fkin.universal_trend_verdict(["up", "up", "open"]) == INCONCLUSIVE
    assert fkin.universal_trend_verdict(["up", "flat", "open"]) == YES
    assert fkin.universal_trend_verdict(["flat", "flat"]) == INCONCLUSIVE


# --- shapes of efficiency curves -------------------------------------------------------------


def test_a_step_turn_on_fits_its_50_percent_point():
    pt = np.random.default_rng(7).uniform(0.0, 200.0, 20000)
    fit = fit_turn_on(efficiency_curve(pt, pt > 80.0, np.ones(len(pt)), PT_EDGES))
    assert fit.ok
    assert abs(fit.x50 - 80.0) < 5.0  # the step sits on a bin edge: between the centres 75 and 85
    assert fit.plateau == pytest.approx(1.0, abs=0.01)
    assert fit.width < 10.0


def test_an_erf_efficiency_is_recovered_within_its_errors():
    rng = np.random.default_rng(8)
    pt = rng.uniform(0.0, 300.0, 60000)
    passed = rng.random(len(pt)) < erf_turn_on(pt, 0.8, 120.0, 25.0)
    fit = fit_turn_on(efficiency_curve(pt, passed, np.ones(len(pt)), PT_EDGES))
    for value, err, truth in ((fit.plateau, fit.plateau_err, 0.8), (fit.x50, fit.x50_err, 120.0),
                              (fit.width, fit.width_err, 25.0)):
        assert abs(value - truth) < 4 * err
    assert feff.turn_on_verdict(fit, 3.0) == YES


def test_a_dip_is_flagged_and_a_plain_turn_on_is_not():
    n_bins = len(PT_EDGES) - 1
    plain = np.clip((np.arange(n_bins) - 5) / 5.0, 0.0, 0.9)
    dipped = plain.copy()
    dipped[:3] = 0.5  # starts finite (0-30 GeV), drops to 0 at 30-60 GeV, then the turn-on
    assert dip_significance(_exact_curve(dipped)).significance >= 3.0
    assert dip_significance(_exact_curve(plain)).significance == 0.0
    dip = dip_significance(_exact_curve(dipped))
    assert dip.start < dip.bottom < dip.recovery
    assert dip_significance(_exact_curve(dipped), bottom_below=30.0).significance == 0.0  # dip above the limit ignored


def test_a_flat_efficiency_has_a_slope_compatible_with_zero():
    rng = np.random.default_rng(9)
    pt = rng.uniform(0.0, 100.0, 20000)
    line = fit_line(efficiency_curve(pt, rng.random(len(pt)) < 0.3, np.ones(len(pt)), PT_EDGES))
    assert line.ok and abs(line.slope) < 3 * line.slope_err
    exact = fit_line(_exact_curve(np.full(len(PT_EDGES) - 1, 0.25)))
    assert exact.slope == pytest.approx(0.0, abs=1e-12) and exact.slope_err > 0


def test_a_linear_efficiency_gives_its_slope():
    centers = 0.5 * (PT_EDGES[1:] + PT_EDGES[:-1])
    line = fit_line(_exact_curve(0.1 + 0.0008 * centers, n_per_bin=1000))  # 0.1 to 0.9 over 0-1000 GeV
    assert line.slope == pytest.approx(0.0008, rel=0.02)


def test_largest_fall_is_zero_for_a_rising_profile_and_positive_for_a_drop():
    up = np.full(4, 0.1)
    assert fkin.largest_fall(np.array([1.0, 2.0, 3.0, 4.0]), up, up)[0] == 0.0
    z, i, j = fkin.largest_fall(np.array([1.0, 3.0, 2.0, 4.0]), up, up)
    assert (i, j) == (1, 2) and z == pytest.approx(1.0 / np.hypot(0.1, 0.1))


# --- the findings on constructed events ----------------------------------------------------------


def _columns(process, n_jets, score, jet_pt=None, mjj=None, muon_pt=None, muon_eta=None):
    n = len(score)
    jet_pt = np.full((n, 2), 50.0) if jet_pt is None else jet_pt
    mjj = np.full(n, 100.0) if mjj is None else mjj
    muon_pt = np.zeros((n, 4)) if muon_pt is None else muon_pt
    muon_eta = np.zeros((n, 4)) if muon_eta is None else muon_eta
    score = np.asarray(score, float)
    return EventColumns(process, score, np.ones(n), jet_pt, np.asarray(n_jets), mjj, muon_pt, muon_eta)


def test_top_scores_at_six_jets_shift_the_multiplicity_by_its_distance_to_the_mean():
    n_jets = np.repeat(np.arange(7), 100)
    shift = fkin.top_multiplicity_shift(_columns("jz2", n_jets, score=n_jets + 0.001 * np.arange(700)), FAST)
    assert shift.value == pytest.approx(6.0 - 3.0)


def test_low_multiplicity_jz1_fraction_above_the_paper_cut():
    n_jets = np.repeat([3, 6], 500)
    for low_score, verdict in ((0.5, YES), (2.0, NO)):
        score = np.where(n_jets < 6, low_score, 5.0)
        row = fkin.score_vs_multiplicity({"jz1": _columns("jz1", n_jets, score)}, FAST)[1]
        assert row["id"] == "2b" and row["verdict"] == verdict
        assert row["per_process"]["jz1"]["value"] == (0.0 if low_score < 1 else 1.0)


def test_endcap_muon_slopes_flat_for_three_ranks_and_rising_for_the_fourth():
    rng = np.random.default_rng(10)
    n = 20000
    muon_pt, muon_eta = rng.uniform(5.0, 60.0, (n, 4)), np.full((n, 4), 1.5)
    score = np.where(muon_pt[:, 3] > 30.0, 10.0, 0.0) + rng.random(n)
    row = feff.endcap_muons({"ZZ4lep": _columns("ZZ4lep", np.zeros(n), score, muon_pt=muon_pt, muon_eta=muon_eta)},
                            {1000: 5.0}, FAST)
    assert [row["per_process"][f"muon{r}"]["verdict"] for r in range(4)] == [YES, YES, YES, YES]
    assert row["verdict"] == YES
    muon_eta[:, 3] = 0.5  # all fourth muons in the barrel: nothing to fit, cannot be decided
    row = feff.endcap_muons({"ZZ4lep": _columns("ZZ4lep", np.zeros(n), score, muon_pt=muon_pt, muon_eta=muon_eta)},
                            {1000: 5.0}, FAST)
    assert row["per_process"]["muon3"]["verdict"] == INCONCLUSIVE


def test_ranking_puts_the_most_efficient_process_first_and_decides_the_jz4_claim():
    cols = {p: _columns(p, np.zeros(1000), np.where(np.arange(1000) < k, 10.0, 0.0))
            for p, k in (("jz1", 10), ("jz4", 900), ("ZZ4lep", 300))}
    row = feff.process_ranking(cols, {500: 5.0, 1000: 1.0}, FAST, {})
    assert [e["process"] for e in row["details"]["ranking"]["500"]] == ["jz4", "ZZ4lep", "jz1"]
    assert row["details"]["ranking"]["500"][0]["value"] == 0.9
    assert row["verdict"] == YES
    cols["ZZ4lep"] = _columns("ZZ4lep", np.zeros(1000), np.full(1000, 10.0))
    assert feff.process_ranking(cols, {500: 5.0}, FAST, {})["verdict"] == NO


def _synthetic_features(rng, n, hardness):
    features = np.zeros((n, 44), np.float32)
    pts = np.sort(rng.exponential(40.0 * hardness, (n, 6)) + 25.0, axis=1)[:, ::-1]
    pts[rng.random((n, 6)) < 0.2] = 0.0
    features[:, 0:18:3] = np.sort(pts, axis=1)[:, ::-1]
    features[:, 1:18:3], features[:, 2:18:3] = rng.normal(0, 2, (n, 6)), rng.uniform(-3, 3, (n, 6))
    features[:, 30:42:3] = np.sort(rng.exponential(15.0, (n, 4)), axis=1)[:, ::-1]
    features[:, 31:42:3] = rng.normal(0, 1.5, (n, 4))
    return features


def test_all_findings_on_synthetic_samples_give_every_row_a_verdict_and_render():
    rng = np.random.default_rng(12)
    cols = {}
    for i, p in enumerate(PROCESSES):
        features = _synthetic_features(rng, 400, 1.0 + i)
        cols[p] = event_columns(p, features, features[:, 0] / 10.0 + rng.exponential(3.0, 400))
    result = measure_findings(cols, {500: 40.0, 1000: 30.0}, FAST, {p: f"plots/score_{p}.png" for p in PROCESSES})

    assert [r["id"] for r in result["findings"]] == ["1a", "1b", "1c", "2a", "2b", "3a", "3b", "4a", "4b", "5", "6"]
    assert all(r["verdict"] in (YES, NO, INCONCLUSIVE) for r in result["findings"])
    assert result["findings"][0]["verdict"] == YES  # the score was built to rise with the leading jet pT
    text = findings_markdown(json.loads(json.dumps(result)))
    assert "| # | paper's finding | statistic (uncertainty) | value per process | holds? |" in text
    assert "[jz4](plots/score_jz4.png)" in text


def test_event_columns_are_read_from_a_score_file(tmp_path):
    rng = np.random.default_rng(13)
    features = _synthetic_features(rng, 50, 1.0)
    path = tmp_path / "jz2.h5"
    with h5py.File(path, "w") as f:
        f["features"], f["score_emulated"], f["weight"] = features, np.arange(50.0), np.full(50, 2.0)
        f.attrs["process"] = "jz2"
    cols = load_event_columns(path, chunk_events=16)
    assert cols.process == "jz2" and len(cols) == 50
    np.testing.assert_array_equal(cols.jet_pt[:, 0], features[:, 0])
    np.testing.assert_array_equal(cols.n_jets, np.count_nonzero(features[:, 0:18:3] > 0, axis=1))
    np.testing.assert_array_equal(cols.weight, np.full(50, 2.0))
    with h5py.File(tmp_path / "bad.h5", "w") as f:
        f["features"] = features
    with pytest.raises(ValueError, match="bad.h5.*score_emulated"):
        load_event_columns(tmp_path / "bad.h5")


def test_gelato_findings_cli_writes_the_page_from_scores_and_summary(tmp_path, capsys):
    from gelato.cli import main

    rng = np.random.default_rng(14)
    (tmp_path / "build" / "scores").mkdir(parents=True)
    for i, p in enumerate(PROCESSES):
        features = _synthetic_features(rng, 120, 1.0 + i)
        with h5py.File(tmp_path / "build" / "scores" / f"{p}.h5", "w") as f:
            f["features"], f["weight"] = features, np.ones(120)
            f["score_emulated"] = features[:, 0] / 10.0 + rng.exponential(3.0, 120)
            f.attrs["process"] = p
    reports = tmp_path / "reports"
    reports.mkdir()
    summary = {"efficiencies": {"emulated": {p: {} for p in PROCESSES}},
               "thresholds": {"emulated": {"500": {"threshold": 40.0}, "1000": {"threshold": 30.0}}}}
    (reports / "summary.json").write_text(json.dumps(summary))

    args = ["findings", "--build", str(tmp_path / "build"), "--reports", str(reports), "--resamples", "10"]
    assert main(args) == 0
    assert "holds?" in (reports / "findings.md").read_text()
    assert [r["id"] for r in json.loads((reports / "findings.json").read_text())["findings"]][-1] == "6"
    assert main([*args[:3], "--reports", str(tmp_path / "nowhere")]) == 2
    assert "summary.json" in capsys.readouterr().err


def test_no_dip_is_only_claimed_where_a_half_efficiency_dip_would_have_shown():
    flat = np.full(len(PT_EDGES) - 1, 0.4)
    sensitive = feff.dip_entry(_exact_curve(flat, n_per_bin=400), 100.0, 0.4, FAST)
    insensitive = feff.dip_entry(_exact_curve(flat, n_per_bin=5), 100.0, 0.4, FAST)
    assert sensitive["significance"] == 0.0 and sensitive["verdict"] == NO
    assert insensitive["sensitivity_sigma"] < 3.0 and insensitive["verdict"] == INCONCLUSIVE
    assert feff.any_rate([NO, YES]) == YES
    assert feff.any_rate([NO, NO]) == NO
    assert feff.any_rate([NO, INCONCLUSIVE]) == INCONCLUSIVE


def test_bootstrap_of_a_handful_of_events_gives_no_interval_and_empty_processes_stay_inconclusive():
    est = bootstrap(_mean_builder, [np.arange(19.0)], np.ones(19), n_resamples=20)
    assert est.value == 9.0 and (est.lo95, est.hi95) == (-np.inf, np.inf)
    empty = event_columns("jz4", np.zeros((0, 44), np.float32), np.zeros(0))
    result = measure_findings({"jz4": empty}, {500: 1.0}, FAST)
    assert {r["verdict"] for r in result["findings"]} == {INCONCLUSIVE}


def test_a_hump_in_the_jz4_score_profile_is_non_monotonic_and_a_rising_one_is_not():
    rng = np.random.default_rng(15)
    pt = rng.uniform(400.0, 800.0, 4000)
    jet_pt = np.stack([pt, 0.5 * pt], axis=1)
    noise = rng.normal(0.0, 1.0, len(pt))
    rising = _columns("jz4", np.full(len(pt), 6), pt / 10.0 + noise, jet_pt=jet_pt)
    hump = _columns("jz4", np.full(len(pt), 6), 100.0 - ((pt - 600.0) / 20.0) ** 2 + noise, jet_pt=jet_pt)
    assert fkin.score_vs_jet_pt({"jz4": rising}, FAST)[2]["verdict"] == NO
    row = fkin.score_vs_jet_pt({"jz4": hump}, FAST)[2]
    assert row["id"] == "1c" and row["verdict"] == YES


def test_passing_events_at_low_mjj_make_the_median_difference_negative():
    mjj = np.concatenate([np.full(500, 100.0), np.full(500, 900.0)])
    score = np.concatenate([np.full(500, 10.0), np.full(500, 1.0)])  # the low-mjj half passes
    cols = {"jz2": _columns("jz2", np.full(1000, 4), score, mjj=mjj)}
    row = fkin.score_vs_mjj(cols, {1000: 5.0}, FAST)[1]
    assert row["per_process"]["jz2"]["value"] == -800.0 and row["verdict"] == YES
    assert row["details"]["mjj_quartiles"]["jz2"]["1000"]["pass"]["median"] == 100.0


def test_a_median_difference_resting_on_one_passing_event_gets_no_interval():
    mjj = np.concatenate([np.full(1, 100.0), np.full(999, 900.0)])
    score = np.concatenate([np.full(1, 10.0), np.full(999, 1.0)])  # one event passes
    cols = {"jz1": _columns("jz1", np.full(1000, 4), score, mjj=mjj)}
    entry = fkin.score_vs_mjj(cols, {1000: 5.0}, FAST)[1]["per_process"]["jz1"]
    assert entry["value"] == -800.0 and entry["verdict"] == INCONCLUSIVE
