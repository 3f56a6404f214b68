"""Chunk tasks of the streaming calibration: (file, event range) in, partial results out (calibration stage).

A :class:`ChunkTask` names a sample file and an event range; the task functions open the
file themselves (HDF5 handles do not pickle), so they run alike in this process or on a
Dask worker (:mod:`.execution`).  Two passes:

1. :func:`score_task`: read the events, score them (or read the scores of a reused score
   file), return the chunk's :class:`.tally.SampleTally` and, when the score file is being
   written, its columns for the writer.
2. :func:`efficiency_task` (efficiency processes only, once the thresholds are known):
   read the events and the stored scores, return the chunk's efficiency histograms and
   float-versus-emulated flip counts.

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
from gelato.calibration.efficiency import DecisionKey, ProcessHistograms
from gelato.calibration.rates import passes
from gelato.calibration.scoring import Names, ScoreColumns, Scorer, compute_columns, read_columns
from gelato.calibration.tally import KINDS, SampleTally, tally_chunk
from gelato.calibration.thresholds import flip_counts
from gelato.io import count_events, read_event_block

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


def score_task(task: ChunkTask, source: ScorerSource, common: ScorePass) -> tuple[SampleTally, ScoreColumns | None]:
    """First pass on one chunk: its tally, and its columns when the score file is being written."""
    block = read_event_block(task.sample, task.start, task.stop, common.names)
    s = common.settings
    if common.reuse is not None:
        columns = read_columns(common.reuse, task.start, task.stop, task.index)
    else:
        columns = compute_columns(worker_scorer(source), block, s.menu, common.keep_features)
    tally = tally_chunk(task.process, block.features, columns, common.score_edges, s.menu.names,
                        s.score_vs_features, s.threshold_tail_events)
    return tally, (columns if common.return_columns else None)


def efficiency_task(
    task: ChunkTask, score_file: Path, settings: CalibrationSettings, thresholds: Mapping[str, Mapping[int, dict]],
    names: Names = None,
) -> tuple[ProcessHistograms, dict[int, dict]]:
    """Second pass on one chunk: efficiency histograms and decision flips at the final thresholds."""
    block = read_event_block(task.sample, task.start, task.stop, names)
    columns = read_columns(score_file, task.start, task.stop)
    scores = {"float": columns.score_float, "emulated": columns.score_emulated}
    keys: tuple[DecisionKey, ...] = tuple((k, r) for k in KINDS for r in settings.rates_hz)
    decisions = {(k, r): passes(scores[k], thresholds[k][r]["threshold"]) for k, r in keys}

    hists = ProcessHistograms(keys)
    hists.fill(block.features, columns.weight, decisions, columns.menu_pass)
    flips = {r: flip_counts(decisions[("emulated", r)], decisions[("float", r)], len(columns))
             for r in settings.rates_hz}
    return hists, flips
