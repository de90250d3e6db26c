"""Synthetic datasets (built once per session) and a runner for the probe-track stage."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from alignprep.config import ParamLayer, PipelineConfig, build_config
from alignprep.inputs.manifest import read_manifest
from alignprep.synthetic import SyntheticDataset, SyntheticSpec

from ..datasets import cached_dataset
from ..plan_runner import TrackOutcome, run_tracks


def stage_config(data_root: Path, results: Path, **params: object) -> PipelineConfig:
    """A config for a synthetic data root (defaults otherwise)."""
    values = {
        "data_root": str(data_root),
        "results_root": str(results),
        "scratch_root": str(results.parent / f"{results.name}_scratch"),
        **params,
    }
    return build_config([ParamLayer("test", values)], environ={})


def run_stage(data_root: Path, results: Path, **params: object) -> dict[str, TrackOutcome]:
    """Run the probe stage on a data root; results keyed by histology track id."""
    config = stage_config(data_root, results, **params)
    manifest = read_manifest(data_root / "manifest.csv")
    return run_tracks(config, manifest)


@pytest.fixture(scope="session")
def warped(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    """Non-identity affines and smooth warps, geometry only (no voxel data)."""
    return cached_dataset(tmp_path_factory.mktemp("warped"), SyntheticSpec(content_level=None))


@pytest.fixture(scope="session")
def affine_only(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    """The same dataset with zero displacement fields."""
    spec = SyntheticSpec(content_level=None).affine_only()
    return cached_dataset(tmp_path_factory.mktemp("affine"), spec)


@pytest.fixture
def editable(warped: SyntheticDataset, tmp_path: Path) -> Callable[[], Path]:
    """A private copy of the warped data root, to break in one test."""

    def _copy() -> Path:
        dst = tmp_path / "data"
        shutil.copytree(warped.data_root, dst)
        return dst

    return _copy
