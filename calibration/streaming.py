"""Chunk tasks of the streaming calibration: (file, event range) in, partial results out (calibration stage).

A :class:`ChunkTask` names a sample file and an event range; the task functions open the
file themselves (HDF5 handles do not pickle), so they run alike in this process or on a
Dask worker (:mod:`.execution`).  One pass, every event is read once:

:data:`score_job` reads the events, scores them (or reads the scores of a reused score
file) and returns the chunk's :class:`.tally.SampleTally`, its columns when the score file
is being written, and, for an efficiency process, its efficiency histograms and
float-versus-emulated flip counts at the final thresholds.  The thresholds come from the
rate reference alone: a distributed run tallies the reference first and hands them to
the efficiency processes' tasks (:attr:`ScorePass.thresholds`); in this process all
chunks go in one stream, the processes' tasks holding a :class:`PendingThresholds` that
the pipeline sets when the reference is done, and a chunk scored before then leaves its
efficiencies to the pipeline (:class:`DeferredEfficiency`).

A worker gets the firmware emulation from a :class:`ScorerFactory` and builds it once per
process (:func:`worker_scorer`); the conversion reuses a compiled build when the model
and config are unchanged, and ``gelato.hls.convert`` serialises builds of one project
folder across processes with a file lock, so workers never compile into it at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gelato.calibration.config import CalibrationSettings
from gelato.calibration.execution import Staged
from gelato.calibration.efficiency import VARIABLES, DecisionKey, ProcessHistograms, bin_variables
from gelato.calibration.rates import passes
from gelato.calibration.scoring import Names, ScoreColumns, Scorer, compute_columns, read_columns
from gelato.calibration.tally import KINDS, SampleTally, tally_chunk
from gelato.calibration.thresholds import flip_counts
from gelato.io import EventBlock, count_events, read_event_block

log = logging.getLogger(__name__)

#: A scorer, or a picklable, hashable callable that builds one (what a Dask worker receives).
ScorerSource = Scorer | Callable[[], Scorer]

_WORKER_SCORERS: dict[Any, Scorer] = {}


@dataclass(frozen=True)
class EmulatorFactory:
    """Builds ``gelato.hls.emulate.FirmwareEmulator`` (model, hls config, build folder) in a worker."""

    model: Path
    config: Path
    build_dir: Path

    def __call__(self) -> Scorer:
        from gelato.hls.emulate import FirmwareEmulator

        return FirmwareEmulator(self.model, self.config, self.build_dir)


def worker_scorer(source: ScorerSource) -> Scorer:
    """The scorer itself, or the one this process built from the factory ``source`` (built once)."""
    if hasattr(source, "emulated_scores") and not isinstance(source, type):
        return source  # type: ignore[return-value]
    if source not in _WORKER_SCORERS:
        log.info("building the scorer %r in this process", source)
        _WORKER_SCORERS[source] = source()
    return _WORKER_SCORERS[source]


@dataclass(frozen=True)
class ChunkTask:
    """Events [start, stop) of one sample file; ``index`` is the chunk's position in the sample."""

    process: str
    sample: Path
    index: int
    start: int
    stop: int


def plan_chunks(process: str, sample: Path, chunk_events: int, names: Names = None) -> list[ChunkTask]:
    """The chunk tasks of one sample, in event order."""
    n = count_events(sample, names)
    return [ChunkTask(process, sample, i, start, min(start + chunk_events, n))
            for i, start in enumerate(range(0, n, chunk_events))]


@dataclass(frozen=True)
class ScorePass:
    """What every first-pass task of one sample shares (sent once with each task)."""

    settings: CalibrationSettings
    score_edges: Any
    names: Names
    reuse: Path | None
    keep_features: bool
    return_columns: bool
    #: The final thresholds (``thresholds[kind][rate]["threshold"]``) for an efficiency process, else None;
    #: in this process also a :class:`PendingThresholds`.
    thresholds: Mapping[str, Mapping[int, dict]] | PendingThresholds | None = None


#: What an efficiency process's chunk adds: its histograms and flip counts per rate.
ChunkEfficiency = tuple[ProcessHistograms, dict[int, dict]]


