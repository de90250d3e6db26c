"""Every SmartSPIM asset and Neuroglancer state layout that real data uses (issue 10).

Each test writes a synthetic dataset in one exact layout (``alignprep.synthetic.Layout``) and
runs the probe-track stage on it. Accepted layouts must give the truth: bregma picks within the
affine-chain tolerance of ``test_probes_truth`` (1 um) and image-space picks equal to the truth
to 1e-6 um (no registration is involved there). Refused layouts must fail every track with a
message that names the file and the expected layout.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from alignprep import outputs
from alignprep.inputs.manifest import read_manifest
from alignprep.inputs.smartspim import discover
from alignprep.stages.context import MouseContext
from alignprep.stages.histology import run_histology
from alignprep.synthetic import SyntheticDataset, SyntheticSpec, TrackSpec
from alignprep.synthetic.layout import SOURCE_STYLES, Layout

from ..datasets import cached_dataset
from .conftest import run_stage, stage_config

SPEC = SyntheticSpec(content_level=None).affine_only()
MOUSE = SPEC.mouse_id
REG, OTHER, THIRD = "Ex_639_Em_667", "Ex_488_Em_525", "Ex_561_Em_593"
S0_MM = np.array(SPEC.spacing0_um_xyz) * 1e-3


def _build(tmp_path: Path, **layout) -> SyntheticDataset:
    return cached_dataset(tmp_path / "ds", SPEC, Layout(**layout))


def _picks(results_root: Path, res) -> dict[str, np.ndarray]:
    r = res.row
    probe = outputs.probe_dir(results_root, MOUSE, r.recording_id, r.ephys_collection)
    paths = outputs.picks_paths(probe, res.suffix)
    return {k: np.array(json.loads(p.read_text())["xyz_picks"]) for k, p in paths.items()}


def _assert_truth(ds: SyntheticDataset, out: Path) -> dict:
    """Run the track stage; every track's pick files must equal the truth."""
    results = run_stage(ds.data_root, out)
    truth = ds.truth["tracks"]
    assert set(results) == set(truth)
    for track_id, res in results.items():
        assert res.status == "ok", res.reason
        picks = _picks(out, res)
        want = truth[track_id]
        assert picks["image_space"].shape == (len(want["image_ras_um"]), 3)
        np.testing.assert_allclose(picks["image_space"], want["image_ras_um"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(picks["bregma"], want["bregma_um"], rtol=0, atol=1.0)
    return results


def _assert_refused(ds: SyntheticDataset, out: Path, *expected: str, file: Path | None = None):
    """Every track fails; the reason names the file and says what was expected."""
    results = run_stage(ds.data_root, out)
    for res in results.values():
        assert res.status == "failed"
        where = file or ds.data_root / "probe_annotations" / f"{res.row.probe_file}.json"
        assert str(where) in res.reason, res.reason
        for text in expected:
            assert text in res.reason, res.reason
        assert not res.files
    assert not any(out.rglob("xyz_picks*"))  # nothing partial left looking valid


def _context(ds: SyntheticDataset, out: Path) -> MouseContext:
    config = stage_config(ds.data_root, out)
    return MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))


# ------------------------------------------------------------------------------------ the asset


def test_asset_folder_without_smartspim_prefix(tmp_path):
    ds = _build(tmp_path, asset_prefix="")
    assert not ds.asset.name.startswith("SmartSPIM_")
    _assert_truth(ds, tmp_path / "out")
    ctx = _context(ds, tmp_path / "ctx")
    assert ctx.asset.path == ds.asset
    assert any("'SmartSPIM_' prefix" in w and "Allen GUI" in w for w in ctx.warnings)


