"""Interchangeable executors for the plan: serial, process pool, asyncio, Dask.

Each runs one picklable function over work envelopes and yields ``(envelope, outcome)`` as
they finish, where the outcome is the function's result or the exception that prevented one (a
worker killed for memory, a lost Dask worker). An executor lives for the whole run, so its
workers start once, not once per phase. The plan, the function and the envelopes are the same
for every executor; only the scheduling differs, so the outputs are identical.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from typing import Any, Literal, Protocol, TypeVar

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


class Executor(Protocol):
    """Runs ``fn`` over items; yields each item with its result or exception."""

    mode: Mode

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, Any]]: ...


class SerialExecutor:
    """One item after the other, in this process."""

    mode: Mode = "serial"

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, Any]]:
        for item in items:
            try:
                yield item, fn(item)
            except Exception as exc:  # the caller records the item as failed
                yield item, exc


class ProcessExecutor:
    """A pool of fresh (spawned) worker processes; ITK/ANTs threads make fork unsafe."""

    mode: Mode = "processes"

    def __init__(self, n_jobs: int) -> None:
        self.n_jobs = n_jobs
        self._pool: ProcessPoolExecutor | None = None

    def _get(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.n_jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
                initargs=(os.getpid(),),
            )
        return self._pool

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, Any]]:
        futures: dict[Future, T] = {self._get().submit(fn, item): item for item in items}
        broken = False
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except BrokenProcessPool as exc:  # a worker died (killed for memory?): the items
                broken = True  # still in flight fail with it; nothing is retried blindly
                yield futures[future], exc
            except Exception as exc:
                yield futures[future], exc
        if broken:
            self.close()  # the next phase gets a fresh pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class AsyncExecutor:
    """An asyncio event loop running items in worker threads, at most ``n_jobs`` at once."""

    mode: Mode = "async"

    def __init__(self, n_jobs: int) -> None:
        self.n_jobs = n_jobs

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, Any]]:
        done: queue.Queue[tuple[T, Any]] = queue.Queue()

        async def one(item: T, gate: asyncio.Semaphore) -> None:
            async with gate:
                try:
                    result: Any = await asyncio.to_thread(fn, item)
                except Exception as exc:
                    result = exc
            done.put((item, result))

        async def main() -> None:
            gate = asyncio.Semaphore(max(1, self.n_jobs))
            await asyncio.gather(*(one(item, gate) for item in items))

        thread = threading.Thread(target=asyncio.run, args=(main(),), name="alignprep-async")
        thread.daemon = True
        thread.start()
        for _ in items:
            yield done.get()
        thread.join()


class DaskExecutor:
    """A Dask ``distributed`` client: an existing cluster (``scheduler_address``) or a
    ``LocalCluster`` of ``n_jobs`` single-threaded worker processes. Work and results travel
    as plain data; every worker reads the inputs from the same data_root paths."""

    mode: Mode = "dask"

    def __init__(self, n_jobs: int, scheduler_address: str | None = None) -> None:
        from distributed import Client, LocalCluster

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
            self.client = Client(self.cluster)
            log.info("Dask LocalCluster of %d worker process(es)", n_jobs)

    def run(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[T, Any]]:
        from distributed import as_completed as dask_completed

        futures = {self.client.submit(fn, item, pure=False): item for item in items}
        for future in dask_completed(futures):
            item = futures[future]
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
