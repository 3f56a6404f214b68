"""Streaming calibration: chunk tallies merge exactly, and thresholds from the score tail equal full-sample ones."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from test_calibration_pipeline import SyntheticScorer, write_synthetic_samples

from gelato.calibration.config import DEFAULT_CONFIG, load_settings, settings_from_dict
from gelato.calibration.execution import fold_in_order
from gelato.calibration.pipeline import run_calibration
from gelato.calibration.rates import passes, summarize_threshold, threshold_for_rate, trigger_rate
from gelato.calibration.scoring import ScoreColumns
from gelato.calibration.tally import SampleTally, crop_score_axis, fine_score_edges, tally_chunk
from gelato.calibration.thresholds import TailTooShortError, compute_thresholds, flips_from_tail, summarize_from_tail
from gelato.hls.fixedpoint import FixedType

SCORE_TYPE = FixedType.parse("ap_ufixed<20,8>")
F_BC = 2544 * 11245.5


def reference_sample(n: int, seed: int, integer_weights: bool):
    """Discrete scores with many ties (both kinds), a vetoing menu, and weights."""
    rng = np.random.default_rng(seed)
    lsb = SCORE_TYPE.lsb
    emulated = np.floor(rng.exponential(0.5, n) / lsb / 64) * 64 * lsb
    float_ = emulated + rng.integers(-3, 4, n) * lsb
    weights = rng.integers(1, 4, n).astype(np.float64) if integer_weights else rng.uniform(0.5, 2.0, n)
    menu = rng.random(n) < 0.02
    return emulated, float_, weights, menu


def chunk_tallies(emulated, float_, weights, menu, chunk: int, keep: int) -> list[SampleTally]:
    edges = fine_score_edges(SCORE_TYPE.lsb, SCORE_TYPE.max_value)
    out = []
    for start in range(0, len(weights), chunk):
        rows = slice(start, start + chunk)
        n = len(weights[rows])
        columns = ScoreColumns(float_[rows], emulated[rows], weights[rows], menu[rows], menu[rows, None],
                               np.zeros(44, np.int64), "emulated")
        out.append(tally_chunk("zerobias", np.zeros((n, 44), np.float32), columns, edges, ["L1_X"], (), keep))
    return out


def merged(tallies, order=None) -> SampleTally:
    order = range(len(tallies)) if order is None else order
    return fold_in_order(((i, tallies[i]) for i in order), lambda a, b: (a.add(b), a)[1])


@pytest.mark.parametrize("chunk, keep", [(997, 16), (5000, 64), (20000, 20000)])
def test_tail_thresholds_equal_full_sample_thresholds_exactly(chunk, keep):
    emulated, float_, weights, menu = reference_sample(20000, seed=3, integer_weights=True)
    settings = load_settings()
    reference = merged(chunk_tallies(emulated, float_, weights, menu, chunk, keep))
    streamed = compute_thresholds(settings, reference, SCORE_TYPE)

    for kind, scores in (("emulated", emulated), ("float", float_)):
        for rate in settings.rates_hz:
            full = threshold_for_rate(scores, weights, rate, F_BC, SCORE_TYPE.lsb, SCORE_TYPE.min_value, vetoed=menu)
            entry = streamed[kind][rate]
            assert {k: entry[k] for k in full.as_dict()} == full.as_dict()
            accepted = passes(scores, full.threshold)
            assert (entry["total_rate_hz"], entry["n_pass_total"]) == trigger_rate(accepted, weights, F_BC)[::3]
            overlap = trigger_rate(accepted & menu, weights, F_BC)
            assert (entry["overlap_rate_hz"], entry["n_overlap"]) == (overlap[0], overlap[3])


def test_flips_from_the_tail_equal_a_count_over_every_event():
    emulated, float_, weights, menu = reference_sample(20000, seed=5, integer_weights=True)
    settings = load_settings()
    reference = merged(chunk_tallies(emulated, float_, weights, menu, 1500, 32))
    thresholds = compute_thresholds(settings, reference, SCORE_TYPE)
    flips = flips_from_tail(settings, reference, thresholds)
    for rate in settings.rates_hz:
        emu = passes(emulated, thresholds["emulated"][rate]["threshold"])
        flt = passes(float_, thresholds["float"][rate]["threshold"])
        assert flips[rate]["n_flips"] == np.count_nonzero(emu != flt)
        assert flips[rate]["emulated_only"] == np.count_nonzero(emu & ~flt)


def test_merging_in_index_order_gives_the_same_bits_whatever_order_chunks_arrive():
    emulated, float_, weights, menu = reference_sample(30000, seed=11, integer_weights=False)
    in_order = merged(chunk_tallies(emulated, float_, weights, menu, 2000, 64))
    shuffled = merged(chunk_tallies(emulated, float_, weights, menu, 2000, 64),
                      order=np.random.default_rng(1).permutation(15))
    assert in_order.sum_weights == shuffled.sum_weights and in_order.sum_w2 == shuffled.sum_w2
    for kind in ("float", "emulated"):
        np.testing.assert_array_equal(in_order.score_weights[kind], shuffled.score_weights[kind])
        np.testing.assert_array_equal(in_order.tail.scores[kind], shuffled.tail.scores[kind])
    settings = load_settings()
    assert compute_thresholds(settings, in_order, SCORE_TYPE) == compute_thresholds(settings, shuffled, SCORE_TYPE)


def test_weighted_thresholds_agree_with_the_full_sample_to_rounding():
    emulated, float_, weights, menu = reference_sample(20000, seed=13, integer_weights=False)
    settings = load_settings()
    streamed = compute_thresholds(settings, merged(chunk_tallies(emulated, float_, weights, menu, 3000, 64)),
                                  SCORE_TYPE)
    for rate in settings.rates_hz:
        full = threshold_for_rate(emulated, weights, rate, F_BC, SCORE_TYPE.lsb, vetoed=menu)
        assert streamed["emulated"][rate]["threshold"] == full.threshold
        assert streamed["emulated"][rate]["n_pass"] == full.n_pass
        assert streamed["emulated"][rate]["rate_hz"] == pytest.approx(full.rate_hz, rel=1e-12)


def test_too_short_a_tail_is_refused_with_what_to_change():
    emulated, float_, weights, menu = reference_sample(20000, seed=17, integer_weights=True)
    reference = merged(chunk_tallies(emulated, float_, weights, menu, 10000, 1))
    with pytest.raises(TailTooShortError, match="threshold_tail_events"):
        compute_thresholds(load_settings(), reference, SCORE_TYPE)


def test_score_counts_equal_a_histogram_of_every_event_and_crop_keeps_the_sum():
    emulated, float_, weights, menu = reference_sample(10000, seed=19, integer_weights=True)
    tally = merged(chunk_tallies(emulated, float_, weights, menu, 999, 16))
    edges = tally.score_edges
    expected = np.bincount(np.clip(np.searchsorted(edges, emulated, side="right") - 1, 0, len(edges) - 2),
                           minlength=len(edges) - 1)
    np.testing.assert_array_equal(tally.score_counts["emulated"], expected)
    cropped, cropped_edges = crop_score_axis(tally.score_weights["emulated"], edges, np.array([40, 80]))
    assert len(cropped) == len(cropped_edges) - 1 and cropped.sum() == weights.sum()
    np.testing.assert_array_equal(cropped_edges[1:], edges[40:81])


def test_summarize_threshold_matches_for_a_threshold_inside_the_tail():
    emulated, float_, weights, menu = reference_sample(8000, seed=23, integer_weights=True)
    reference = merged(chunk_tallies(emulated, float_, weights, menu, 800, 40))

    threshold = float(np.sort(emulated)[-20])
    full = summarize_threshold(emulated, weights, threshold, 1000, F_BC, vetoed=menu)
    assert summarize_from_tail(reference, "emulated", threshold, 1000, F_BC) == full


def test_a_failing_chunk_leaves_no_score_file(tmp_path):
    class FailingScorer(SyntheticScorer):
        calls = 0

        def emulated_scores(self, features):
            FailingScorer.calls += 1
            if FailingScorer.calls == 2:
                raise RuntimeError("emulation failed on the second chunk")
            return super().emulated_scores(features)

    samples = write_synthetic_samples(tmp_path / "samples", n_ref=3000, n_proc=100)
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data["chunk_events"] = 1000
    with pytest.raises(RuntimeError, match="second chunk"):
        run_calibration(settings_from_dict(data), FailingScorer(), samples, tmp_path / "build", {}, {})
    assert list((tmp_path / "build" / "scores").glob("*")) == []


def test_a_chunk_scored_before_the_thresholds_leaves_efficiencies_equal_to_the_direct_ones(tmp_path):
    from gelato.calibration.streaming import (
        DeferredEfficiency, PendingThresholds, ScorePass, plan_chunks, read_chunk, score_chunk,
    )
    from gelato.calibration.tally import fine_score_edges

    settings = load_settings()
    sample = write_synthetic_samples(tmp_path, n_ref=2000, n_proc=1500)["ttbar_1lep"]
    scorer = SyntheticScorer()
    edges = fine_score_edges(scorer.score_type.lsb, scorer.score_type.max_value)
    thresholds = {kind: {rate: {"threshold": 2.0 + rate / 2000} for rate in settings.rates_hz}
                  for kind in ("float", "emulated")}
    task = plan_chunks("ttbar_1lep", sample, settings.chunk_events)[0]
    pending = PendingThresholds()

    def run(given):
        job = (task, ScorePass(settings, edges, None, None, True, True, thresholds=given))
        return score_chunk(job, read_chunk(job, scorer), scorer)

    tally, _, deferred = run(pending)
    assert isinstance(deferred, DeferredEfficiency)
    pending.set(thresholds)
    for hists, flips in (deferred.at(settings.rates_hz, thresholds), run(pending)[2]):
        direct_hists, direct_flips = run(thresholds)[2]
        assert flips == direct_flips and hists.w_pass == direct_hists.w_pass
        for name in direct_hists.totals:
            np.testing.assert_array_equal(hists.totals[name], direct_hists.totals[name])
            for key in direct_hists.keys:
                np.testing.assert_array_equal(hists.passed[name][key], direct_hists.passed[name][key])
    assert tally.n_events == run(thresholds)[0].n_events == 1500
