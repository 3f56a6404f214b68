"""The calibration pipeline: scores -> thresholds -> efficiencies -> plots -> reports (calibration stage).

:func:`run_calibration` does steps 3-9 of `gelato calibrate` given a scorer (the firmware
emulation) and the bit-exact result of the C-simulation, which :mod:`.commands` obtains
from ``gelato.hls``.  It is deterministic: the same inputs give the same numbers.

Physics numbers quoted as "the trigger" come from the emulated (bit-accurate) scores; the
float model's are computed with the same procedure and shown beside them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gelato.calibration.config import CalibrationSettings
from gelato.calibration.efficiency import DecisionKey, ProcessHistograms
from gelato.calibration.rates import PASS_RULE, passes, threshold_for_rate, trigger_rate
from gelato.calibration.scoring import (
    Names, ScoredSample, Scorer, existing_digest, input_digest, iter_score_file_features, load_scored_sample, score_sample,
)
from gelato.features import FEATURE_NAMES
from gelato.io import count_events

log = logging.getLogger(__name__)

KINDS = ("float", "emulated")

#: Factory of per-sample progress callbacks (the CLI passes tqdm bars): (label, total) -> (advance, close).
ProgressFactory = Callable[[str, int], tuple[Callable[[int], None], Callable[[], None]]]


@dataclass
class CalibrationResult:
    """Everything the report is made of."""

    settings: CalibrationSettings
    score_type: Any
    scored: dict[str, ScoredSample]
    thresholds: dict[str, dict[int, dict]]
    histograms: dict[str, ProcessHistograms]
    menu_rates: dict
    flips: dict[str, dict[int, dict]]
    bit_exact: dict
    score_edges: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)


def compute_scores(
    settings: CalibrationSettings,
    scorer: Scorer,
    samples: Mapping[str, Path],
    scores_dir: Path,
    digest_extra: dict,
    progress: ProgressFactory | None = None,
    names: Names = None,
) -> dict[str, Path]:
    """Write (or reuse, when inputs are unchanged) ``scores_dir/<process>.h5`` for every sample."""
    paths: dict[str, Path] = {}
    for process, sample in samples.items():
        out = scores_dir / f"{process}.h5"
        digest = input_digest(sample, {**digest_extra, "menu": settings.menu.as_config(),
                                       "use_file_decision": settings.menu.use_file_decision})
        if out.exists() and existing_digest(out) == digest:
            log.info("%s: reusing %s (same model, firmware config, menu and sample)", process, out)
        else:
            total = count_events(sample, names)
            advance, close = progress(f"score {process}", total) if progress else (None, lambda: None)
            try:
                score_sample(scorer, process, sample, out, settings.menu, settings.chunk_events, digest, names, advance)
            finally:
                close()
        paths[process] = out
    return paths


def compute_thresholds(settings: CalibrationSettings, reference: ScoredSample, score_type: Any) -> dict[str, dict[int, dict]]:
    """Thresholds for each score kind and target unique rate, with total and overlap rates."""
    f_bc, w, menu = settings.bunch_crossing_hz, reference.weights, reference.menu_pass
    out: dict[str, dict[int, dict]] = {}
    for kind in KINDS:
        scores, out[kind] = reference.scores(kind), {}
        for rate in settings.rates_hz:
            res = threshold_for_rate(scores, w, rate, f_bc, score_type.lsb, score_type.min_value, vetoed=menu)
            accepted = passes(scores, res.threshold)
            total, _, _, n_total = trigger_rate(accepted, w, f_bc)
            overlap, _, _, n_overlap = trigger_rate(accepted & menu, w, f_bc)
            entry = {**res.as_dict(), "threshold_code": int(round(res.threshold / score_type.lsb)),
                     "total_rate_hz": total, "n_pass_total": n_total, "overlap_rate_hz": overlap, "n_overlap": n_overlap}
            entry["warning"] = _low_count_warning(settings, kind, rate, res.n_pass, len(scores))
            if res.threshold > score_type.max_value:
                entry["warning"] = (f"{kind} {rate} Hz: threshold {res.threshold:g} is above the largest value of "
                                    f"{score_type} ({score_type.max_value:g}): the scores saturate; no setting reaches the target")
                log.warning(entry["warning"])
            out[kind][rate] = entry
    return out


def _low_count_warning(settings: CalibrationSettings, kind: str, rate: int, n_pass: int, n_ref: int) -> str | None:
    if n_pass >= settings.min_passing_events:
        return None
    needed = settings.min_passing_events * settings.bunch_crossing_hz / rate
    msg = (f"{kind} {rate} Hz: only {n_pass} of {n_ref} reference events pass; "
           f"~{needed:.2g} zero-bias events would give {settings.min_passing_events}")
    log.warning(msg)
    return msg


def compute_menu_rates(settings: CalibrationSettings, reference: ScoredSample) -> dict:
    """Rate of each emulated menu item and of the menu decision used on the reference sample."""
    f_bc, w = settings.bunch_crossing_hz, reference.weights
    items = {}
    for i, name in enumerate(reference.menu_item_names):
        rate, lo, hi, n = trigger_rate(reference.menu_items[:, i], w, f_bc)
        items[name] = {"rate_hz": rate, "lo68_hz": lo, "hi68_hz": hi, "n_pass": n}
    emulated = trigger_rate(reference.menu_items.any(axis=1), w, f_bc)
    used = trigger_rate(reference.menu_pass, w, f_bc)
    as_dict = lambda r: {"rate_hz": r[0], "lo68_hz": r[1], "hi68_hz": r[2], "n_pass": r[3]}  # noqa: E731
    return {"source": reference.menu_source, "items": items, "emulated_total": as_dict(emulated), "total": as_dict(used)}


def decision_flips(settings: CalibrationSettings, scored: Mapping[str, ScoredSample], thresholds: dict) -> dict:
    """Per sample and rate: events whose decision differs between float and emulated scores."""
    out: dict[str, dict[int, dict]] = {}
    for process, sample in scored.items():
        out[process] = {}
        for rate in settings.rates_hz:
            emu = passes(sample.score_emulated, thresholds["emulated"][rate]["threshold"])
            flt = passes(sample.score_float, thresholds["float"][rate]["threshold"])
            n_flip = int(np.count_nonzero(emu != flt))
            out[process][rate] = {"n_flips": n_flip, "n_events": len(sample),
                                  "fraction": n_flip / len(sample) if len(sample) else 0.0,
                                  "emulated_only": int(np.count_nonzero(emu & ~flt)),
                                  "float_only": int(np.count_nonzero(flt & ~emu))}
    return out


def score_axis(scored: Mapping[str, ScoredSample], thresholds: dict, lsb: float, n_bins: int = 60) -> np.ndarray:
    """Score bin edges for histograms: 0, then log-spaced edges over the bulk and every threshold.

    The first bin [0, edges[1]) holds the lowest scores (zero included); the last bin takes
    the overflow.  Log spacing keeps the zero-bias tail, where the thresholds sit, and the
    far tails of the signal processes readable on one axis.
    """
    reference = np.concatenate([s.score_emulated[s.score_emulated > 0] for s in scored.values()] or [np.zeros(0)])
    low = max(lsb, float(np.quantile(reference, 0.001))) if len(reference) else lsb
    tops = [float(np.quantile(s.score_emulated, 0.9995)) for s in scored.values() if len(s)]
    tops += [t["threshold"] for t in thresholds["emulated"].values()]
    high = max(1.5 * max(tops), 4 * low)
    return np.concatenate([[0.0], np.geomspace(low, high, n_bins)])


def fill_histograms(
    settings: CalibrationSettings,
    scored: Mapping[str, ScoredSample],
    thresholds: dict,
    score_edges: np.ndarray,
    progress: ProgressFactory | None = None,
) -> dict[str, ProcessHistograms]:
    """Efficiency and score-versus-feature histograms of every sample, filled chunk by chunk."""
    keys: tuple[DecisionKey, ...] = tuple((k, r) for k in KINDS for r in settings.rates_hz)
    out: dict[str, ProcessHistograms] = {}
    for process, sample in scored.items():
        hists = ProcessHistograms(keys, score_edges=score_edges, score_vs=settings.score_vs_features)
        advance, close = progress(f"histogram {process}", len(sample)) if progress else (None, lambda: None)
        for start, features in iter_score_file_features(sample.path, settings.chunk_events):
            sl = slice(start, start + len(features))
            decisions = {(k, r): passes(sample.scores(k)[sl], thresholds[k][r]["threshold"]) for k, r in keys}
            hists.fill(features, sample.weights[sl], decisions, sample.menu_pass[sl], sample.score_emulated[sl])
            if advance:
                advance(len(features))
        close()
        out[process] = hists
    return out


def run_calibration(
    settings: CalibrationSettings,
    scorer: Scorer,
    samples: Mapping[str, Path],
    build_dir: Path,
    bit_exact: dict,
    digest_extra: dict,
    progress: ProgressFactory | None = None,
    names: Names = None,
) -> CalibrationResult:
    """Steps 3-7: scores, thresholds, menu rates, float-vs-emulated flips, histograms."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    paths = compute_scores(settings, scorer, samples, build_dir / "scores", digest_extra, progress, names)
    scored = {p: load_scored_sample(path) for p, path in paths.items()}
    timings["scores"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    reference = scored[settings.reference_process]
    thresholds = compute_thresholds(settings, reference, scorer.score_type)
    menu_rates = compute_menu_rates(settings, reference)
    flips = decision_flips(settings, scored, thresholds)
    timings["thresholds"] = time.perf_counter() - t0
    log.info("rule: an event passes when score %s threshold; f_bc = %.6g Hz; menu rate %.4g Hz (%s)",
             PASS_RULE, settings.bunch_crossing_hz, menu_rates["total"]["rate_hz"], menu_rates["source"])

    t0 = time.perf_counter()
    score_edges = score_axis(scored, thresholds, scorer.score_type.lsb)
    histograms = fill_histograms(settings, scored, thresholds, score_edges, progress)
    timings["efficiencies"] = time.perf_counter() - t0
    return CalibrationResult(settings, scorer.score_type, scored, thresholds, histograms, menu_rates, flips,
                             bit_exact, score_edges, timings)


def saturation_table(scored: Mapping[str, ScoredSample]) -> dict[str, dict]:
    """Saturated-input counts per sample and feature (all 44 features, zeros included)."""
    return {p: {"n_events": len(s), "per_feature": dict(zip(FEATURE_NAMES, s.saturation.tolist()))}
            for p, s in scored.items()}
