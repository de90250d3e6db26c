"""Fixtures of the ephys stage tests: the synthetic ephys built once, extracted once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from alignprep.synthetic.ephys import build_ephys

from .helpers import MOUSE, EphysData, run, write_manifest


@pytest.fixture(scope="session")
def ephys_data(tmp_path_factory: pytest.TempPathFactory) -> EphysData:
    root = tmp_path_factory.mktemp("ephys")
    truth = build_ephys(root / "data", mouse_id=MOUSE, seed=0, preset="test")
    write_manifest(root / "data", truth)
    return EphysData(root / "data", truth)


@pytest.fixture(scope="session")
def extracted(ephys_data: EphysData, tmp_path_factory: pytest.TempPathFactory):
    results = tmp_path_factory.mktemp("ephys_results")
    return run(ephys_data.data_root, results, n_jobs=2), results


@pytest.fixture
def broken(ephys_data: EphysData, tmp_path: Path):
    data = tmp_path / "data"
    shutil.copytree(ephys_data.data_root, data, symlinks=True)
    return data