def test_channel_folders_named_ome_zarr(tmp_path):
    ds = _build(tmp_path, channel_suffix=".ome.zarr")
    zdir = ds.asset / "image_tile_fusing" / "OMEZarr"
    assert sorted(p.name for p in zdir.iterdir()) == [f"{OTHER}.ome.zarr", f"{REG}.ome.zarr"]
    _assert_truth(ds, tmp_path / "out")
    asset = discover(ds.asset)
    assert asset.registration_channel == REG
    assert asset.channels == {OTHER: zdir / f"{OTHER}.ome.zarr", REG: zdir / f"{REG}.ome.zarr"}
    assert asset.multiscale().name == REG


def test_three_channels(tmp_path):
    ds = _build(tmp_path, extra_channels=(THIRD,))
    assert ds.truth["channels"] == sorted([OTHER, REG, THIRD])
    _assert_truth(ds, tmp_path / "out")
    asset = discover(ds.asset)
    assert list(asset.channels) == sorted([OTHER, REG, THIRD])
    assert [m.name for m in asset.additional_channels()] == [OTHER, THIRD]
    state = json.loads(ds.neuroglancer.read_text())
    assert [lay["name"] for lay in state["layers"]] == [REG, OTHER, THIRD]


def test_histology_of_three_ome_zarr_channels(tmp_path):
    """Each non-registration channel becomes Ex_*.nrrd (no '.ome' left) with its own voxels."""
    small = SyntheticSpec(  # a small brain with voxel data, as test_histology's 10 um case
        brain_semi_axes_um=(600.0, 500.0, 400.0),
        ccf_shape_apdvml=(100, 70, 280),
        brain_center_um=(5739.0, 1200.0, 800.0),
        fov_margin_mm=0.3,
        tracks=(TrackSpec("T", "T_ann", "ProbeA", None, None, (5600, 1200), (0, 0, 1), 600),),
    )
    layout = Layout(channel_suffix=".ome.zarr", extra_channels=(THIRD,), asset_prefix="")
    ds = cached_dataset(tmp_path / "ds", small, layout)
    config = stage_config(ds.data_root, tmp_path / "out", histology={"write_ccf_space": False})
    ctx = MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))
    result = run_histology(ctx)
    assert result.status == "ok", result.reason
    folder = outputs.histology_paths(config.results_root, MOUSE)["registration"].parent
    names = sorted(p.name for p in folder.glob("Ex_*.nrrd"))
    assert names == [f"{OTHER}.nrrd", f"{THIRD}.nrrd"]
    reg = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "histology_registration.nrrd")))
    third = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{THIRD}.nrrd")))
    other = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / f"{OTHER}.nrrd")))
    assert reg.max() > 1000  # real content
    # the third channel is the registration channel halved (floored) at the level read:
    # the same linear resampling keeps that within rounding
    assert np.abs(third.astype(float) - reg / 2.0).max() <= 2.0
    assert np.abs(third.astype(float) - reg / 2.0).max() < np.abs(other - reg / 2.0).max()


def test_a_channel_in_both_zarr_and_ome_zarr_folders_is_refused(tmp_path):
    ds = _build(tmp_path)
    zdir = ds.asset / "image_tile_fusing" / "OMEZarr"
    shutil.copytree(zdir / f"{OTHER}.zarr", zdir / f"{OTHER}.ome.zarr")
    results = run_stage(ds.data_root, tmp_path / "out")
    for res in results.values():
        assert res.status == "failed"
        assert str(zdir) in res.reason
        assert f"{OTHER}: {OTHER}.ome.zarr, {OTHER}.zarr" in res.reason
        assert "expected one folder per channel" in res.reason


# --------------------------------------------------------------------------- image source forms


