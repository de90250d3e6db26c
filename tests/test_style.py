"""The code base is ruff clean (lint and format) with the project's settings."""

from __future__ import annotations

import subprocess
import sys

from .conftest import CODE_DIR, REPO_ROOT


def _ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "ruff",
            *args,
            "--config",
            str(CODE_DIR / "pyproject.toml"),
            "code",
            "tests",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )


def test_ruff_check_clean():
    proc = _ruff("check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_format_clean():
    proc = _ruff("format", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
