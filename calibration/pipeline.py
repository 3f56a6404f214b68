"""The calibration pipeline: scores -> thresholds -> efficiencies -> plots -> reports (calibration stage).

:func:`run_calibration` does steps 3-7 of `gelato calibrate` given a scorer (the firmware
emulation) and the bit-exact result of the C-simulation, which :mod:`.commands` obtains
from ``gelato.hls``.  It streams: every sample is cut into chunk tasks (:mod:`.streaming`)
that run in this process or on a Dask cluster (:mod:`.execution`), and only partial
results that merge exactly are kept (:mod:`.tally`), so memory does not grow with the
number of events and a distributed run gives the same numbers, bit for bit, as a
single-process run.  It is deterministic: the same inputs give the same numbers.

Every event is read once:

1. The rate reference: score each chunk (or read the scores of a reused score file),
   write ``build/scores/<process>.h5``, and tally the chunk.
2. Thresholds, menu rates and the reference's decision flips from the reference's tally.
3. Every other sample the same way; for an efficiency process each chunk task also fills
   its efficiency histograms and decision flips at the thresholds of step 2.

Physics numbers quoted as "the trigger" come from the emulated (bit-accurate) scores; the
float model's are computed with the same procedure and shown beside them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gelato.calibration.config import CalibrationSettings
from gelato.calibration.efficiency import ProcessHistograms
from gelato.calibration.execution import InProcessExecutor, OrderedFold
from gelato.calibration.rates import PASS_RULE
from gelato.calibration.scoring import Names, ScoreFileWriter, Scorer, existing_digest, input_digest
from gelato.calibration.streaming import (
    ChunkJob, DeferredEfficiency, PendingThresholds, ScorePass, plan_chunks, score_job,
)
from gelato.calibration.tally import KINDS, SampleTally, crop_score_axis, fine_score_edges, plot_score_axis
from gelato.calibration.thresholds import compute_menu_rates, compute_thresholds, flips_from_tail
from gelato.features import FEATURE_NAMES

log = logging.getLogger(__name__)

__all__ = ["KINDS", "CalibrationResult", "run_calibration", "saturation_table"]

#: Factory of per-sample progress callbacks (the CLI passes tqdm bars): (label, total) -> (advance, close).
ProgressFactory = Callable[[str, int], tuple[Callable[[int], None], Callable[[], None]]]


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


def _progress(progress: ProgressFactory | None, label: str, total: int):
    """Progress callback (advances by a number of events) and its closer."""
    if progress is None:
        return lambda n: None, lambda: None
    return progress(label, total)


def tally_samples(
    settings: CalibrationSettings, source, samples: Mapping[str, Path], digests: Mapping[str, str],
    scores_dir: Path, executor, score_edges: np.ndarray, progress: ProgressFactory | None = None,
    names: Names = None, score_type: Any = None, thresholds: dict | PendingThresholds | None = None,
    attrs: Mapping | None = None, on_finish: Callable[[str, SampleTally], None] | None = None,
) -> dict[str, tuple[SampleTally, tuple[ProcessHistograms, dict[int, dict]] | None]]:
    """Samples in one pass, their chunks in one stream of tasks: score (or reuse), write score files, merge.

    The chunk tasks of every sample go to the executor together, so small samples of one
    chunk each run side by side; each sample's results are merged in its own chunk order.
    Returns per process the merged tally and, when ``thresholds`` are given and the process
    is an efficiency process, its merged efficiency histograms and flip counts (else None).
    ``attrs`` are further attributes of the score files written.  ``on_finish(process, tally)``
    is called as each sample's last chunk is merged.  With :class:`.streaming.PendingThresholds`
    the rate reference must be the first sample and ``on_finish`` must set them when it is
    done: efficiency chunks scored before then are finished here, in chunk order.
    """
    if isinstance(thresholds, PendingThresholds) and next(iter(samples), None) != settings.reference_process:
        raise ValueError(f"pending thresholds need the rate reference {settings.reference_process} first; "
                         f"got {', '.join(samples)}")
    attrs = dict(attrs or {})
    jobs: list[ChunkJob] = []
    reused: dict[str, Path | None] = {}
    n_tasks: dict[str, int] = {}
    n_events: dict[str, int] = {}
    for process, sample in samples.items():
        out, tasks = scores_dir / f"{process}.h5", plan_chunks(process, sample, settings.chunk_events, names)
        if not tasks:
            raise ValueError(f"{sample}: no events; expected a sample with at least one event")
        reused[process] = out if out.exists() and existing_digest(out) == digests[process] else None
        if reused[process]:
            log.info("%s: reusing %s (same model, firmware config, menu and sample)", process, out)
        wanted = thresholds if thresholds is not None and process in settings.processes else None
        common = ScorePass(settings, score_edges, names, reused[process], settings.keeps_features(process),
                           return_columns=reused[process] is None, thresholds=wanted)
        jobs += [(task, common) for task in tasks]
        n_tasks[process], n_events[process] = len(tasks), tasks[-1].stop

    what = "score" if any(r is None for r in reused.values()) else "tally"
    label = f"{what}{' + efficiency' if thresholds is not None else ''} {', '.join(samples)}"
    advance, close = _progress(progress, label, sum(task.stop - task.start for task, _ in jobs))
    folds = {process: OrderedFold(_merge_chunk) for process in samples}
    remaining, writers, out = dict(n_tasks), {}, {}

    def finish(process: str) -> None:
        """The sample's last chunk is merged: close its score file (moved into place) and keep its results."""
        merged, efficiency = folds[process].result()
        if process in writers:
            writers.pop(process).close({"process": process, "source": str(samples[process]),
                                        "score_type": str(score_type), "digest": digests[process], **attrs})
            log.info("%s: scored %d events -> %s (menu from %s)", process, merged.n_events,
                     scores_dir / f"{process}.h5", merged.menu_source)
        merged.path = scores_dir / f"{process}.h5"
        if efficiency is not None:
            hists, flips = efficiency
            efficiency = hists, {rate: _flip_entry(counts) for rate, counts in flips.items()}
        out[process] = merged, efficiency
        if on_finish is not None:
            on_finish(process, merged)

    with contextlib.ExitStack() as stack:
        stack.callback(close)
        # Score files are opened at their sample's first result and closed at its last, while
        # the other samples' chunks are being computed; an error removes the unfinished ones.
        stack.callback(lambda: [writer.__exit__(RuntimeError, None, None) for writer in writers.values()])
        for index, (tally, columns, efficiency) in executor.map(score_job, jobs, source):
            task = jobs[index][0]
            if reused[task.process] is None:
                if task.process not in writers:
                    writers[task.process] = ScoreFileWriter(
                        scores_dir / f"{task.process}.h5", n_events[task.process], settings.chunk_events,
                        settings.menu.names, settings.keeps_features(task.process))
                writers[task.process].write(task.start, columns)
            if isinstance(efficiency, DeferredEfficiency):  # scored before the reference was done
                if thresholds.value is None:
                    raise RuntimeError(f"{task.process} chunk {task.index} came back before the thresholds were set; "
                                       "expected every chunk of the rate reference first")
                efficiency = efficiency.at(settings.rates_hz, thresholds.value)
            folds[task.process].add(task.index, (tally, efficiency))
            advance(task.stop - task.start)
            remaining[task.process] -= 1
            if remaining[task.process] == 0:
                finish(task.process)
    return {process: out[process] for process in samples}