@pytest.mark.parametrize("style", SOURCE_STYLES)
def test_image_source_url_forms(tmp_path, style):
    ds = _build(tmp_path, source_style=style)
    source = json.loads(ds.neuroglancer.read_text())["layers"][0]["source"]
    url = source["url"] if isinstance(source, dict) else source
    assert (style == "object_url") == isinstance(source, dict)
    assert url.count(ds.asset.name) == 1 and url.startswith(
        {
            "plain_s3": "s3://",
            "pipe_zarr2": "s3://",
            "zarr2_s3": "zarr2://",
            "zarr3_s3": "zarr3://",
        }.get(style, "zarr://")
    )
    _assert_truth(ds, tmp_path / "out")
    assert _context(ds, tmp_path / "ctx").asset.path.resolve() == ds.asset.resolve()


@pytest.mark.parametrize("in_annotation_files", [False, True])
def test_precomputed_and_n5_siblings_are_ignored(tmp_path, in_annotation_files):
    # the siblings carry another translation: used, they would disagree with the channels
    ds = _build(
        tmp_path,
        sibling_sources=("precomputed", "n5"),
        image_layers_in_annotations=in_annotation_files,
    )
    names = [lay["name"] for lay in json.loads(ds.neuroglancer.read_text())["layers"]]
    assert names == [REG, OTHER, f"{REG}_precomputed", f"{REG}_n5"]
    _assert_truth(ds, tmp_path / "out")
    sources = _context(ds, tmp_path / "ctx").image_sources
    assert sources is not None and sources.layer_names == (REG, OTHER)


# --------------------------------------------------------------------- image-layer transforms


def _analytic_image_ras_um(idx_xyz: np.ndarray) -> np.ndarray:
    """Level-0 index -> image-space RAS um with SimpleITK (independent geometry)."""
    img = sitk.Image(4, 4, 4, sitk.sitkUInt8)
    img.SetSpacing(tuple(S0_MM))
    img.SetDirection(sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation("RPI"))
    lps = np.array(
        [img.TransformContinuousIndexToPhysicalPoint(list(map(float, i))) for i in idx_xyz]
    )
    return lps * [-1000, -1000, 1000]


def _stored_xyz(ds: SyntheticDataset, probe_file: str, layer: str) -> np.ndarray:
    state = json.loads((ds.data_root / "probe_annotations" / f"{probe_file}.json").read_text())
    lyr = next(x for x in state["layers"] if x["name"] == layer)
    return np.array([a["point"][:3] for a in lyr["annotations"]])


def test_translated_registration_layer_is_applied_exactly(tmp_path):
    """A 2-voxel shift of the image layers moves the picks by exactly 2 voxels."""
    ds = _build(
        tmp_path, image_translation_vox_xyz=(2.0, 0.0, 0.0), image_layers_in_annotations=True
    )
    plain = cached_dataset(tmp_path / "plain", SPEC)  # same seed, untranslated
    results = _assert_truth(ds, tmp_path / "out")
    for track_id, res in results.items():
        probe_file = res.row.probe_file
        stored = _stored_xyz(ds, probe_file, track_id)
        # the annotator saw the image 2 voxels further along x: the stored picks are too
        shift = stored - _stored_xyz(plain, probe_file, track_id)
        np.testing.assert_allclose(shift, [[2, 0, 0]] * len(stored), rtol=0, atol=1e-9)
        image = _picks(tmp_path / "out", res)["image_space"]
        # read without the translation they would be 2 voxels (3.6 um) off along x ...
        unshifted = _analytic_image_ras_um(stored)
        np.testing.assert_allclose(
            image, _analytic_image_ras_um(stored - [2, 0, 0]), rtol=0, atol=1e-6
        )
        np.testing.assert_allclose(
            np.abs(unshifted - image), [[3.6, 0, 0]] * len(stored), rtol=0, atol=1e-6
        )


def test_translation_written_in_um_output_units(tmp_path):
    # the same layout with dimensions in um: translation column in um, picks in um-sized units
    ds = _build(
        tmp_path,
        ng_unit="um",
        image_translation_vox_xyz=(0.0, -3.0, 1.0),
        image_layers_in_annotations=True,
    )
    dims = json.loads(ds.neuroglancer.read_text())["dimensions"]
    assert dims["x"] == [1.8, "um"] and dims["z"] == [2.0, "um"]
    _assert_truth(ds, tmp_path / "out")


