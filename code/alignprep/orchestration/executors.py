"""Interchangeable executors for the plan: serial, process pool, asyncio, Dask.

Each runs a picklable function on submitted work envelopes and yields ``(envelope, outcome)``
as they finish (work submitted meanwhile included, so the plan can submit each item when its
inputs exist), where the outcome is the function's result or the exception that prevented one (a
worker killed for memory, a lost Dask worker). An executor lives for the whole run, so its
workers start once, not once per phase. The plan, the function and the envelopes are the same
for every executor; only the scheduling differs, so the outputs are identical.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import multiprocessing
import os
import queue
import select
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import ExitStack, contextmanager
from typing import Any, Literal, Protocol, TypeVar

from ..gcpause import paused
from ..logs import get_logger

T = TypeVar("T")
R = TypeVar("R")
Mode = Literal["serial", "processes", "async", "dask"]

log = get_logger("orchestration.executors")


def die_with_parent(parent_pid: int) -> None:
    """Make this process receive SIGKILL when its parent ``parent_pid`` dies (Linux; else no-op).

    A run killed with SIGKILL cannot stop its pool; without this its spawned workers (and the
    resource tracker they keep alive) would wait forever as orphans.
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl: do not linger
        os._exit(1)


def exit_with_run(run_pid: int) -> None:
    """Pool worker initializer: leave as soon as the run's process ``run_pid`` is gone.

    A worker forked by the fork server is not the run's child, so the kernel's parent-death
    signal cannot follow the run; and the fork server lives as long as any worker does (each
    holds its keep-alive pipe). A thread waits on the run's process (a pidfd) instead: whatever
    ends the run (a SIGKILL, the OOM killer, its normal exit), its workers leave with it.
    """
    try:
        pidfd = os.pidfd_open(run_pid)
    except ProcessLookupError:
        os._exit(1)

    def watch() -> None:
        select.select([pidfd], [], [])  # readable once the process has exited
        os._exit(1)

    threading.Thread(target=watch, name="alignprep-exit-with-run", daemon=True).start()


class Executor(Protocol):
    """Runs submitted items; :meth:`completed` yields each with its result or exception."""

    mode: Mode
    slots: int | None  # items it runs at once (None: it queues and orders them itself)

    def submit(self, fn: Callable[[T], R], item: T, priority: float = 0.0) -> None:
        """Queue ``fn(item)``; of several queued, higher ``priority`` first."""
        ...

    def completed(self) -> Iterator[tuple[Any, Any]]:
        """Each submitted item as it finishes, with its outcome; items submitted while this
        iterates are included; it ends when none is outstanding."""
        ...


def run_here(fn: Callable[[T], R], item: T) -> R | Exception:
    """``fn(item)`` in this process; the exception that prevented a result is the outcome (the
    caller records the item as failed)."""
    try:
        return fn(item)
    except Exception as exc:
        return exc


def cluster_slots(n_jobs: int, scheduler_address: str | None) -> int | None:
    """Items a pool or Dask cluster is given at once: one per worker, except on a site's own
    cluster (an address), whose workers may come and go and which orders the queue itself."""
    return None if scheduler_address else n_jobs


class SerialExecutor:
    """One item after the other, in this process, in submission order."""

    mode: Mode = "serial"
    slots: int | None = 1

    def __init__(self) -> None:
        self._queue: deque[tuple[Callable[[Any], Any], Any]] = deque()

    def submit(self, fn: Callable[[T], R], item: T, priority: float = 0.0) -> None:
        self._queue.append((fn, item))

    def completed(self) -> Iterator[tuple[Any, Any]]:
        while self._queue:
            fn, item = self._queue.popleft()
            yield item, run_here(fn, item)


#: Imported once by the fork server, which then forks each worker with them (not ANTs: ITK's
#: threads make fork unsafe, and the server never loads it; each worker loads it itself).
PRELOAD = ("alignprep.orchestration.preload",)
#: Imported first: the server imports without garbage collection (:mod:`alignprep.gcpause`).
PRELOAD_BEGIN = "alignprep.orchestration.preload_begin"


def start_fork_server(*first: str) -> None:
    """Start this process's fork server, importing ``first`` and then :data:`PRELOAD`.

    A process has one fork server, started by the first pool or cluster that needs one; its
    preload is fixed then (a LocalCluster after a pool gets workers without ``distributed``
    preloaded: slower to start, never wrong).
    """
    import multiprocessing.forkserver

    preload = [PRELOAD_BEGIN, *first, *PRELOAD]
    multiprocessing.get_context("forkserver").set_forkserver_preload(preload)
    multiprocessing.forkserver.ensure_running()


