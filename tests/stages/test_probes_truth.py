"""Probe tracks against ground truth: CCF, bregma and image-space picks, every frame and file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk

from alignprep import outputs
from alignprep.errors import InputError
from alignprep.space.transforms import Chain, Registration
from alignprep.synthetic import SyntheticSpec

from ..ants_reference import apply_to_points
from ..datasets import cached_dataset
from .conftest import run_stage

MOUSE = SyntheticSpec().mouse_id


def _picks(results_root, res) -> dict[str, np.ndarray]:
    r = res.row
    probe = outputs.probe_dir(results_root, MOUSE, r.recording_id, r.ephys_collection)
    paths = outputs.picks_paths(probe, res.suffix)
    return {k: np.array(json.loads(p.read_text())["xyz_picks"]) for k, p in paths.items()}


def _max_err_um(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=1).max())


def test_affine_only_chain_within_1um(affine_only, tmp_path):
    results = run_stage(affine_only.data_root, tmp_path)
    truth = affine_only.truth["tracks"]
    assert set(results) == set(truth)
    for track_id, res in results.items():
        assert res.status == "ok", res.reason
        picks = _picks(tmp_path, res)
        assert _max_err_um(picks["bregma"], truth[track_id]["bregma_um"]) < 1.0
        assert np.allclose(res.points["ccf_um"], truth[track_id]["ccf_um"], atol=1.0)


def test_nonlinear_chain_within_5um(warped, tmp_path):
    results = run_stage(warped.data_root, tmp_path)
    truth = warped.truth["tracks"]
    for track_id, res in results.items():
        assert res.status == "ok", res.reason
        picks = _picks(tmp_path, res)
        assert _max_err_um(picks["bregma"], truth[track_id]["bregma_um"]) < 5.0
        assert _max_err_um(res.points["ccf_um"], truth[track_id]["ccf_um"]) < 5.0
        tpl_um = np.asarray(res.points["template_lps_mm"]) * 1e3
        assert _max_err_um(tpl_um, np.asarray(truth[track_id]["template_lps_mm"]) * 1e3) < 5.0


def test_the_warps_are_applied(warped, tmp_path):
    """Ignoring the inverse warps (affines only) misses the truth by far more than 5 um."""
    res = run_stage(warped.data_root, tmp_path)["ProbeA_track"]
    asset = warped.asset / "image_atlas_alignment" / "Ex_639_Em_667"
    ls = Registration.from_prefix(asset / "ls_to_template_SyN_")
    t2c = Registration.from_prefix(warped.data_root / "spim_template_to_ccf" / "syn_")
    affines = Chain((ls.affine, t2c.affine), (True, True))
    truth = warped.truth
    from alignprep.space.frames import ImageHeader

    reg = ImageHeader.from_json(truth["pipeline_header0"]).index_to_physical(
        np.array(truth["tracks"]["ProbeA_track"]["level0_index_xyz"])
    )
    affine_ccf_um = apply_to_points(affines, reg) * [-1000, 1000, -1000]
    assert _max_err_um(affine_ccf_um, truth["tracks"]["ProbeA_track"]["ccf_um"]) > 20.0
    assert _max_err_um(res.points["ccf_um"], truth["tracks"]["ProbeA_track"]["ccf_um"]) < 5.0


def _analytic_image_ras_um(ann_file, layer, code, spacing0_mm, corner: bool) -> np.ndarray:
    """The spec's F0 -> F1 -> F2 -> F4 recipe with SimpleITK as the independent geometry."""
    state = json.loads(ann_file.read_text())
    lyr = next(x for x in state["layers"] if x["name"] == layer)
    names = list(lyr["source"]["transform"]["outputDimensions"])
    img = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    img.SetSpacing(tuple(spacing0_mm))
    img.SetDirection(sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation(code))
    out = []
    for ann in lyr["annotations"]:
        p = dict(zip(names, ann["point"], strict=True))
        idx = [p["x"], p["y"], p["z"]]
        if corner:
            idx = [v - 0.5 for v in idx]
        x, y, z = img.TransformContinuousIndexToPhysicalPoint(idx)
        out.append([-1000 * x, -1000 * y, 1000 * z])
    return np.array(out)


def test_image_space_picks_equal_the_analytic_value(warped, tmp_path):
    results = run_stage(warped.data_root, tmp_path)
    spacing0_mm = np.array(SyntheticSpec().spacing0_um_xyz) * 1e-3
    for track_id, res in results.items():
        ann = warped.data_root / "probe_annotations" / f"{res.row.probe_file}.json"
        want = _analytic_image_ras_um(ann, track_id, "RPI", spacing0_mm, corner=False)
        assert np.allclose(_picks(tmp_path, res)["image_space"], want, rtol=0, atol=1e-6)


def test_every_file_written_once_and_gui_copies_identical(warped, tmp_path):
    results = run_stage(warped.data_root, tmp_path)
    assert results["ProbeA_track"].suffix == ""  # one GUI shank: no suffix
    assert [results[f"ProbeB_{c}"].suffix for c in "abcd"] == [f"_shank{n}" for n in (1, 2, 3, 4)]
    all_files = set()
    for res in results.values():
        r = res.row
        tracks = outputs.track_paths(tmp_path, MOUSE, r.histology_track_id, res.suffix)
        probe = outputs.probe_dir(tmp_path, MOUSE, r.recording_id, r.ephys_collection)
        picks = outputs.picks_paths(probe, res.suffix)
        assert tracks["image_space"].read_bytes() == picks["image_space"].read_bytes()
        assert tracks["bregma"].read_bytes() == picks["bregma"].read_bytes()
        assert sorted(res.files) == sorted([*tracks.values(), *picks.values()])
        all_files |= set(res.files)
        # FCSV rows carry the same numbers as the in-memory frames, in annotation order
        rows = [ln.split(",") for ln in tracks["ccf_fcsv"].read_text().splitlines()
                if not ln.startswith("#")]  # fmt: skip
        assert np.allclose([[float(v) for v in row[1:4]] for row in rows],
                           res.points["ccf_lps_mm"], atol=1e-12)  # fmt: skip
        ccf_um = json.loads(tracks["ccf_um"].read_text())["ccf_mlapdv_um"]
        assert np.allclose(ccf_um, res.points["ccf_um"], atol=1e-9)
    assert len(all_files) == 8 * len(results)  # no two rows share a file
    written = {p for p in tmp_path.rglob("*") if p.is_file() and outputs.STATE_DIR not in p.parts}
    assert written == all_files  # nothing else (but the re-run state), no temp, no GUI files
    assert not any("channel_locations" in p.name for p in written)


