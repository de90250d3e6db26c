"""The process pool's fork server: it preloads the stages and leaves at once when the run ends,
and importing its preload anywhere else changes nothing about how that process exits."""

from __future__ import annotations

import subprocess
import sys

from alignprep.orchestration.executors import ProcessExecutor
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


def test_pool_workers_come_from_the_fork_server_that_ran_the_preload():
    executor = ProcessExecutor(1)
    try:
        executor.submit(_where, None)
        ((_, outcome),) = list(executor.completed())
    finally:
        executor.close()
    assert outcome is True
    assert not in_fork_server()  # this process is not one
