"""Hostile inputs: paths that lead out of the data root, names that would climb out of the
results root, and another mouse's data. Each is refused with a message naming the key, row or
file, nothing is written for what failed, and the unaffected items' outputs stay byte-identical.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from alignprep import outputs
from alignprep.config import load_defaults
from alignprep.synthetic import SyntheticSpec

from .datasets import cached_dataset
from .test_pipeline import MOUSE, _hashes, _report, _run

REFERENCE_KEYS = (
    "ccf_template",
    "ccf_labels_compact",
    "ccf_labels_unique_values",
    "lca_template",
    "template_to_ccf_dir",
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Voxel data and ephys assets (built once for the module)."""
    spec = SyntheticSpec(ephys_preset="test")
    return cached_dataset(tmp_path_factory.mktemp("hostile") / "ds", spec)


@pytest.fixture(scope="module")
def clean_run(dataset, tmp_path_factory):
    """Outputs of an untouched run (histology and tracks), to compare unaffected items with."""
    results = tmp_path_factory.mktemp("clean") / "out"
    proc = _run(dataset.data_root, results, "--skip-ephys")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results


def _copy(dataset, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    return data


def _errors(results: Path) -> list[dict]:
    report = json.loads((results / "validation_report.json").read_text())
    return [c for c in report["checks"] if c["status"] == "error"]


def _files_outside(root: Path, allowed: list[Path]) -> list[Path]:
    """Files below ``root`` that are not below one of ``allowed``."""
    return [
        p for p in root.rglob("*") if p.is_file() and not any(p.is_relative_to(a) for a in allowed)
    ]


def _edit_manifest(data: Path, edit) -> None:
    path = data / "manifest.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0])
    rows = edit(rows, header) or rows
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


# --- nothing is read outside the data root ------------------------------------------------------


@pytest.mark.parametrize("key", REFERENCE_KEYS)
def test_reference_parameter_outside_the_data_root_is_refused(dataset, tmp_path, key):
    data = _copy(dataset, tmp_path)
    relative = load_defaults()["references"][key]
    outside = tmp_path / "elsewhere" / Path(relative).name
    outside.parent.mkdir()
    shutil.move(str(data / relative), outside)
    results = tmp_path / "out"
    params = json.dumps({"references": {key: str(outside)}})
    proc = _run(data, results, "--validate-only", "--params", params)
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert any(
        f"key 'references.{key}'" in c["message"] and "outside the data root" in c["message"]
        for c in _errors(results)
    ), _errors(results)
    assert sorted(p.name for p in results.iterdir()) == [
        "alignprep.log",
        "effective_config.json",
        "validation_report.json",
    ]


@pytest.mark.parametrize("key", ["neuroglancer", "manifest"])
def test_state_and_manifest_outside_the_data_root_are_refused(dataset, tmp_path, key):
    data = _copy(dataset, tmp_path)
    name = {"neuroglancer": "neuroglancer.json", "manifest": "manifest.csv"}[key]
    outside = tmp_path / "elsewhere" / name
    outside.parent.mkdir()
    shutil.move(str(data / name), outside)
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only", f"--{key}", str(outside))
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert any(
        f"key '{key}'" in c["message"] and str(outside) in c["message"] for c in _errors(results)
    )


def test_symlink_inside_the_data_root_pointing_outside_is_refused(dataset, tmp_path):
    data = _copy(dataset, tmp_path)
    target = tmp_path / "elsewhere" / "allen_mouse_ccf"
    target.parent.mkdir()
    shutil.move(str(data / "allen_mouse_ccf"), target)
    (data / "allen_mouse_ccf").symlink_to(target, target_is_directory=True)
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only")
    assert proc.returncode == 3, proc.stderr[-3000:]
    message = next(
        c["message"] for c in _errors(results) if "references.ccf_template" in c["message"]
    )
    assert f"resolves to {target}" in message and "outside the data root" in message


def test_channel_zarr_symlinked_outside_is_refused(dataset, tmp_path):
    data = _copy(dataset, tmp_path)
    truth = json.loads((dataset.root / "truth.json").read_text())
    zarr = data / truth["asset"] / "image_tile_fusing" / "OMEZarr" / f"{truth['channels'][0]}.zarr"
    target = tmp_path / "elsewhere" / zarr.name
    target.parent.mkdir()
    shutil.move(str(zarr), target)
    zarr.symlink_to(target, target_is_directory=True)
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only")
    assert proc.returncode == 3
    assert any(
        f"channel {truth['channels'][0]}" in c["message"]
        and "outside the data root" in c["message"]
        for c in _errors(results)
    ), _errors(results)


@pytest.mark.parametrize("column", ["registration_asset", "template_to_ccf_asset"])
@pytest.mark.parametrize("value", ["../elsewhere/reg", "{abs}"])
def test_per_brain_path_cell_outside_the_data_root_is_refused(dataset, tmp_path, column, value):
    data = _copy(dataset, tmp_path)
    outside = tmp_path / "elsewhere" / "reg"
    outside.mkdir(parents=True)
    cell = value.format(abs=outside)

    def edit(rows, header):
        header.append(column)
        for row in rows:
            row[column] = cell

    _edit_manifest(data, edit)
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only")
    assert proc.returncode == 3, proc.stderr[-3000:]
    assert any(
        f"key '{column}'" in c["message"] and "outside the data root" in c["message"]
        for c in _errors(results)
    ), _errors(results)


def test_surface_finding_outside_the_data_root_fails_its_probe(dataset, tmp_path):
    data = _copy(dataset, tmp_path)
    outside = tmp_path / "elsewhere" / "surface"
    outside.mkdir(parents=True)

    def edit(rows, header):
        header.append("surface_finding")
        for row in rows:
            row["surface_finding"] = str(outside) if row["ephys_collection"] == "ProbeA" else ""

    _edit_manifest(data, edit)
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only")
    assert proc.returncode == 3
    errors = [c for c in _errors(results) if c["scope"] == "probe"]
    assert [c["key"].rsplit("/", 1)[1] for c in errors] == ["ProbeA"]
    assert "key 'surface_finding'" in errors[0]["message"]
    assert "outside the data root" in errors[0]["message"]


# --- nothing is written outside the results root ---------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("histology_track_id", "../../../escaped"),
        ("ephys_collection", "../../escaped"),
        ("probe_file", "../ProbeA_annotations"),
        ("sorted_recording", "/tmp/escaped_sorted_x"),
    ],
)
def test_name_cell_cannot_write_outside_the_results_root(
    dataset, clean_run, tmp_path, column, value
):
    data = _copy(dataset, tmp_path)
    victim: dict[str, str] = {}

    def edit(rows, header):
        row = next(r for r in rows if r["ephys_collection"] == "ProbeB")
        victim.update(row)
        row[column] = value

    _edit_manifest(data, edit)
    results = tmp_path / "run" / "out"
    results.parent.mkdir()
    proc = _run(data, results, "--allow-partial", "--skip-ephys")
    assert proc.returncode == 0, proc.stderr[-3000:]
    failed = [i for i in _report(results)["items"] if i["status"] == "failed"]
    assert failed and all(f"{column} {value!r}" in i["reason"] for i in failed), failed
    assert all("expected a plain name" in i["reason"] for i in failed)
    # nothing anywhere but the results and scratch roots
    assert _files_outside(tmp_path / "run", [results, results.parent / "out_scratch"]) == []
    assert not Path("/tmp/escaped_sorted_x").exists()
    # the unaffected items wrote exactly what a clean run writes
    ok_hashes = _hashes(results)
    clean = _hashes(clean_run)
    track = victim["histology_track_id"]
    for rel, digest in ok_hashes.items():
        if rel.endswith((".json", ".fcsv")) and track in rel:
            continue
        if rel in (f"{MOUSE}/datapackage.json", "manifest.csv", "README.md"):  # list what is there
            continue
        if rel in {f"{MOUSE}/qc/{n}" for n in ("figures-qc_mouse.json", "figures-qc_tracks.json")}:
            continue  # the QC figures of the mouse and its tracks list every track that exists
        if rel == f"{MOUSE}/qc/tracks_ccf.png":
            continue  # ... and the atlas view draws them all
        assert clean.get(rel) == digest, rel


