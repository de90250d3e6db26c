"""Interchangeable executors for the plan: serial, process pool, asyncio.

Each takes a picklable task function and a list of tasks and yields ``(task, outcome)`` as tasks
finish, so the caller can record progress immediately. The plan and the task functions are the
same for every executor; only the scheduling differs, so outputs are identical.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Literal, TypeVar

T = TypeVar("T")
R = TypeVar("R")
Mode = Literal["serial", "processes", "async"]


def run_serial(fn: Callable[[T], R], tasks: Sequence[T]) -> Iterator[tuple[T, R]]:
    """One task after the other, in this process."""
    for task in tasks:
        yield task, fn(task)


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


def run_processes(fn: Callable[[T], R], tasks: Sequence[T], n_jobs: int) -> Iterator[tuple[T, R]]:
    """A pool of ``n_jobs`` fresh (spawned) processes; ITK/ANTs threads make fork unsafe."""
    if n_jobs <= 1:
        yield from run_serial(fn, tasks)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(n_jobs, len(tasks)),
        mp_context=context,
        initializer=die_with_parent,
        initargs=(os.getpid(),),
    ) as pool:
        futures = {pool.submit(fn, task): task for task in tasks}
        for future in as_completed(futures):
            yield futures[future], future.result()


def run_async(fn: Callable[[T], R], tasks: Sequence[T], n_jobs: int) -> Iterator[tuple[T, R]]:
    """An asyncio event loop running tasks in worker threads, at most ``n_jobs`` at once."""
    done: queue.Queue[tuple[T, R] | BaseException] = queue.Queue()

    async def one(task: T, gate: asyncio.Semaphore) -> None:
        async with gate:
            result = await asyncio.to_thread(fn, task)
        done.put((task, result))

    async def main() -> None:
        gate = asyncio.Semaphore(max(1, n_jobs))
        await asyncio.gather(*(one(task, gate) for task in tasks))

    def loop() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced in the caller's thread
            done.put(exc)

    thread = threading.Thread(target=loop, name="alignprep-async", daemon=True)
    thread.start()
    for _ in tasks:
        item = done.get()
        if isinstance(item, BaseException):
            raise item
        yield item
    thread.join()


def execute(
    fn: Callable[[T], R], tasks: Sequence[T], mode: Mode, n_jobs: int
) -> Iterator[tuple[T, R]]:
    """Dispatch to one executor."""
    if mode == "async":
        return run_async(fn, tasks, n_jobs)
    if mode == "processes":
        return run_processes(fn, tasks, n_jobs)
    return run_serial(fn, tasks)
