"""A broken OME-Zarr array fails the histology with a named channel, level and file (issue 17),
writes nothing, and leaves every other output of the mouse byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nrrd
import pytest

from alignprep import outputs
from alignprep.inputs.manifest import read_manifest
from alignprep.inputs.smartspim import OMEZARR_DIR
from alignprep.stages.context import MouseContext
from alignprep.stages.histology import run_histology
from alignprep.synthetic import OTHER_CHANNEL, REG_CHANNEL

from ..datasets import cached_dataset
from ..digests import tree_digests
from ..plan_runner import run_tracks
from .conftest import stage_config
from .test_reference_orders import SPEC


def _digests(root: Path) -> dict[str, str]:
    return tree_digests(root)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The dataset and the digests of a clean run's track outputs."""
    root = tmp_path_factory.mktemp("arrays")
    ds = cached_dataset(root / "ds", SPEC)
    config = stage_config(ds.data_root, root / "out")
    tracks = run_tracks(config, read_manifest(ds.data_root / "manifest.csv")).values()
    assert all(t.status == "ok" for t in tracks)
    return ds, _digests(root / "out")


def _broken_copy(clean, tmp_path: Path, channel: str, breaker) -> tuple[Path, Path]:
    ds, _ = clean
    data = tmp_path / "data"
    shutil.copytree(ds.data_root, data)
    zarr_path = data / ds.asset.name / OMEZARR_DIR / f"{channel}.zarr"
    return data, breaker(zarr_path / "4")  # level 4: the level the histology reads


def _cut_chunk(level_dir: Path) -> Path:
    chunk = sorted(p for p in level_dir.rglob("*") if p.is_file() and p.name != ".zarray")[0]
    chunk.write_bytes(chunk.read_bytes()[:40])
    return chunk


def _remove_chunk(level_dir: Path) -> Path:
    chunk = sorted(p for p in level_dir.rglob("*") if p.is_file() and p.name != ".zarray")[-1]
    chunk.unlink()
    return chunk


@pytest.mark.parametrize(
    ("channel", "breaker", "words"),
    [
        (OTHER_CHANNEL, _cut_chunk, "truncated?"),
        (REG_CHANNEL, _cut_chunk, "truncated?"),
        (OTHER_CHANNEL, _remove_chunk, "1 chunk file(s) missing"),
    ],
)
def test_broken_chunk_fails_histology_only(clean, tmp_path, channel, breaker, words):
    data, chunk = _broken_copy(clean, tmp_path, channel, breaker)
    config = stage_config(data, tmp_path / "out")
    manifest = read_manifest(data / "manifest.csv")
    ctx = MouseContext.prepare(config, manifest)  # metadata is fine: the mouse is prepared
    result = run_histology(ctx)
    assert result.status == "failed"
    assert str(chunk) in result.reason
    assert f"channel {channel}, level 4" in result.reason and words in result.reason
    assert _volumes_left(config) == _atlas_part(config)  # nothing of the failed channels part
    tracks = run_tracks(config, manifest).values()
    assert all(t.status == "ok" for t in tracks)
    _, want = clean
    got = {k: v for k, v in _digests(tmp_path / "out").items() if not k.endswith(".nrrd")}
    assert got == want  # every track output byte-identical


def test_broken_zarray_of_another_channel_is_a_histology_error(clean, tmp_path):
    def no_dtype(level_dir: Path) -> Path:
        meta_path = level_dir / ".zarray"
        meta = json.loads(meta_path.read_text())
        del meta["dtype"]
        meta_path.write_text(json.dumps(meta))
        return meta_path

    data, meta_path = _broken_copy(clean, tmp_path, OTHER_CHANNEL, no_dtype)
    config = stage_config(data, tmp_path / "out")
    ctx = MouseContext.prepare(config, read_manifest(data / "manifest.csv"))
    result = run_histology(ctx)
    assert result.status == "failed"
    assert str(meta_path) in result.reason
    assert f"channel {OTHER_CHANNEL}, level 4" in result.reason and "'dtype'" in result.reason
    assert _volumes_left(config) == _atlas_part(config)  # nothing of the failed channels part
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file() and p.suffix != ".nrrd"]


def _volumes_left(config) -> set[Path]:
    """The NRRDs in the results, each complete (it reads)."""
    found = set(config.results_root.rglob("*.nrrd"))
    for path in found:
        nrrd.read(str(path))
    return found


def _atlas_part(config) -> set[Path]:
    """What the histology's atlas part writes: the CCF template and labels on G."""
    paths = outputs.histology_paths(config.results_root, SPEC.mouse_id)
    return {paths["ccf_template"], paths["labels"]}
