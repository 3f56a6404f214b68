"""The calibration pipeline: scores -> thresholds -> efficiencies -> plots -> reports (calibration stage).

:func:`run_calibration` does steps 3-7 of `gelato calibrate` given a scorer (the firmware
emulation) and the bit-exact result of the C-simulation, which :mod:`.commands` obtains
from ``gelato.hls``.  It streams: every sample is cut into chunk tasks (:mod:`.streaming`)
that run in this process or on a Dask cluster (:mod:`.execution`), and only partial
results that merge exactly are kept (:mod:`.tally`), so memory does not grow with the
number of events and a distributed run gives the same numbers, bit for bit, as a
single-process run.  It is deterministic: the same inputs give the same numbers.

1. First pass, every sample: score each chunk (or read the scores of a reused score
   file), write ``build/scores/<process>.h5``, and tally the chunk.
2. Thresholds, menu rates and the reference's decision flips from the reference's tally.
3. Second pass, the efficiency processes: efficiency histograms and decision flips.

Physics numbers quoted as "the trigger" come from the emulated (bit-accurate) scores; the
float model's are computed with the same procedure and shown beside them.
"""

from __future__ import annotations

import contextlib
import logging
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gelato.calibration.config import CalibrationSettings
from gelato.calibration.efficiency import ProcessHistograms
from gelato.calibration.execution import InProcessExecutor, fold_in_order
from gelato.calibration.rates import PASS_RULE
from gelato.calibration.scoring import Names, ScoreFileWriter, Scorer, existing_digest, input_digest
from gelato.calibration.streaming import ChunkTask, ScorePass, efficiency_task, plan_chunks, score_task
from gelato.calibration.tally import KINDS, SampleTally, crop_score_axis, fine_score_edges, plot_score_axis
from gelato.calibration.thresholds import compute_menu_rates, compute_thresholds, flips_from_tail
from gelato.features import FEATURE_NAMES

log = logging.getLogger(__name__)

__all__ = ["KINDS", "CalibrationResult", "run_calibration", "saturation_table", "peak_memory_mb"]

#: Factory of per-sample progress callbacks (the CLI passes tqdm bars): (label, total) -> (advance, close).
ProgressFactory = Callable[[str, int], tuple[Callable[[int], None], Callable[[], None]]]