def test_only_the_registration_channel_translated_is_refused(tmp_path):
    ds = _build(
        tmp_path,
        image_translation_vox_xyz=(2.0, 0.0, 0.0),
        translated_channels=(REG,),
        image_layers_in_annotations=True,
    )
    _assert_refused(
        ds,
        tmp_path / "out",
        "are placed differently",
        f"'{REG}' ({REG}): translated by",
        f"'{OTHER}' ({OTHER}): identity",
        "expected every image layer of the asset to have the same source transform",
    )


def test_rotated_image_layers_are_refused(tmp_path):
    swap_xy = ((0.0, 1.0, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    ds = _build(tmp_path, image_linear_xyz=swap_xy, image_layers_in_annotations=True)
    _assert_refused(
        ds,
        tmp_path / "out",
        "a rotation, scale, shear or axis swap",
        "expected at most a translation",
    )


def test_translated_main_state_with_annotation_files_without_image_layers_is_refused(tmp_path):
    ds = _build(tmp_path, image_translation_vox_xyz=(2.0, 0.0, 0.0))
    _assert_refused(
        ds,
        tmp_path / "out",
        "has no image layer of the asset",
        str(ds.neuroglancer),
        "Expected the annotation file to hold the image layers it was traced over",
    )


# --------------------------------------------------------------------------- annotation layers


@pytest.mark.parametrize("kind", ["lines", "disjoint_lines", "polyline", "segments"])
def test_lines_and_polylines(tmp_path, kind):
    ds = _build(tmp_path, annotation_kind=kind)
    state = json.loads((ds.data_root / "probe_annotations" / "ProbeA_annotations.json").read_text())
    types = {a["type"] for a in state["layers"][0]["annotations"]}
    assert types == {"lines": {"line"}, "disjoint_lines": {"line"}, "polyline": {"polyline"}}.get(
        kind, {"line", "polyline"}
    )
    _assert_truth(ds, tmp_path / "out")  # same picks, same count, same order as the points


def test_points_mixed_with_a_line_are_refused(tmp_path):
    ds = _build(tmp_path, annotation_kind="points_and_line")
    _assert_refused(ds, tmp_path / "out", "mixes point annotations", "expected only points")


@pytest.mark.parametrize(("unit", "x_scale"), [("mm", 0.0018), ("um", 1.8), ("nm", 1800.0)])
def test_output_dimensions_in_mm_um_nm(tmp_path, unit, x_scale):
    ds = _build(tmp_path, ng_unit=unit)
    state = json.loads((ds.data_root / "probe_annotations" / "ProbeA_annotations.json").read_text())
    assert state["layers"][0]["source"]["transform"]["outputDimensions"]["x"] == [x_scale, unit]
    _assert_truth(ds, tmp_path / "out")


def test_annotation_source_with_its_own_transform(tmp_path):
    ds = _build(tmp_path, annotation_translation_vox_xyz=(5.0, -3.0, 2.5))
    state = json.loads((ds.data_root / "probe_annotations" / "ProbeA_annotations.json").read_text())
    matrix = np.array(state["layers"][0]["source"]["transform"]["matrix"])
    np.testing.assert_array_equal(matrix[:, -1], [5.0, -3.0, 2.5, 0.0])
    _assert_truth(ds, tmp_path / "out")


def test_annotation_transform_and_translated_image_together(tmp_path):
    ds = _build(
        tmp_path,
        annotation_translation_vox_xyz=(1.0, 1.0, 1.0),
        image_translation_vox_xyz=(-4.0, 2.0, 0.5),
        image_layers_in_annotations=True,
        annotation_kind="polyline",
        source_style="pipe_zarr2",
    )
    _assert_truth(ds, tmp_path / "out")
