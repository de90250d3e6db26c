"""Shared fixtures: repository paths and a runner for ``code/run`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CODE_DIR = REPO_ROOT / "code"


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
