"""Sample production: seeded chunks of Pythia8 events, pileup overlay, L1 emulation, files.

Samples stage, the engine behind ``gelato generate``.  Every process is cut into
fixed-size chunks; a chunk's random numbers (the Pythia seed and the numpy generator
for pileup and detector smearing) derive only from (master seed, process, chunk
index), so the output is bit-identical whatever the number of workers or the order in
which chunks finish.  Chunks run in a multiprocessing pool; their feature rows are
assembled in chunk order into one event file per process (:func:`gelato.io.write_events`).
Writing ``MANIFEST.json`` is left to :mod:`gelato.samples.manifest`.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gelato.io import write_events
from gelato.samples.l1emulation import (
    L1Settings,
    TowerDeposits,
    TruthMuons,
    calorimeter_deposits,
    tower_grid,
    truth_muons,
)
from gelato.samples.l1objects import l1_features
from gelato.samples.pileup import PileupPool, build_pool
from gelato.samples.processes import COMMON_SETTINGS, MINIMUM_BIAS_SETTINGS, Process, get_process, select
from gelato.samples.pythia_io import MAX_PYTHIA_SEED, PythiaRun, particle_batch

log = logging.getLogger(__name__)

#: Run-3 start-of-fill pileup (ATLAS 2023-2024 fills level at mu ~ 60).
DEFAULT_PILEUP_MU = 60.0
DEFAULT_POOL_SIZE = 10000
EMULATION_BLOCK = 250
POOL_STREAM = "minimum-bias-pool"

_POOL: PileupPool | None = None  # set in the parent before forking workers


@dataclass(frozen=True)
class ChunkTask:
    """One unit of work: ``n_events`` accepted events of ``process``, chunk ``index``."""

    process: str
    index: int
    n_events: int
    master_seed: int
    pileup_mu: float


@dataclass
class ChunkResult:
    """Feature rows of one chunk, with its generated-event count and cross section [pb]."""

    task: ChunkTask
    features: np.ndarray
    n_generated: int
    cross_section_pb: float
    seconds: float


def stream_seed(master_seed: int, stream: str, index: int) -> np.random.SeedSequence:
    """Seed sequence of one named random stream (a process or the pool) and chunk index."""
    return np.random.SeedSequence([master_seed, zlib.crc32(stream.encode()), index])


def pythia_seed(sequence: np.random.SeedSequence) -> int:
    """A Pythia seed in [1, 900 000 000] drawn from a seed sequence."""
    return int(sequence.generate_state(1, np.uint64)[0] % MAX_PYTHIA_SEED) + 1


def chunk_plan(process: Process, n_events: int, master_seed: int, pileup_mu: float) -> list[ChunkTask]:
    """Fixed chunks of ``process.chunk_events`` (the last one shorter) covering ``n_events``."""
    if n_events < 0:
        raise ValueError(f"{process.name}: event count must be >= 0, got {n_events}")
    size = process.chunk_events
    return [
        ChunkTask(process.name, i, min(size, n_events - start), master_seed, pileup_mu)
        for i, start in enumerate(range(0, n_events, size))
    ]


def accepted_records(process: Process, run: PythiaRun, n_events: int) -> tuple[list, int]:
    """Generate until ``n_events`` pass the process selection; return records and tries."""
    records, n_accepted, n_generated, efficiency = [], 0, 0, 1.0
    while n_accepted < n_events:
        want = n_events - n_accepted
        batch = run.next_batch(int(min(2000, max(50, 1.2 * want / max(efficiency, 0.01)))))
        keep = select(process, batch)
        if keep.sum() > want:  # events after the last one needed were never "generated"
            last = np.nonzero(keep)[0][want - 1]
            keep, batch = keep[: last + 1], batch[: last + 1]
        n_generated += len(batch)
        records.append(batch[keep])
        n_accepted += int(keep.sum())
        efficiency = max(n_accepted, 1) / n_generated
    return records, n_generated


def emulate(
    records: Sequence,
    charge_of: Callable[[np.ndarray], np.ndarray],
    pool: PileupPool | None,
    mu: float,
    rng: np.random.Generator,
    settings: L1Settings,
) -> np.ndarray:
    """L1 feature rows of hard-event records with pileup, in blocks of EMULATION_BLOCK."""
    rows = []
    for record in records:
        for start in range(0, len(record), EMULATION_BLOCK):
            block = record[start : start + EMULATION_BLOCK]
            particles = particle_batch(block[block.status > 0], charge_of)
            towers, muons = calorimeter_deposits(particles, settings), truth_muons(particles)
            if pool is not None and mu > 0:
                pu_towers, pu_muons = pool.overlay(len(block), mu, rng)
                towers = _join_towers(towers, pu_towers)
                muons = _join_muons(muons, pu_muons)
            rows.append(l1_features(tower_grid(towers, settings), muons, rng, settings))
    return np.concatenate(rows) if rows else np.zeros((0, 44), dtype=np.float32)


def _join_towers(a: TowerDeposits, b: TowerDeposits) -> TowerDeposits:
    cat = lambda k: np.concatenate([getattr(a, k), getattr(b, k)])  # noqa: E731
    return TowerDeposits(a.n_events, cat("event"), cat("tower"), cat("et"))


def _join_muons(a: TruthMuons, b: TruthMuons) -> TruthMuons:
    cat = lambda k: np.concatenate([getattr(a, k), getattr(b, k)])  # noqa: E731
    return TruthMuons(a.n_events, cat("event"), cat("pt"), cat("eta"), cat("phi"))


def run_chunk(task: ChunkTask, pool: PileupPool | None = None, settings: L1Settings | None = None) -> ChunkResult:
    """Generate, select, overlay pileup on and emulate one chunk (deterministic in its seed)."""
    start_time = time.perf_counter()
    process = get_process(task.process)
    settings = settings or L1Settings()
    pool = pool if pool is not None else _POOL
    pythia_sequence, numpy_sequence = stream_seed(task.master_seed, task.process, task.index).spawn(2)

    run = PythiaRun(process.pythia_settings(task.index), pythia_seed(pythia_sequence))
    records, n_generated = accepted_records(process, run, task.n_events)
    features = emulate(records, run.charge_of, pool, task.pileup_mu, np.random.default_rng(numpy_sequence), settings)
    return ChunkResult(task, features, n_generated, run.cross_section_pb(), time.perf_counter() - start_time)


def make_pool(master_seed: int, size: int, settings: L1Settings | None = None) -> PileupPool:
    """The minimum-bias pileup pool of a master seed (same for every process and worker)."""
    seed = pythia_seed(stream_seed(master_seed, POOL_STREAM, 0))
    return build_pool(size, seed, settings or L1Settings(), [*COMMON_SETTINGS, *MINIMUM_BIAS_SETTINGS])


def _init_worker(pool: PileupPool | None) -> None:
    global _POOL
    _POOL = pool


def run_chunks(tasks: Sequence[ChunkTask], pool: PileupPool | None, workers: int) -> Iterator[ChunkResult]:
    """Run chunks (in a fork-based process pool when ``workers`` > 1), yielding as they finish."""
    if workers <= 1:
        for task in tasks:
            yield run_chunk(task, pool)
        return
    context = multiprocessing.get_context("fork")
    with context.Pool(workers, initializer=_init_worker, initargs=(pool,)) as workers_pool:
        yield from workers_pool.imap_unordered(run_chunk, tasks)


@dataclass
class ProcessOutput:
    """A finished process: its file and the numbers the manifest records."""

    process: str
    path: Path
    n_events: int
    n_generated: int
    cross_section_pb: float
    attrs: dict


def file_attributes(
    process: Process, results: list[ChunkResult], master_seed: int, mu: float, pool_size: int, settings: L1Settings
) -> dict:
    """Attributes of an event file: settings, seed, pileup, efficiency and cross section."""
    n_events = sum(len(r.features) for r in results)
    n_generated = sum(r.n_generated for r in results)
    weights = np.array([r.n_generated for r in results], dtype=float)
    sigma = float(np.average([r.cross_section_pb for r in results], weights=weights)) if n_generated else 0.0
    efficiency = n_events / n_generated if n_generated else 0.0
    if process.alternate_settings:  # each chunk made one of two disjoint, equally likely halves
        sigma *= 2
    generator = {
        "generator": "Pythia 8.317 (pythia8mc)",
        "sqrt_s_gev": 13600.0,
        **process.summary(),
        "chunk_events": process.chunk_events,
        "seed_rule": "numpy SeedSequence([seed, crc32(process), chunk]).spawn(2): Pythia seed, numpy RNG",
        "pileup": {"mu": mu, "pool_size": pool_size, "pool_settings": [*COMMON_SETTINGS, *MINIMUM_BIAS_SETTINGS]},
    }
    return {
        "process": process.name,
        "seed": master_seed,
        "pileup_mu": mu,
        "pileup_pool_size": pool_size,
        "n_generated": n_generated,
        "selection_efficiency": efficiency,
        "cross_section_pb": sigma * efficiency,
        "generator": generator,
        "l1_emulation": settings.as_dict(),
    }


def generate(
    counts: dict[str, int],
    out_dir: Path,
    master_seed: int,
    pileup_mu: float = DEFAULT_PILEUP_MU,
    pool_size: int = DEFAULT_POOL_SIZE,
    workers: int = 1,
    on_chunk: Callable[[ChunkResult], None] | None = None,
    pool: PileupPool | None = None,
) -> list[ProcessOutput]:
    """Produce one event file per process in ``out_dir``; return what was written.

    ``counts`` maps process names to accepted-event counts.  Files appear one by one as
    their last chunk finishes; each is written atomically.  ``pool`` may pass in a pileup
    pool already built by :func:`make_pool` for the same seed and size.
    """
    processes = {name: get_process(name) for name in counts}
    if pileup_mu < 0 or pool_size < 0 or workers < 1:
        raise ValueError(f"need pileup mu >= 0, pool size >= 0, workers >= 1; got {pileup_mu}, {pool_size}, {workers}")
    tasks = [t for name, n in counts.items() for t in chunk_plan(processes[name], n, master_seed, pileup_mu)]
    if pool is None:
        pool = make_pool(master_seed, pool_size if pileup_mu > 0 else 0)
    elif pool.size != pool_size:
        raise ValueError(f"the pileup pool passed in holds {pool.size} events, expected pool size {pool_size}")

    pending = {name: {t.index for t in tasks if t.process == name} for name in counts}
    finished: dict[str, list[ChunkResult]] = {name: [] for name in counts}
    outputs = [_write(processes[n], [], out_dir, master_seed, pileup_mu, pool_size) for n in counts if not pending[n]]
    for result in run_chunks(sorted(tasks, key=lambda t: -t.n_events), pool, workers):
        name = result.task.process
        finished[name].append(result)
        pending[name].discard(result.task.index)
        if on_chunk:
            on_chunk(result)
        if not pending[name]:
            outputs.append(_write(processes[name], finished.pop(name), out_dir, master_seed, pileup_mu, pool_size))
    return outputs


def _write(
    process: Process, results: list[ChunkResult], out_dir: Path, seed: int, mu: float, pool_size: int
) -> ProcessOutput:
    results = sorted(results, key=lambda r: r.task.index)
    features = np.concatenate([r.features for r in results]) if results else np.zeros((0, 44), dtype=np.float32)
    attrs = file_attributes(process, results, seed, mu, pool_size, L1Settings())
    path = write_events(Path(out_dir) / f"{process.name}.h5", features, attrs=attrs)
    log.info("%s: %d events (efficiency %.3f) -> %s", process.name, len(features), attrs["selection_efficiency"], path)
    return ProcessOutput(process.name, path, len(features), attrs["n_generated"], attrs["cross_section_pb"], attrs)