# --- the wrong mouse ------------------------------------------------------------------------


def test_smartspim_asset_of_another_subject_is_refused(dataset, tmp_path):
    data = _copy(dataset, tmp_path)
    truth = json.loads((dataset.root / "truth.json").read_text())
    meta_path = data / truth["asset"] / "metadata.nd.json"
    meta = json.loads(meta_path.read_text())
    meta["subject"]["subject_id"] = "123"  # the same mouse without its leading zeros
    meta_path.write_text(json.dumps(meta))
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only")
    assert proc.returncode == 3
    message = next(c["message"] for c in _errors(results) if c["scope"] == "mouse")
    assert "metadata.nd.json subject.subject_id says '123'" in message
    assert "mouseid is '000123'" in message and str(data / truth["asset"]) in message


def test_sorted_asset_of_another_subject_fails_its_probe(dataset, clean_run, tmp_path):
    data = _copy(dataset, tmp_path)
    sorted_dir = next(p for p in data.iterdir() if "_sorted_" in p.name)
    desc_path = sorted_dir / "data_description.json"
    desc = json.loads(desc_path.read_text())
    desc["subject_id"] = "654321"
    desc_path.write_text(json.dumps(desc))
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only")
    assert proc.returncode == 3
    errors = [c for c in _errors(results) if c["scope"] == "probe"]
    assert {c["key"].rsplit("/", 1)[1] for c in errors} == {"ProbeA", "ProbeB"}
    assert all(
        "data_description.json subject_id says '654321'" in c["message"]
        and "mouseid is '000123'" in c["message"]
        for c in errors
    )
    # a run fails both probes' ephys and writes nothing for them; histology and tracks are
    # intact; each folder's channel regions fail too, saying that its ephys failed
    proc = _run(data, results, "--allow-partial")
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {i["name"]: i for i in _report(results)["items"]}
    assert {n for n, i in items.items() if i["status"] == "failed"} == {
        n for n in items if n.startswith(("ephys ", "channel regions "))
    }
    for name, item in items.items():
        if name.startswith("channel regions "):
            ephys = "ephys " + name.removeprefix("channel regions ")
            assert f"{ephys} failed in this run" in item["reason"], item["reason"]
            assert "654321" in item["reason"]  # the ephys item's own reason, carried over
    assert not list(results.rglob("spikes.*"))
    assert not list(results.rglob(outputs.CHANNEL_REGIONS_DIR))
    clean = _hashes(clean_run)
    for rel, digest in _hashes(results).items():
        if "image_space_histology" in rel or "track_data" in rel:
            assert clean[rel] == digest, rel


def test_outputs_refuse_unsafe_names(tmp_path):
    with pytest.raises(ValueError, match=r"contains '\.\.'"):
        outputs.probe_dir(tmp_path, "m", "a..b", "ProbeA")
    with pytest.raises(ValueError, match="path separator"):
        outputs.channel_path(tmp_path, "m", "a/x")