def peak_memory_mb() -> float:
    """Peak resident memory of this process so far [MB] (``ru_maxrss``, kB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class CalibrationResult:
    """Everything the report is made of.

    ``scored[process]`` is the merged :class:`.tally.SampleTally` of each sample; ``score_edges``
    the drawn score axis, a range of the tallies' fine axis picked by ``drawn_axis``.
    """

    settings: CalibrationSettings
    score_type: Any
    scored: dict[str, SampleTally]
    thresholds: dict[str, dict[int, dict]]
    histograms: dict[str, ProcessHistograms]
    menu_rates: dict
    flips: dict[str, dict[int, dict]]
    bit_exact: dict
    score_edges: np.ndarray
    drawn_axis: np.ndarray
    timings_s: dict[str, float] = field(default_factory=dict)
    inputs: dict[str, str] = field(default_factory=dict)
    execution: str = "single process"

    def score_histogram(self, process: str, kind: str) -> np.ndarray:
        """Weighted score histogram of a sample on :attr:`score_edges`."""
        tally = self.scored[process]
        return crop_score_axis(tally.score_weights[kind], tally.score_edges, self.drawn_axis)[0]

    def score_vs_feature(self, feature: str) -> dict[str, np.ndarray]:
        """Per sample, the weighted (feature bin, score bin) histogram on :attr:`score_edges`."""
        return {p: crop_score_axis(t.score_2d[feature], t.score_edges, self.drawn_axis)[0]
                for p, t in self.scored.items() if feature in t.score_2d}


def _progress(progress: ProgressFactory | None, label: str, tasks: list[ChunkTask]):
    """Per-chunk progress callback (advances by the chunk's events) and its closer."""
    if progress is None:
        return None, lambda: None
    advance, close = progress(label, tasks[-1].stop if tasks else 0)
    return (lambda index: advance(tasks[index].stop - tasks[index].start)), close


def _merge_tallies(accumulated: SampleTally, chunk: SampleTally) -> SampleTally:
    accumulated.add(chunk)
    return accumulated


def tally_sample(
    settings: CalibrationSettings, source, process: str, sample: Path, scores_dir: Path, digest: str,
    executor, score_edges: np.ndarray, progress: ProgressFactory | None = None, names: Names = None,
    score_type: Any = None,
) -> SampleTally:
    """First pass on one sample: score (or reuse) every chunk, write its score file, merge the chunk tallies."""
    out, tasks = scores_dir / f"{process}.h5", plan_chunks(process, sample, settings.chunk_events, names)
    if not tasks:
        raise ValueError(f"{sample}: no events; expected a sample with at least one event")
    reuse = out if out.exists() and existing_digest(out) == digest else None
    keep = settings.keeps_features(process)
    common = ScorePass(settings, score_edges, names, reuse, keep, return_columns=reuse is None)
    if reuse:
        log.info("%s: reusing %s (same model, firmware config, menu and sample)", process, out)
    advance, close = _progress(progress, f"{'tally' if reuse else 'score'} {process}", tasks)

    with contextlib.ExitStack() as stack:
        stack.callback(close)
        writer = None if reuse else stack.enter_context(
            ScoreFileWriter(out, tasks[-1].stop, settings.chunk_events, settings.menu.names, keep))

        def tallies():
            for index, (tally, columns) in executor.map(score_task, tasks, source, common):
                if writer is not None:
                    writer.write(tasks[index].start, columns)
                yield index, tally

        merged: SampleTally = fold_in_order(tallies(), _merge_tallies, advance)
        if writer is not None:
            writer.close({"process": process, "source": str(sample), "score_type": str(score_type), "digest": digest})
            log.info("%s: scored %d events -> %s (menu from %s)", process, merged.n_events, out, merged.menu_source)
    merged.path = out
    return merged


def _merge_efficiency(accumulated: tuple, chunk: tuple) -> tuple:
    hists, flips = accumulated
    hists.add(chunk[0])
    for rate, counts in chunk[1].items():
        flips[rate] = {k: flips[rate][k] + counts[k] for k in ("n_flips", "n_events", "emulated_only", "float_only")}
    return hists, flips


def efficiency_sample(
    settings: CalibrationSettings, tally: SampleTally, sample: Path, thresholds: dict, executor,
    progress: ProgressFactory | None = None, names: Names = None,
) -> tuple[ProcessHistograms, dict[int, dict]]:
    """Second pass on one efficiency process: its histograms and decision flips, merged in chunk order."""
    tasks = plan_chunks(tally.process, sample, settings.chunk_events, names)
    advance, close = _progress(progress, f"efficiency {tally.process}", tasks)
    try:
        results = executor.map(efficiency_task, tasks, tally.path, settings, thresholds, names)
        hists, flips = fold_in_order(results, _merge_efficiency, advance)
    finally:
        close()
    return hists, {rate: _flip_entry(counts) for rate, counts in flips.items()}


def _flip_entry(counts: dict) -> dict:
    """Summed flip counts with their fraction, keys in the order of :func:`.thresholds.flip_counts`."""
    n_flips, n_events = counts["n_flips"], counts["n_events"]
    return {"n_flips": n_flips, "n_events": n_events, "fraction": n_flips / n_events if n_events else 0.0,
            "emulated_only": counts["emulated_only"], "float_only": counts["float_only"]}


def run_calibration(
    settings: CalibrationSettings,
    scorer: Scorer,
    samples: Mapping[str, Path],
    build_dir: Path,
    bit_exact: dict,
    digest_extra: dict,
    progress: ProgressFactory | None = None,
    names: Names = None,
    executor=None,
    scorer_factory: Callable[[], Scorer] | None = None,
) -> CalibrationResult:
    """Steps 3-7: scores, thresholds, menu rates, float-vs-emulated flips, histograms.

    ``executor`` (default: this process, see :mod:`.execution`) runs the chunk tasks; a
    distributed one needs ``scorer_factory``, a picklable callable that builds the scorer
    on each worker (``scorer`` itself then only gives the score type).
    """
    executor = executor or InProcessExecutor()
    samples = {p: Path(path).resolve() for p, path in samples.items()}  # tasks may run in another folder
    build_dir = Path(build_dir).resolve()
    if executor.distributed and scorer_factory is None:
        raise ValueError("a distributed run needs a scorer_factory that workers can call; got none")
    source = scorer_factory if executor.distributed else scorer
    score_type, timings = scorer.score_type, {}
    edges = fine_score_edges(score_type.lsb, score_type.max_value)

    t0 = time.perf_counter()
    scored: dict[str, SampleTally] = {}
    for process, sample in samples.items():
        digest = input_digest(sample, {**digest_extra, "menu": settings.menu.as_config(), "keep_features":
                                       settings.keeps_features(process), "chunk_events": settings.chunk_events,
                                       "use_file_decision": settings.menu.use_file_decision})
        scored[process] = tally_sample(settings, source, process, sample, build_dir / "scores", digest, executor,
                                       edges, progress, names, score_type)
    timings["scores"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    reference = scored[settings.reference_process]
    thresholds = compute_thresholds(settings, reference, score_type)
    menu_rates = compute_menu_rates(settings, reference)
    timings["thresholds"] = time.perf_counter() - t0
    log.info("rule: an event passes when score %s threshold; f_bc = %.6g Hz; menu rate %.4g Hz (%s)",
             PASS_RULE, settings.bunch_crossing_hz, menu_rates["total"]["rate_hz"], menu_rates["source"])

    t0 = time.perf_counter()
    histograms, flips = {}, {}
    for process, tally in scored.items():
        if process == settings.reference_process:
            flips[process] = flips_from_tail(settings, reference, thresholds)
        elif process in settings.processes:
            histograms[process], flips[process] = efficiency_sample(settings, tally, samples[process], thresholds,
                                                                    executor, progress, names)
    timings["efficiencies"] = time.perf_counter() - t0

    drawn = plot_score_axis(scored, [t["threshold"] for t in thresholds["emulated"].values()])
    score_edges = crop_score_axis(np.zeros(len(edges) - 1), edges, drawn)[1]
    return CalibrationResult(settings, score_type, scored, thresholds, histograms, menu_rates, flips, bit_exact,
                             score_edges, drawn, timings, execution=executor.description)


def saturation_table(scored: Mapping[str, SampleTally]) -> dict[str, dict]:
    """Saturated-input counts per sample and feature (all 44 features, zeros included)."""
    return {p: {"n_events": len(s), "per_feature": dict(zip(FEATURE_NAMES, s.saturation.tolist()))}
            for p, s in scored.items()}