class PendingThresholds:
    """The final thresholds of a single-process run, set once the rate reference is tallied.

    In this process the efficiency processes' chunks are scored while the reference's
    last chunks are, instead of after them; a chunk computed before the thresholds are
    :meth:`set` returns a :class:`DeferredEfficiency` for the caller to finish.  Never sent
    to a Dask worker: a distributed run gets the thresholds themselves (two passes).
    """

    def __init__(self) -> None:
        self.value: Mapping[str, Mapping[int, dict]] | None = None

    def set(self, thresholds: Mapping[str, Mapping[int, dict]]) -> None:
        self.value = thresholds


@dataclass(frozen=True)
class DeferredEfficiency:
    """A chunk scored before its thresholds were known: what :func:`chunk_efficiency` needs later."""

    features: Any
    columns: ScoreColumns
    bins: Mapping[str, Any]

    def at(self, rates_hz, thresholds: Mapping[str, Mapping[int, dict]]) -> ChunkEfficiency:
        return chunk_efficiency(self.features, self.columns, rates_hz, thresholds, self.bins)


#: One chunk task as the executor gets it: the chunk, and what every task of its sample shares.
ChunkJob = tuple[ChunkTask, ScorePass]


def read_chunk(job: ChunkJob, source: ScorerSource) -> tuple[EventBlock, ScoreColumns | None]:
    """The reading stage of :data:`score_job`: the chunk's events, and its stored columns when reused."""
    task, common = job
    block = read_event_block(task.sample, task.start, task.stop, common.names)
    reused = read_columns(common.reuse, task.start, task.stop, task.index) if common.reuse is not None else None
    return block, reused


def score_chunk(job: ChunkJob, read: tuple[EventBlock, ScoreColumns | None], source: ScorerSource
                ) -> tuple[SampleTally, ScoreColumns | None, ChunkEfficiency | DeferredEfficiency | None]:
    """The computing stage of :data:`score_job` on what :func:`read_chunk` read: the chunk's tally, its
    columns when the score file is being written, its efficiencies when asked (deferred while
    pending thresholds are not set yet)."""
    task, common = job
    block, columns = read
    s = common.settings
    if columns is None:
        columns = compute_columns(worker_scorer(source), block, s.menu, common.keep_features)
    # An efficiency process bins every variable once, for its efficiencies and its score-vs-feature tallies.
    bins = None if common.thresholds is None else bin_variables(block.features, VARIABLES)
    tally = tally_chunk(task.process, block.features, columns, common.score_edges, s.menu.names,
                        s.score_vs_features, s.threshold_tail_events, bins,
                        keep_tail=task.process == s.reference_process)
    thresholds = common.thresholds
    if isinstance(thresholds, PendingThresholds):
        thresholds = thresholds.value
        if thresholds is None:
            deferred = DeferredEfficiency(block.features, columns, bins)
            return tally, (columns if common.return_columns else None), deferred
    efficiency = None if thresholds is None else chunk_efficiency(block.features, columns, s.rates_hz, thresholds, bins)
    return tally, (columns if common.return_columns else None), efficiency


#: The task function of every chunk: read, then score; called whole on a Dask worker, its two
#: stages overlapped by the in-process executor (:class:`.execution.Staged`).
score_job = Staged(read_chunk, score_chunk)


def chunk_efficiency(features, columns: ScoreColumns, rates_hz, thresholds: Mapping[str, Mapping[int, dict]],
                     variable_bins=None) -> ChunkEfficiency:
    """Efficiency histograms and decision flips of one chunk at the final thresholds."""
    scores = {"float": columns.score_float, "emulated": columns.score_emulated}
    keys: tuple[DecisionKey, ...] = tuple((k, r) for k in KINDS for r in rates_hz)
    decisions = {(k, r): passes(scores[k], thresholds[k][r]["threshold"]) for k, r in keys}

    hists = ProcessHistograms(keys)
    hists.fill(features, columns.weight, decisions, columns.menu_pass, variable_bins=variable_bins)
    flips = {r: flip_counts(decisions[("emulated", r)], decisions[("float", r)], len(columns)) for r in rates_hz}
    return hists, flips
