"""Tests in a real headless browser (Debian package ``chromium``).

They are collected by the normal ``pytest tests`` run; their modules mark them ``browser``
(deselect them with ``-m "not browser"``). Without ``chromium`` on PATH they skip, saying how to
install it.
"""

from __future__ import annotations

import shutil

import pytest

INSTALL_HINT = (
    "headless Chromium is not installed (no 'chromium' on PATH): run "
    "'bash environment/setup --tests' or 'apt-get install -y chromium'"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: runs a real headless Chromium")


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of the ``chromium`` executable, or skip with how to install it."""
    path = shutil.which("chromium")
    if path is None:
        pytest.skip(INSTALL_HINT)
    return path