def _merge_chunk(accumulated: tuple, chunk: tuple) -> tuple:
    """Add the next chunk's (tally, efficiency or None) to the accumulated pair."""
    tally, efficiency = accumulated
    tally.add(chunk[0])
    if efficiency is not None:
        hists, flips = efficiency
        hists.add(chunk[1][0])
        for rate, counts in chunk[1][1].items():
            flips[rate] = {k: flips[rate][k] + counts[k] for k in ("n_flips", "n_events", "emulated_only", "float_only")}
    return tally, efficiency


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

    def digest(process: str, sample: Path) -> str:
        return input_digest(sample, {**digest_extra, "menu": settings.menu.as_config(), "keep_features":
                                     settings.keeps_features(process), "chunk_events": settings.chunk_events,
                                     "use_file_decision": settings.menu.use_file_decision})

    reference_name = settings.reference_process
    if reference_name not in samples:
        raise ValueError(f"no sample for the rate reference {reference_name!r}; got {', '.join(samples) or 'none'}")
    digests = {process: digest(process, sample) for process, sample in samples.items()}
    shifts = getattr(scorer, "shifts", None)
    common = dict(scores_dir=build_dir / "scores", executor=executor, score_edges=edges, progress=progress,
                  names=names, score_type=score_type,
                  attrs={"input_shifts": np.asarray(shifts, np.int64)} if shifts is not None else {})
    others = {process: sample for process, sample in samples.items() if process != reference_name}
    t0 = time.perf_counter()
    if executor.distributed:  # the workers need the thresholds themselves: the reference, then the processes
        reference = tally_samples(settings, source, {reference_name: samples[reference_name]}, digests,
                                  **common)[reference_name][0]
        timings["reference"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        thresholds = compute_thresholds(settings, reference, score_type)
        timings["thresholds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        results = tally_samples(settings, source, others, digests, thresholds=thresholds, **common) if others else {}
    else:  # one stream: the processes' chunks are scored while the reference's last ones are
        pending = PendingThresholds()

        def reference_done(process: str, tally: SampleTally) -> None:
            if process == reference_name:
                nonlocal t0
                timings["reference"] = time.perf_counter() - t0
                t0 = time.perf_counter()
                pending.set(compute_thresholds(settings, tally, score_type))
                timings["thresholds"] = time.perf_counter() - t0
                t0 = time.perf_counter()

        ordered = {reference_name: samples[reference_name], **others}
        results = tally_samples(settings, source, ordered, digests, thresholds=pending, on_finish=reference_done,
                                **common)
        reference, thresholds = results.pop(reference_name)[0], pending.value
    menu_rates = compute_menu_rates(settings, reference)
    flips = {reference_name: flips_from_tail(settings, reference, thresholds)}
    log.info("rule: an event passes when score %s threshold; f_bc = %.6g Hz; menu rate %.4g Hz (%s)",
             PASS_RULE, settings.bunch_crossing_hz, menu_rates["total"]["rate_hz"], menu_rates["source"])
    scored: dict[str, SampleTally] = {}
    histograms: dict[str, ProcessHistograms] = {}
    for process in samples:
        if process == reference_name:
            scored[process] = reference
            continue
        scored[process], efficiency = results[process]
        if efficiency is not None:
            histograms[process], flips[process] = efficiency
    timings["processes"] = time.perf_counter() - t0
    flips = {p: flips[p] for p in samples if p in flips}  # in sample order, as the report lists them

    drawn = plot_score_axis(scored, [t["threshold"] for t in thresholds["emulated"].values()])
    score_edges = crop_score_axis(np.zeros(len(edges) - 1), edges, drawn)[1]
    return CalibrationResult(settings, score_type, scored, thresholds, histograms, menu_rates, flips, bit_exact,
                             score_edges, drawn, timings, execution=executor.description)


def saturation_table(scored: Mapping[str, SampleTally]) -> dict[str, dict]:
    """Saturated-input counts per sample and feature (all 44 features, zeros included)."""
    return {p: {"n_events": len(s), "per_feature": dict(zip(FEATURE_NAMES, s.saturation.tolist()))}
            for p, s in scored.items()}
