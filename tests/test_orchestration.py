"""Scale-out: Dask, slices (``--only``) merged by ``--collect``, several mice in one run.

Every product must be byte-identical to a serial one-capsule run; only run records differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alignprep import outputs
from alignprep.inputs.manifest import read_manifest
from alignprep.synthetic import SyntheticSpec

from .conftest import run_code
from .datasets import cached_dataset
from .digests import tree_digests

CHECKS = json.dumps(
    {"checks": {"min_free_disk_gb": 0.1, "warn_free_disk_gb": 0.1, "min_available_ram_gb": 0.5}}
)


def hashes(results: Path) -> dict[str, str]:
    """sha256 of every product under ``results`` (run records and re-run state left out)."""
    return tree_digests(results)


def report(results: Path, mouse_id: str) -> dict:
    return json.loads((outputs.mouse_dir(results, mouse_id) / outputs.RUN_REPORT_NAME).read_text())


def roots(data: Path, results: Path) -> list[str]:
    return [
        "--data-root", str(data), "--results-root", str(results),
        "--scratch-root", str(results.parent / f"{results.name}_scratch"), "--params", CHECKS,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """The synthetic test dataset (two recordings' worth of probes, ephys included)."""
    return cached_dataset(
        tmp_path_factory.mktemp("orchestration") / "ds", SyntheticSpec(ephys_preset="test")
    )


@pytest.fixture(scope="module")
def serial(dataset, tmp_path_factory):
    """The reference: one serial run of the whole plan."""
    results = tmp_path_factory.mktemp("serial") / "r"
    proc = run_code(*roots(dataset.data_root, results), "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results


def test_dask_local_cluster_gives_the_serial_bytes(dataset, serial, run_cli, tmp_path):
    results = tmp_path / "dask"
    proc = run_cli(*roots(dataset.data_root, results), "--executor", "dask", "--n-jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    mouse = read_manifest(dataset.data_root / "manifest.csv").mouse_id
    assert report(results, mouse)["executor"] == "dask"
    assert "LocalCluster" in proc.stderr  # it started its own cluster: no address was given
    assert len(hashes(serial)) > 30
    assert hashes(results) == hashes(serial)


def test_slices_collected_give_the_one_capsule_bytes(dataset, serial, run_cli, tmp_path):
    manifest = read_manifest(dataset.data_root / "manifest.csv")
    probes = sorted({f"{r.recording_id}/{r.ephys_collection}" for r in manifest.rows})
    assert len(probes) >= 2
    slices = ["histology", *(f"probe:{p}" for p in probes)]
    folders = []
    for i, selector in enumerate(slices):
        folder = tmp_path / f"slice{i}"
        proc = run_cli(*roots(dataset.data_root, folder), "--only", selector, "--n-jobs", "1")
        assert proc.returncode == 0, (selector, proc.stderr[-3000:])
        assert not list(folder.rglob("datapackage.json"))  # a slice is not a finished run
        folders.append(str(folder))
    merged = tmp_path / "merged"
    proc = run_cli(*roots(dataset.data_root, merged), "--collect", *folders)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert hashes(merged) == hashes(serial)
    counts = report(merged, manifest.mouse_id)["counts"]
    assert counts["failed"] == 0
    # a missing slice is a failed item, never a silent gap
    partial = tmp_path / "partial"
    proc = run_cli(*roots(dataset.data_root, partial), "--collect", folders[0])  # histology only
    assert proc.returncode == 1, proc.stderr[-3000:]
    failed = [i for i in report(partial, manifest.mouse_id)["items"] if i["status"] == "failed"]
    assert failed and all("in no collected folder" in i["reason"] for i in failed)
    assert {i["name"].split()[0] for i in failed} == {"ephys", "track", "channel"}  # all missing


def test_an_unknown_selector_is_a_usage_error(dataset, run_cli, tmp_path):
    proc = run_cli(*roots(dataset.data_root, tmp_path / "r"), "--only", "histolgy")
    assert proc.returncode == 2
    assert "'histolgy' is not a selector" in proc.stderr


def _second_mouse(dataset, tmp_path: Path) -> tuple[Path, str, str]:
    """One data root holding the dataset's mouse and a second one (own manifest and state)."""
    other = cached_dataset(
        tmp_path / "other", SyntheticSpec(ephys_preset="test", mouse_id="000456")
    )
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    src = other.data_root
    for path in src.iterdir():
        if path.name in ("manifest.csv", "neuroglancer.json", "probe_annotations"):
            continue
        if not (data / path.name).exists():
            shutil.copytree(path, data / path.name)
    annotations = data / "probe_annotations_000456"
    annotations.mkdir()
    rows = (src / "manifest.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("probe_file")
    renamed = [rows[0]]
    for line in rows[1:]:
        cells = line.split(",")
        old = cells[col]
        cells[col] = f"m456_{old}"
        shutil.copy(src / "probe_annotations" / f"{old}.json", annotations / f"m456_{old}.json")
        renamed.append(",".join(cells))
    (data / "manifest_000456.csv").write_text("\n".join(renamed) + "\n")
    shutil.copy(src / "neuroglancer.json", data / "neuroglancer_000456.json")
    first = read_manifest(data / "manifest.csv").mouse_id
    return data, first, "000456"


def test_two_mice_in_one_data_root_are_two_results(dataset, serial, run_cli, tmp_path):
    data, first, second = _second_mouse(dataset, tmp_path)
    results = tmp_path / "both"
    proc = run_cli(*roots(data, results), "--n-jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for mouse in (first, second):
        assert (outputs.mouse_dir(results, mouse) / "datapackage.json").is_file()
        assert report(results, mouse)["counts"]["failed"] == 0
    mine = {k: v for k, v in hashes(results).items() if k.startswith(f"{first}/")}
    theirs = {k: v for k, v in hashes(serial).items() if k.startswith(f"{first}/")}
    assert mine == theirs  # the first mouse is exactly what a run of it alone gives
    assert any(k.startswith(f"{second}/") for k in hashes(results))


def test_a_failing_mouse_never_stops_the_others(dataset, run_cli, tmp_path):
    data, first, second = _second_mouse(dataset, tmp_path)
    asset = next(p for p in data.iterdir() if p.name.startswith("SmartSPIM") and second in p.name)
    shutil.rmtree(asset / "image_atlas_alignment")  # the second mouse loses its registration
    results = tmp_path / "both"
    proc = run_cli(*roots(data, results))
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert report(results, first)["counts"]["failed"] == 0
    assert (outputs.mouse_dir(results, first) / "datapackage.json").is_file()
    stopped = report(results, second)
    assert stopped["counts"]["failed"] >= 1
    assert not (outputs.mouse_dir(results, second) / "datapackage.json").exists()