def test_picks_go_entry_to_tip(warped, tmp_path):
    for res in run_stage(warped.data_root, tmp_path).values():
        bregma = np.asarray(res.points["bregma_um"])
        assert bregma[0, 2] > bregma[-1, 2]  # entry (dorsal) first, tip (deepest) last
        assert not any("deeper" in w for w in res.warnings)


@pytest.mark.parametrize(("version", "steps"), [("0.0.10", 1), ("0.0.25", 3), ("0.0.33", 2)])
def test_pipeline_frame_versions(tmp_path, version, steps):
    ds = cached_dataset(tmp_path / "ds", SyntheticSpec(content_level=None, import_version=version))
    assert len(ds.truth["pipeline_steps"]) == steps
    for track_id, res in run_stage(ds.data_root, tmp_path / "out").items():
        assert res.status == "ok", res.reason
        assert _max_err_um(res.points["bregma_um"], ds.truth["tracks"][track_id]["bregma_um"]) < 5


def test_native_frame_chosen_by_sidecar(tmp_path):
    spec = SyntheticSpec(content_level=None, registration_frame="native")
    ds = cached_dataset(tmp_path / "ds", spec)
    for track_id, res in run_stage(ds.data_root, tmp_path / "out").items():
        assert res.status == "ok", res.reason
        assert _max_err_um(res.points["ccf_um"], ds.truth["tracks"][track_id]["ccf_um"]) < 5


def test_voxel_origin_corner_is_handled_explicitly(tmp_path):
    ds = cached_dataset(
        tmp_path / "ds", SyntheticSpec(content_level=None, ng_voxel_origin="corner")
    )
    right = run_stage(ds.data_root, tmp_path / "a", tracks={"ng_voxel_origin": "corner"})
    wrong = run_stage(ds.data_root, tmp_path / "b")  # default "center"
    for track_id, res in right.items():
        truth = ds.truth["tracks"][track_id]
        assert _max_err_um(res.points["ccf_um"], truth["ccf_um"]) < 5
        # the wrong convention moves every pick by half a level-0 voxel (~1.4 um in image space)
        shift = np.abs(np.asarray(wrong[track_id].points["image_ras_um"]) - truth["image_ras_um"])
        assert np.allclose(shift, [0.9, 0.9, 1.0], atol=1e-6)


def test_all_rows_in_one_pass_equal_row_by_row(warped, tmp_path, monkeypatch):
    """Validation maps every row of a mouse through each chain in one pass: the points are
    exactly those of one pass per row, and a failing row neither changes nor stops the others."""
    import dataclasses

    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages import probes
    from alignprep.stages.context import MouseContext

    from .conftest import stage_config

    config = stage_config(warped.data_root, tmp_path / "out")
    manifest = read_manifest(warped.data_root / "manifest.csv")
    ctx = MouseContext.prepare(config, manifest)
    rows = list(manifest.rows)
    bad = dataclasses.replace(rows[0], histology_track_id="no_such_layer", line=999)
    one_by_one = {row.line: probes.compute_tracks(ctx, [row])[row.line] for row in rows}
    calls = []
    mapped = MouseContext.map_points
    monkeypatch.setattr(MouseContext, "map_points", lambda *a: calls.append(1) or mapped(*a))
    together = probes.compute_tracks(ctx, [rows[0], bad, *rows[1:]])
    assert len(calls) == 2  # one pass per chain (to CCF, to the template) for all rows
    assert isinstance(together.pop(999), InputError)
    assert set(together) == set(one_by_one) and len(rows) > 1
    for line, computed in together.items():
        alone = one_by_one[line]
        assert computed.warnings == alone.warnings
        assert computed.frames.keys() == alone.frames.keys()
        for frame, points in computed.frames.items():
            np.testing.assert_array_equal(points, alone.frames[frame], err_msg=frame)
        assert computed.reads is not None and computed.reads.entries  # the item's re-run inputs


def test_picks_equal_the_ants_point_chain_to_10_nm(warped, tmp_path):
    """The chains run with ANTs's rules on the decoded fields: every frame equals ANTs's own
    mapping of the same registration-frame points (``apply_transforms_to_points``, float32) to
    10 nm."""
    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages.context import MouseContext

    from .conftest import stage_config

    results = run_stage(warped.data_root, tmp_path)
    config = stage_config(warped.data_root, tmp_path)
    ctx = MouseContext.prepare(config, read_manifest(warped.data_root / "manifest.csv"))
    assert results
    for res in results.values():
        spim = np.asarray(res.points["spim_lps_mm"])
        registration = ctx.registration0.index_to_physical(ctx.native0.physical_to_index(spim))
        for chain, frame in ((ctx.to_ccf, "ccf_lps_mm"), (ctx.to_template, "template_lps_mm")):
            want = apply_to_points(chain, registration)
            assert _max_err_um(np.asarray(res.points[frame]) * 1e3, want * 1e3) < 0.01, frame
