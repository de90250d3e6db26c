"""Shared fixtures: repository paths and a runner for ``code/run`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .datasets import set_cache_dir

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_DIR = REPO_ROOT / "code"


@pytest.fixture(scope="session", autouse=True)
def _session_caches(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Caches shared by every test of the session (and by its xdist workers).

    Synthetic datasets are built once per spec (``tests/datasets.py``), and every run of the
    capsule keeps its passed transform checks in one folder (``ALIGNPREP_CACHE_DIR``): the check
    itself is tested where files are broken, and there the bytes differ, so it always runs.
    """
    shared = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the session's folder, above each worker's own
    set_cache_dir(shared / "datasets")
    os.environ["ALIGNPREP_CACHE_DIR"] = str(shared / "alignprep-cache")


def run_code(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``code/run`` with this interpreter (``CO_CPUS`` removed) and capture its output."""
    full_env = {k: v for k, v in os.environ.items() if k != "CO_CPUS"}
    full_env["ALIGNPREP_PYTHON"] = sys.executable
    full_env.update(env or {})
    return subprocess.run(
        [str(CODE_DIR / "run"), *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=900,  # generous: CI machines are slow and shared
    )


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``code/run`` with this interpreter from an unrelated working directory."""

    def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cwd = tmp_path / "elsewhere"
        cwd.mkdir(exist_ok=True)
        return run_code(*args, cwd=cwd, env=env)

    return _run


#: Modules whose tests run the whole capsule many times, longest first. Collected first, they
#: start first on the xdist workers (``--dist loadscope --no-loadscope-reorder``), so that no
#: long module is left running alone at the end while the other worker is idle.
LONG_MODULES = (
    "test_rerun_dependencies.py",
    "test_pipeline.py",
    "test_orchestration.py",
    "test_hostile_inputs.py",
    "test_faults.py",
    "test_validate_only.py",
    "test_signals.py",
    "test_run_ux.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Long end-to-end modules first (stable: the order inside each module is kept)."""
    rank = {name: i for i, name in enumerate(LONG_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
