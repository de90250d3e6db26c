"""Each bad input: a clear error naming the file/row/layer, and the other rows still processed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.inputs.manifest import read_manifest

from ..plan_runner import run_tracks
from .conftest import run_stage, stage_config

ALL = {"ProbeA_track", "ProbeB_a", "ProbeB_b", "ProbeB_c", "ProbeB_d"}


def _edit_layer(data: Path, probe_file: str, layer: str, edit) -> Path:
    path = data / "probe_annotations" / f"{probe_file}.json"
    state = json.loads(path.read_text())
    state["layers"] = [lyr for lyr in state["layers"] if edit(lyr) is not False]
    path.write_text(json.dumps(state))
    return path


def _rows(data: Path) -> list[dict[str, str]]:
    with (data / "manifest.csv").open() as fh:
        return list(csv.DictReader(fh))


def _write_rows(data: Path, rows: list[dict[str, str]], columns: list[str] | None = None) -> None:
    columns = columns or list(rows[0])
    with (data / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _assert_others_ok(results, warped, failed: set[str]) -> None:
    truth = warped.truth["tracks"]
    for track_id, res in results.items():
        if track_id in failed:
            continue
        assert res.status in ("ok", "skipped"), (track_id, res.reason)  # skipped: unchanged
        err = np.abs(np.asarray(res.points["bregma_um"]) - truth[track_id]["bregma_um"]).max()
        assert err < 5.0
        assert all(p.is_file() for p in res.files)


def _failed(results, track_id: str) -> str:
    res = results[track_id]
    assert res.status == "failed"
    assert res.files == []
    return res.reason


def test_missing_annotation_layer(editable, warped, tmp_path):
    data = editable()
    ann = _edit_layer(data, "ProbeB_annotations", "ProbeB_b",
                      lambda lyr: lyr["name"] != "ProbeB_b")  # fmt: skip
    results = run_stage(data, tmp_path / "out")
    reason = _failed(results, "ProbeB_b")
    assert str(ann) in reason and "ProbeB_b" in reason and "ProbeB_a" in reason  # lists the others
    _assert_others_ok(results, warped, {"ProbeB_b"})


def test_layer_with_one_point(editable, warped, tmp_path):
    data = editable()

    def one_point(lyr):
        if lyr["name"] == "ProbeB_c":
            lyr["annotations"] = lyr["annotations"][:1]

    ann = _edit_layer(data, "ProbeB_annotations", "ProbeB_c", one_point)
    results = run_stage(data, tmp_path / "out")
    reason = _failed(results, "ProbeB_c")
    assert str(ann) in reason and "'ProbeB_c'" in reason and "1" in reason and "2" in reason
    _assert_others_ok(results, warped, {"ProbeB_c"})


def test_ng_scale_mismatch(editable, warped, tmp_path):
    data = editable()

    def rescale(lyr):
        if lyr["name"] == "ProbeA_track":
            lyr["source"]["transform"]["outputDimensions"]["x"] = [3.6e-6, "m"]

    ann = _edit_layer(data, "ProbeA_annotations", "ProbeA_track", rescale)
    results = run_stage(data, tmp_path / "out")
    reason = _failed(results, "ProbeA_track")
    assert str(ann) in reason and "ProbeA_track" in reason
    assert "x: Neuroglancer scale 3.6 um vs OME-Zarr level-0 spacing 1.8 um" in reason
    _assert_others_ok(results, warped, {"ProbeA_track"})


def test_unknown_dimension_names(editable, warped, tmp_path):
    data = editable()

    def rename(lyr):
        if lyr["name"] == "ProbeB_d":
            dims = lyr["source"]["transform"]["outputDimensions"]
            lyr["source"]["transform"]["outputDimensions"] = {
                ("q" if k == "y" else k): v for k, v in dims.items()
            }

    ann = _edit_layer(data, "ProbeB_annotations", "ProbeB_d", rename)
    results = run_stage(data, tmp_path / "out")
    reason = _failed(results, "ProbeB_d")
    assert str(ann) in reason and "ProbeB_d" in reason and "'q'" in reason
    _assert_others_ok(results, warped, {"ProbeB_d"})


def test_annotation_file_not_found(editable, warped, tmp_path):
    data = editable()
    (data / "probe_annotations" / "ProbeA_annotations.json").unlink()
    results = run_stage(data, tmp_path / "out")
    reason = _failed(results, "ProbeA_track")
    assert str(data / "*" / "ProbeA_annotations.json") in reason
    assert "no annotation file matches" in reason
    _assert_others_ok(results, warped, {"ProbeA_track"})


def test_manifest_missing_a_column(editable):
    data = editable()
    rows = _rows(data)
    _write_rows(data, rows, [c for c in rows[0] if c != "probe_file"])
    with pytest.raises(InputError) as err:
        read_manifest(data / "manifest.csv")
    assert str(data / "manifest.csv") in str(err.value) and "probe_file" in str(err.value)


def test_duplicate_recording_probe_shank(editable, warped, tmp_path):
    data = editable()
    rows = _rows(data)
    dup = dict(next(r for r in rows if r["histology_track_id"] == "ProbeB_b"))
    dup["histology_track_id"] = "ProbeB_b_retraced"  # a second track claiming ProbeB shank 1
    _write_rows(data, [*rows, dup])
    manifest = read_manifest(data / "manifest.csv")
    text = manifest.problems_text()
    assert "line 4" in text and "line 7" in text and "ProbeB" in text  # both rows named
    results = {r.row.histology_track_id: r for r in
               run_tracks(stage_config(data, tmp_path / "out"), manifest).values()}  # fmt: skip
    assert set(results) == ALL - {"ProbeB_b"}
    _assert_others_ok(results, warped, set())


def test_mixed_mouse_ids(editable, warped, tmp_path):
    data = editable()
    rows = _rows(data)
    rows[2]["mouseid"] = "999999"  # line 4: ProbeB_b
    _write_rows(data, rows)
    manifest = read_manifest(data / "manifest.csv")
    assert manifest.mouse_id == "000123"
    assert "line 4" in manifest.problems_text() and "999999" in manifest.problems_text()
    results = {r.row.histology_track_id: r for r in
               run_tracks(stage_config(data, tmp_path / "out"), manifest).values()}  # fmt: skip
    assert set(results) == ALL - {"ProbeB_b"}
    _assert_others_ok(results, warped, set())


def test_failed_row_leaves_no_stale_outputs(editable, warped, tmp_path):
    data = editable()
    first = run_stage(data, tmp_path / "out")["ProbeB_c"]
    assert first.status == "ok" and all(p.is_file() for p in first.files)
    _edit_layer(data, "ProbeB_annotations", "ProbeB_c", lambda lyr: lyr["name"] != "ProbeB_c")
    again = run_stage(data, tmp_path / "out")
    assert again["ProbeB_c"].status == "failed"
    assert not any(p.exists() for p in first.files)  # last run's files removed, not left valid
    _assert_others_ok(again, warped, {"ProbeB_c"})


def test_mouse_level_error_fails_every_row_with_the_reason(editable, tmp_path):
    data = editable()
    (data / "spim_template_to_ccf" / "syn_1InverseWarp.nii.gz").unlink()
    results = run_stage(data, tmp_path / "out")
    assert {r.status for r in results.values()} == {"failed"}
    assert all("syn_1InverseWarp.nii.gz" in r.reason for r in results.values())
    assert not any((tmp_path / "out").rglob("*.json"))