class ProcessExecutor:
    """A pool of worker processes forked by a fork server that imported the stages once."""

    mode: Mode = "processes"

    def __init__(self, n_jobs: int) -> None:
        self.n_jobs = self.slots = n_jobs
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, Any] = {}

    def _get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            start_fork_server()
            self._pool = ProcessPoolExecutor(
                max_workers=self.n_jobs,
                mp_context=multiprocessing.get_context("forkserver"),
                initializer=exit_with_run,
                initargs=(os.getpid(),),
            )
        return self._pool

    def warm(self, fn: Callable[[], object]) -> None:
        """Start every worker now, each running ``fn`` (its imports) while the run validates."""
        pool = self._get()
        for _ in range(self.n_jobs):  # each submit to a pool without an idle worker spawns one
            pool.submit(fn)

    def submit(self, fn: Callable[[T], R], item: T, priority: float = 0.0) -> None:
        try:
            future = self._get().submit(fn, item)
        except BrokenProcessPool:  # a worker died (killed for memory?): what was in flight
            self.close()  # failed with it, nothing is retried blindly; new work gets a new pool
            future = self._get().submit(fn, item)
        self._futures[future] = item

    def completed(self) -> Iterator[tuple[Any, Any]]:
        while self._futures:
            done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
            for future in done:
                item = self._futures.pop(future)
                try:
                    yield item, future.result()
                except Exception as exc:  # BrokenProcessPool when its worker died
                    yield item, exc

    def close(self) -> None:
        """Stop the pool and wait for its workers (not waiting leaves the pool's semaphores to
        the resource tracker, which then warns on the console about leaked objects)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class AsyncExecutor:
    """An asyncio event loop running items in worker threads, at most ``n_jobs`` at once."""

    mode: Mode = "async"

    def __init__(self, n_jobs: int) -> None:
        self.n_jobs = self.slots = n_jobs
        self._done: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self._outstanding = 0
        self._loop = asyncio.new_event_loop()
        self._gate = asyncio.Semaphore(max(1, n_jobs))
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="alignprep-async", daemon=True
        )
        self._thread.start()

    async def _one(self, fn: Callable[[T], R], item: T) -> None:
        async with self._gate:
            try:
                result: Any = await asyncio.to_thread(fn, item)
            except Exception as exc:
                result = exc
        self._done.put((item, result))

    def submit(self, fn: Callable[[T], R], item: T, priority: float = 0.0) -> None:
        self._outstanding += 1
        asyncio.run_coroutine_threadsafe(self._one(fn, item), self._loop)

    def completed(self) -> Iterator[tuple[Any, Any]]:
        while self._outstanding:
            item, result = self._done.get()
            self._outstanding -= 1
            yield item, result

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


def local_cluster_config() -> None:
    """Settings for the LocalCluster a run starts itself (never for a site's own cluster).

    Its nannies fork their workers from a fork server that imported ``distributed`` and the
    stages once (Dask spawns them by default: each worker then imports everything itself,
    seconds of CPU per worker on every run). Its workers' event loops wake less often: by
    default each wakes every 20 ms to time itself, every 100 ms to read its memory and every
    500 ms for the dashboard's system figures, and samples its threads' stacks every 10 ms for
    the dashboard's profile; every wake-up takes the GIL from the item being computed. With
    two workers on two cores a CPU-bound task (matplotlib figures and a Python loop) took
    25-30% more CPU than in the process pool, about the same with these settings; the
    four-probe run (``tests/benchmarks/executors.py``) went from 1.26x to 1.14x the pool's time,
    then to 1.005-1.09x once the fork server started first (see the README's Measured rows).
    The scheduler does not steal work: the schedule hands each worker one item (``slots``).
    There is no dashboard; memory is checked before the run (``checks``), and still every
    second.
    """
    # The fork server imports distributed and the stages while this process imports distributed
    # (started after, it would wait for that import: a second on the critical path).
    start_fork_server("distributed")
    import dask

    dask.config.set(
        {
            "distributed.worker.multiprocessing-method": "forkserver",
            "distributed.worker.profile.enabled": False,
            # the schedule gives its n_jobs workers an item each: nothing to steal, every 100 ms
            "distributed.scheduler.work-stealing": False,
            "distributed.admin.tick.interval": "1s",
            "distributed.worker.memory.monitor-interval": "1s",
            "distributed.admin.system-monitor.interval": "10s",
        }
    )


class DaskExecutor:
    """A Dask ``distributed`` client: an existing cluster (``scheduler_address``) or a
    ``LocalCluster`` of ``n_jobs`` single-threaded worker processes. Work and results travel
    as plain data; every worker reads the inputs from the same data_root paths."""

    mode: Mode = "dask"

    def __init__(self, n_jobs: int, scheduler_address: str | None = None) -> None:
        self.slots = cluster_slots(n_jobs, scheduler_address)
        if not scheduler_address:
            local_cluster_config()  # before importing distributed: see there
        with paused():  # half its CPU otherwise: collections walking this heap (see gcpause)
            from distributed import Client, LocalCluster, as_completed

        self.cluster = None
        if scheduler_address:
            self.client = Client(scheduler_address)
            log.info("Dask scheduler %s: %s", scheduler_address, self.client)
        else:
            self.cluster = LocalCluster(
                n_workers=n_jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            # results straight from the worker that holds them, not relayed by the scheduler
            # (its workers listen on this machine): a quarter less of this process's CPU per
            # item (tests/benchmarks/executor_items.py)
            self.client = Client(self.cluster, direct_to_workers=True)
            log.info("Dask LocalCluster of %d worker process(es)", n_jobs)
        self._finished = as_completed()
        self._items: dict[str, Any] = {}

    def warm(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` (its imports) on every worker now, while the run validates."""
        self.client.run(fn)

    def submit(self, fn: Callable[[T], R], item: T, priority: float = 0.0) -> None:
        future = self.client.submit(fn, item, pure=False, priority=round(1000 * priority))
        self._items[future.key] = item
        self._finished.add(future)

    def completed(self) -> Iterator[tuple[Any, Any]]:
        for future in self._finished:
            item = self._items.pop(future.key)
            try:
                yield item, future.result()
            except Exception as exc:
                yield item, exc

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@contextmanager
def open_executor(
    mode: Mode, n_jobs: int, scheduler_address: str | None = None
) -> Iterator[Executor]:
    """The executor of ``mode`` for the duration of a run."""
    executor: Any
    if mode == "processes" and n_jobs > 1:
        executor = ProcessExecutor(n_jobs)
    elif mode == "async":
        executor = AsyncExecutor(n_jobs)
    elif mode == "dask":
        executor = DaskExecutor(n_jobs, scheduler_address)
    else:
        executor = SerialExecutor()
    try:
        yield executor
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()


class StartingExecutor:
    """The executor of a run, usable while it starts: until it is ready, this process runs the
    submitted items itself, one at a time, highest priority first; then it hands the executor
    what is still queued and every later item.

    The pool's fork server imports every stage before it forks a worker (about 3 s of CPU, 1 s
    longer than this process takes to validate the demo), and a LocalCluster starts slower
    still; meanwhile one of two cores would idle. Only an executor with ``slots`` runs items
    here: the schedule then counts the item running here as one of them, so no more items run
    at once than the executor alone would run (its memory estimate holds). A site's own Dask
    cluster (no slots) is never replaced by this process: its items wait for it.
    """

    def __init__(
        self,
        mode: Mode,
        n_jobs: int,
        warm: Callable[[], object],
        scheduler_address: str | None = None,
    ) -> None:
        self.mode: Mode = mode
        self.slots = cluster_slots(n_jobs, scheduler_address)
        self._lock = threading.Lock()
        self._executor: Executor | None = None
        self._error: BaseException | None = None
        self._queued: list[tuple[float, int, Callable[[Any], Any], Any]] = []  # a heap
        self._order = itertools.count()  # equal priorities: first submitted, first run
        self._stack = ExitStack()
        self._thread = threading.Thread(
            target=self._start,
            args=(mode, n_jobs, warm, scheduler_address),
            name="alignprep-executor-start",
            daemon=True,
        )
        self._thread.start()

    def _start(
        self, mode: Mode, n_jobs: int, warm: Callable[[], object], address: str | None
    ) -> None:
        try:
            executor = self._stack.enter_context(open_executor(mode, n_jobs, address))
            warm_up = getattr(executor, "warm", None)
            if warm_up is not None:
                warm_up(warm)
        except BaseException as exc:
            self._error = exc
            return
        with self._lock:  # what was queued meanwhile goes first, in priority order
            while self._queued:
                minus_priority, _, fn, item = heapq.heappop(self._queued)
                executor.submit(fn, item, -minus_priority)
            self._executor = executor

    def wait_started(self, timeout_s: float | None = None) -> bool:
        """Wait until the executor has started (or failed to); whether it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def submit(self, fn: Callable[[T], R], item: T, priority: float = 0.0) -> None:
        with self._lock:
            if self._executor is None:
                heapq.heappush(self._queued, (-priority, next(self._order), fn, item))
                return
        self._executor.submit(fn, item, priority)

    def _next_here(self) -> tuple[Callable[[Any], Any], Any] | None:
        """The next item to run in this process: while the executor starts and has slots."""
        with self._lock:
            if self._executor is not None or not self._queued or self.slots is None:
                return None
            _, _, fn, item = heapq.heappop(self._queued)
            return fn, item

    def completed(self) -> Iterator[tuple[Any, Any]]:
        while (here := self._next_here()) is not None:
            fn, item = here
            yield item, run_here(fn, item)
        with self._lock:
            if self._executor is None and not self._queued:
                return  # everything ran here (a re-run with nothing to do)
        self.wait_started()
        if self._error is not None:
            raise self._error
        assert self._executor is not None
        yield from self._executor.completed()

    def close(self) -> None:
        self.wait_started()
        self._stack.close()


@contextmanager
def start_executor(
    mode: Mode, n_jobs: int, warm: Callable[[], object], scheduler_address: str | None = None
) -> Iterator[StartingExecutor]:
    """Open the executor of ``mode`` in the background, its workers running ``warm``.

    Worker processes (and a Dask cluster) take seconds to start and import the stages; started
    before validation, they do it while the run validates, and this process runs the first
    items meanwhile (:class:`StartingExecutor`).
    """
    executor = StartingExecutor(mode, n_jobs, warm, scheduler_address)
    try:
        yield executor
    finally:
        executor.close()
