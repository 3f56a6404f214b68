"""Where chunk tasks run: in this process, or on a Dask distributed cluster (calibration stage).

Both executors take a task function and a list of tasks and yield ``(index, result)`` as
results arrive; :func:`fold_in_order` then merges results in task-index order, so the
floating-point sums of a distributed run are added in the same order as in a
single-process run and the numbers are identical bit for bit.

:func:`open_executor` gives the in-process executor (chunk tasks on a thread per usable core,
at most four), a client of a running scheduler
(``--scheduler tcp://host:8786``) or a ``LocalCluster`` of worker processes on the loopback
interface (``--local-cluster N``).  At most ``max_in_flight`` tasks are submitted at a time,
so finished results never pile up on the workers faster than this process merges them.
Workers must see the sample files and the build folder under the same paths (a shared
file system); they build the firmware emulation themselves (:mod:`.streaming`).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gelato.malloc import usable_cores

log = logging.getLogger(__name__)

#: Loopback address a local cluster listens on: nothing is exposed beyond this machine.
LOOPBACK = "127.0.0.1"
#: Most threads an in-process run uses by default.
MAX_DEFAULT_THREADS = 4


@dataclass(frozen=True)
class Staged:
    """A task function in two stages: ``read(task, *args)`` then ``compute(task, read_result, *args)``.

    Called as a whole (``Staged(...)(task, *args)``) it is an ordinary task function, which
    is how a Dask worker runs it.  :class:`InProcessExecutor` instead runs the reads one at
    a time on a reader thread, ahead of the computations on its worker threads: HDF5 reads
    of one process are serialised by the library (two at once are slower than one after
    the other), while they release the GIL, so one reader overlaps the computing threads.
    """

    read: Callable[..., Any]
    compute: Callable[..., Any]

    def __call__(self, task: Any, *args: Any) -> Any:
        return self.compute(task, self.read(task, *args), *args)


class InProcessExecutor:
    """Runs tasks in this process: one after the other, or on ``threads`` threads.

    With threads, at most ``threads + 2`` tasks are in flight (each holds a chunk) and
    results are yielded in task order, so the caller's work on one result (writing a score
    file) overlaps the next tasks' reading and scoring.  A :class:`Staged` task function
    has its reads done by one extra reader thread, in task order, ahead of the computations.
    HDF5 reads, numpy, TensorFlow and the fast scorer release the GIL for most of a task;
    each task's result does not depend on which thread ran it.
    """

    distributed = False

    def __init__(self, threads: int = 1, read_ahead: bool = True):
        if threads < 1:
            raise ValueError(f"an in-process executor needs at least 1 thread, got {threads}")
        self.threads, self.read_ahead = threads, read_ahead
        self.description = "single process" + (f", {threads} threads" if threads > 1 else "")

    def map(self, fn: Callable, tasks: Sequence, *args: Any) -> Iterator[tuple[int, Any]]:
        if self.threads == 1 and not (self.read_ahead and isinstance(fn, Staged)):
            for index, task in enumerate(tasks):
                yield index, fn(task, *args)
            return
        queue, in_flight = iter(enumerate(tasks)), collections.deque()
        with contextlib.ExitStack() as stack:
            pool = stack.enter_context(concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="chunk"))
            reader = stack.enter_context(concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="read")) \
                if self.read_ahead and isinstance(fn, Staged) else None

            def submit(task: Any) -> concurrent.futures.Future:
                if reader is None:
                    return pool.submit(fn, task, *args)
                read = reader.submit(fn.read, task, *args)
                return pool.submit(lambda: fn.compute(task, read.result(), *args))

            try:
                for index, task in itertools.islice(queue, self.threads + 2):
                    in_flight.append((index, submit(task)))
                while in_flight:
                    index, future = in_flight.popleft()
                    result = future.result()
                    for next_index, task in itertools.islice(queue, 1):
                        in_flight.append((next_index, submit(task)))
                    yield index, result
            finally:
                for _, future in in_flight:
                    future.cancel()


class DaskExecutor:
    """Runs tasks on the workers of a ``distributed.Client``, a bounded number at a time."""

    distributed = True

    def __init__(self, client, max_in_flight: int | None = None):
        self.client = client
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.max_in_flight = max_in_flight or 2 * n_workers
        self.description = f"Dask scheduler {client.scheduler.address} ({n_workers} workers)"

    def map(self, fn: Callable, tasks: Sequence, *args: Any) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        prefix, queue = f"{getattr(fn, '__name__', 'task')}-{uuid.uuid4().hex[:8]}", iter(enumerate(tasks))
        index_of, done = {}, as_completed()

        def submit_next() -> None:
            for index, task in queue:
                future = self.client.submit(fn, task, *args, key=f"{prefix}-{index}", pure=False)
                index_of[future.key] = index
                done.add(future)
                return

        for _ in range(self.max_in_flight):
            submit_next()
        for future in done:
            result = future.result()
            index = index_of.pop(future.key)
            future.release()
            submit_next()
            yield index, result


class OrderedFold:
    """Merges values given with their index (0, 1, 2, ... each once, in any order) in index order.

    ``merge(accumulated, value)`` returns the new accumulated value; the first value starts
    it.  Values that arrive early wait in a buffer until the ones before them have come.
    """

    def __init__(self, merge: Callable[[Any, Any], Any]):
        self.merge, self.pending, self.accumulated, self.next_index = merge, {}, None, 0

    def add(self, index: int, value: Any) -> None:
        if index < self.next_index or index in self.pending:
            raise RuntimeError(f"result {index} arrived twice; expected every index once")
        self.pending[index] = value
        while self.next_index in self.pending:
            value = self.pending.pop(self.next_index)
            self.accumulated = value if self.next_index == 0 else self.merge(self.accumulated, value)
            self.next_index += 1

    def result(self) -> Any:
        """The merge of every value; refuses when some index is missing."""
        if self.pending:
            raise RuntimeError(f"results {sorted(self.pending)} arrived without result {self.next_index}; "
                               "expected every index once")
        return self.accumulated


def fold_in_order(results: Iterable[tuple[int, Any]], merge: Callable[[Any, Any], Any],
                  advance: Callable[[int], None] | None = None) -> Any:
    """Merge ``results`` (index, value) in index order 0, 1, 2, ... whatever order they come in.

    ``merge(accumulated, value)`` returns the new accumulated value; the first value starts
    it.  Results that arrive early wait in a buffer; ``advance(index)`` is called per result.
    """
    fold = OrderedFold(merge)
    for index, value in results:
        fold.add(index, value)
        if advance is not None:
            advance(index)
    return fold.result()


def default_threads() -> int:
    """Threads for in-process chunk tasks: the cores this process may use, at most :data:`MAX_DEFAULT_THREADS`."""
    return max(1, min(MAX_DEFAULT_THREADS, usable_cores()))


@contextlib.contextmanager
def open_executor(scheduler: str | None = None, local_cluster: int | None = None,
                  threads: int | None = None) -> Iterator[Any]:
    """The executor for ``--scheduler ADDRESS`` or ``--local-cluster N`` (N worker processes), else in-process.

    ``threads`` is the in-process executor's thread count (default :func:`default_threads`;
    ignored with a cluster).
    """
    if threads is not None and threads < 1:
        raise ValueError(f"the in-process executor needs at least 1 thread, got {threads}")
    if local_cluster is not None and local_cluster < 1:
        raise ValueError(f"--local-cluster needs at least 1 worker, got {local_cluster}")
    if scheduler and local_cluster:
        raise ValueError(f"got both a scheduler ({scheduler}) and a local cluster ({local_cluster} workers); "
                         "expected at most one")
    if not scheduler and not local_cluster:
        yield InProcessExecutor(threads or default_threads())
        return

    from distributed import Client, LocalCluster

    if not logging.getLogger("gelato").isEnabledFor(logging.DEBUG):
        # importing distributed set its loggers to INFO (its own config), over the CLI's WARNING
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler:
        try:
            client = Client(scheduler)
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        with client:
            log.info("connected to Dask scheduler %s", scheduler)
            yield DaskExecutor(client)
        return
    with LocalCluster(n_workers=local_cluster, threads_per_worker=1, processes=True, host=LOOPBACK,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        log.info("local Dask cluster on %s with %d worker processes", cluster.scheduler_address, local_cluster)
        yield DaskExecutor(client)
