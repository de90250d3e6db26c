"""The process pool's fork server: it preloads the stages and leaves at once when the run ends,
and importing its preload anywhere else changes nothing about how that process exits; its
workers collect garbage, but never walk what the server imported. An executor being started:
the run's process runs the items meanwhile, then hands it the rest."""

from __future__ import annotations

import contextlib
import functools
import gc
import subprocess
import sys
import threading

import pytest

from alignprep.orchestration import executors
from alignprep.orchestration.executors import DaskExecutor, ProcessExecutor
from alignprep.orchestration.preload import in_fork_server

from ..conftest import CODE_DIR


def test_the_preload_imported_outside_a_fork_server_keeps_the_exit_code():
    code = "import alignprep.orchestration.preload as p; assert not p.in_fork_server(); exit(3)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=CODE_DIR, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 3, proc.stderr[-2000:]


def _where(_: object) -> bool:
    return in_fork_server()


def _run_one(executor, fn) -> object:
    """``fn(None)`` on a worker of ``executor``, which is closed after."""
    try:
        executor.submit(fn, None)
        ((_, outcome),) = list(executor.completed())
    finally:
        executor.close()
    return outcome


def test_pool_workers_come_from_the_fork_server_that_ran_the_preload():
    assert _run_one(ProcessExecutor(1), _where) is True
    assert not in_fork_server()  # this process is not one


def _gc_state(_: object) -> tuple[bool, int]:
    return gc.isenabled(), gc.get_freeze_count()


@pytest.mark.parametrize("executor_class", [ProcessExecutor, DaskExecutor])
def test_workers_collect_garbage_but_not_the_imports_of_their_fork_server(executor_class):
    enabled, frozen = _run_one(executor_class(1), _gc_state)
    assert enabled is True
    # the stages' libraries: numpy, pandas, matplotlib, spikeinterface... (about 300,000)
    assert frozen > 100_000


class _Elsewhere:
    """A stand-in for a started pool: it runs what it is given, tagging each result."""

    mode = "processes"
    slots = 2

    def __init__(self) -> None:
        self.items: list[object] = []

    def warm(self, fn) -> None:
        fn()

    def submit(self, fn, item, priority=0.0) -> None:
        self.items.append(item)

    def completed(self):
        while self.items:
            item = self.items.pop(0)
            yield item, ("there", item)


def _here(item: object) -> tuple[str, object]:
    return "here", item


def _starting(monkeypatch, gate: threading.Event, address: str | None = None):
    monkeypatch.setattr(
        executors, "open_executor", lambda *args: contextlib.nullcontext(_Elsewhere())
    )
    wait = functools.partial(gate.wait, 30)  # a broken executor fails the test, never hangs it
    return executors.start_executor("processes", 2, wait, address)


def test_items_run_here_while_the_executor_starts_then_there_in_priority_order(monkeypatch):
    gate = threading.Event()
    with _starting(monkeypatch, gate) as executor:
        assert executor.slots == 2
        for name, priority in [("low", 1.0), ("high", 5.0), ("next", 1.0), ("mid", 3.0)]:
            executor.submit(_here, name, priority)
        outcomes = executor.completed()
        assert next(outcomes) == ("high", ("here", "high"))  # not started: run in this process
        gate.set()
        assert executor.wait_started(30)
        executor.submit(_here, "later", 9.0)
        rest = list(outcomes)
    # what was queued went to the executor in priority order (equal ones as submitted), then
    # what came after it started
    assert rest == [(n, ("there", n)) for n in ["mid", "low", "next", "later"]]


def test_nothing_waits_for_the_executor_when_every_item_ran_here(monkeypatch):
    gate = threading.Event()
    with _starting(monkeypatch, gate) as executor:
        executor.submit(_here, "only")
        assert list(executor.completed()) == [("only", ("here", "only"))]
        assert not executor.wait_started(0.1)  # still starting: completed() did not wait
        gate.set()


def test_a_sites_own_cluster_gets_every_item(monkeypatch):
    gate = threading.Event()
    with _starting(monkeypatch, gate, "tcp://127.0.0.1:8786") as executor:
        assert executor.slots is None  # the cluster orders the items itself
        executor.submit(_here, "a")
        threading.Timer(0.2, gate.set).start()
        assert list(executor.completed()) == [("a", ("there", "a"))]


def test_an_executor_that_cannot_start_fails_the_items_waiting_for_it(monkeypatch):
    def broken(*args):
        raise RuntimeError("no cluster at that address")

    monkeypatch.setattr(executors, "open_executor", broken)
    with executors.start_executor("dask", 2, lambda: None, "tcp://127.0.0.1:1") as executor:
        executor.submit(_here, "a")
        with pytest.raises(RuntimeError, match="no cluster at that address"):
            list(executor.completed())
