"""Histology volumes against independent truth: ANTs re-warp, point-chain centroids, readers."""

from __future__ import annotations

import json
from pathlib import Path

import ants
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from alignprep import outputs
from alignprep.inputs.manifest import read_manifest
from alignprep.space.atlas import brain_regions
from alignprep.space.frames import ImageHeader
from alignprep.stages.context import MouseContext
from alignprep.stages.histology import run_histology
from alignprep.synthetic import SyntheticSpec, TrackSpec

from ..ants_reference import apply_to_points
from ..datasets import cached_dataset
from .conftest import stage_config

MOUSE = SyntheticSpec().mouse_id
S0_MM = np.array(SyntheticSpec().spacing0_um_xyz) * 1e-3


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A dataset with voxel data, and one histology run on it."""
    root = tmp_path_factory.mktemp("hist")
    ds = cached_dataset(root / "ds", SyntheticSpec())
    config = stage_config(ds.data_root, root / "out")
    ctx = MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))
    result = run_histology(ctx)
    assert result.status == "ok", result.reason
    return ds, config, ctx, result


def _sitk(path: Path) -> sitk.Image:
    return sitk.ReadImage(str(path))


def _paths(config) -> dict[str, Path]:
    return outputs.histology_paths(config.results_root, MOUSE)


def _grid_files(config) -> list[Path]:
    p = _paths(config)
    other = outputs.channel_path(config.results_root, MOUSE, "Ex_488_Em_525")
    return [p["registration"], p["ccf_template"], p["labels"], other]


def test_every_nrrd_reads_back_lps_irp_with_sitk_and_pynrrd(run):
    _, _, _, result = run
    nrrds = [f for f in result.files if f.suffix == ".nrrd"]
    assert len(nrrds) == 7  # registration, its pipeline twin, ccf_in, labels, Ex_488 + 2 QC
    for path in nrrds:
        img = _sitk(path)
        code = sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(img.GetDirection())
        assert code == "IRP", path
        header = nrrd.read_header(str(path))
        assert header["space"] == "left-posterior-superior"
        assert header["encoding"] == "gzip"
        s = np.array(img.GetSpacing())
        want = np.array([[0, 0, -s[0]], [-s[1], 0, 0], [0, s[2], 0]])  # outputs.md §2, rows = axes
        assert np.allclose(header["space directions"], want)


def test_grid_sharing_and_dtypes(run):
    _, config, _, _ = run
    imgs = [_sitk(p) for p in _grid_files(config)]
    ref = imgs[0]
    for img in imgs[1:]:
        assert img.GetSize() == ref.GetSize()
        assert np.allclose(img.GetOrigin(), ref.GetOrigin(), atol=1e-6, rtol=0)
        assert np.allclose(img.GetSpacing(), ref.GetSpacing(), atol=1e-6, rtol=0)
        assert np.allclose(img.GetDirection(), ref.GetDirection(), atol=1e-12, rtol=0)
    types = [sitk.GetPixelIDValueAsString(i.GetPixelID()) for i in imgs]
    assert types == [
        "16-bit unsigned integer",
        "16-bit unsigned integer",
        "32-bit signed integer",
        "16-bit unsigned integer",
    ]
    pipe = _sitk(_paths(config)["registration_pipeline"])
    assert pipe.GetSize() == ref.GetSize()
    # ITK re-derives unit directions as v / sqrt(v.v): equal to ~1e-16, not bit for bit
    assert np.allclose(pipe.GetDirection(), ref.GetDirection(), atol=1e-12, rtol=0)
    assert np.array_equal(sitk.GetArrayFromImage(pipe), sitk.GetArrayFromImage(ref))


def test_grid_geometry_is_the_spec_formula(run):
    """Size round(n_L s_L / 0.03); level-L voxel [0,0,0] centre (native and pipeline frames)."""
    ds, config, ctx, result = run
    level = ctx.multiscale.levels[result.level]
    s_l = level.spacing_mm
    assert result.level == 4 and np.allclose(s_l, S0_MM * 16)
    img = _sitk(_paths(config)["registration"])
    size_itk_native = [round(n * s / 0.03) for n, s in zip(level.size, s_l, strict=True)]
    assert sorted(img.GetSize()) == sorted(size_itk_native) and min(img.GetSize()) >= 8
    # coordinates.md §2: o_L = D (s_L - s_0) / 2; G's index 0 = level-L index 0 = a corner of G
    d = np.array(sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation("RPI")).reshape(
        3, 3
    )
    o_l = d @ ((s_l - S0_MM) / 2)
    n = np.array(img.GetSize()) - 1
    corners = [
        img.TransformContinuousIndexToPhysicalPoint([float(v) for v in c])
        for c in np.array(np.meshgrid(*[[0, k] for k in n])).reshape(3, -1).T
    ]
    assert min(np.linalg.norm(np.array(corners) - o_l, axis=1)) < 1e-9
    # pipeline twin: o_PL = o_P0 + D (s_PL - s_P0)/2 at the same corner, spacing s_PL * 0.03/s_L
    hp0 = ImageHeader.from_json(ds.truth["pipeline_header0"])
    s_pl = hp0.spacing * 16
    o_pl = hp0.origin + d @ ((s_pl - hp0.spacing) / 2)
    pipe = _sitk(_paths(config)["registration_pipeline"])
    corners = [
        pipe.TransformContinuousIndexToPhysicalPoint([float(v) for v in c])
        for c in np.array(np.meshgrid(*[[0, k] for k in n])).reshape(3, -1).T
    ]
    assert min(np.linalg.norm(np.array(corners) - o_pl, axis=1)) < 1e-9
    assert np.allclose(sorted(pipe.GetSpacing()), sorted(s_pl * 0.03 / s_l))
    sidecar = json.loads(_paths(config)["registration_pipeline_json"].read_text())
    assert sidecar["schema"] == "anatomical-header/1" and sidecar["units"] == "millimeter"
    assert np.allclose(sidecar["header"]["origin"], pipe.GetOrigin(), atol=1e-12)
    assert np.allclose(sidecar["header"]["spacing"], pipe.GetSpacing(), atol=1e-12)
    assert np.allclose(sidecar["header"]["direction"], pipe.GetDirection(), atol=1e-12)
    assert sidecar["header"]["size_ijk"] == list(pipe.GetSize())


def _ants_chain(ds, image_to_ccf: bool = False) -> tuple[list[str], list[bool]]:
    """The transform list ANTs resamples with (CCF -> image grid, or image -> CCF grid)."""
    reg = ds.asset / "image_atlas_alignment" / "Ex_639_Em_667" / "ls_to_template_SyN_"
    t2c = ds.data_root / "spim_template_to_ccf" / "syn_"
    if image_to_ccf:
        files = [f"{t2c}1Warp.nii.gz", f"{t2c}0GenericAffine.mat"]
        return [*files, f"{reg}1Warp.nii.gz", f"{reg}0GenericAffine.mat"], [False] * 4
    return [
        f"{reg}0GenericAffine.mat",
        f"{reg}1InverseWarp.nii.gz",
        f"{t2c}0GenericAffine.mat",
        f"{t2c}1InverseWarp.nii.gz",
    ], [True, False, True, False]


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1])


def _ants_onto_g(run, ccf_volume: Path, interpolator: str) -> np.ndarray:
    """ANTs's own warp of a CCF volume onto G (double precision, as the peer calls it)."""
    ds, config, _, _ = run
    fixed = ants.image_read(str(_paths(config)["registration_pipeline"]), pixeltype="float")
    moving = ants.image_read(str(ccf_volume), pixeltype="float")
    files, invert = _ants_chain(ds)
    warped = ants.apply_transforms(
        fixed, moving, files, interpolator=interpolator, whichtoinvert=invert
    )
    return warped.numpy()


def test_labels_match_an_independent_ants_warp(run):
    _, config, _, _ = run
    p = _paths(config)
    warped = _ants_onto_g(run, config.references.ccf_labels_compact, "genericLabel")
    lut = np.load(config.references.ccf_labels_unique_values)["unique_labels"]
    independent = lut[np.rint(warped).astype(int)]
    ours, _ = nrrd.read(str(p["labels"]))  # int32, ITK (i, j, k); float32 would round ids
    assert ours.shape == independent.shape
    assert np.array_equal(ours, independent)  # identical, voxel for voxel
    ids = set(np.unique(ours).tolist())
    assert ids <= set(brain_regions().id.tolist())  # every value a signed BrainRegions id
    assert {382, -382, 10703, 484682470, -484682470} <= ids  # > 255 and > 2**24 survive
    assert len(ids) > 15  # both hemispheres, every shell


def test_template_intensities_match_an_independent_ants_warp(run):
    _, config, _, _ = run
    want = _ants_onto_g(run, config.references.ccf_template, "linear")
    ours, _ = nrrd.read(str(_paths(config)["ccf_template"]))
    assert _r(ours, want) > 0.9999
    # ours is rounded to uint16 once; ANTs returns float32 (ULP ~0.004 at these values)
    assert np.abs(ours.astype(float) - want).max() <= 0.51


def test_ccf_space_channels_match_an_independent_ants_warp(run):
    ds, config, _, _ = run
    p = _paths(config)
    ccf = ants.image_read(str(config.references.ccf_template), pixeltype="float")
    moving = ants.image_read(str(p["registration_pipeline"]), pixeltype="float")
    files, invert = _ants_chain(ds, image_to_ccf=True)
    want = ants.apply_transforms(ccf, moving, files, whichtoinvert=invert).numpy()
    img = _sitk(outputs.ccf_space_path(config.results_root, MOUSE, "Ex_639_Em_667"))
    ours = sitk.GetArrayFromImage(img)  # (DV, ML, AP) = IRP's (k, j, i) reversed: (AP, ML, DV)
    stored = ImageHeader.from_ants(ccf)  # the stored template's own index order
    assert stored.code == "PIR" and ours.shape == (want.shape[0], want.shape[2], want.shape[1])
    want_irp = np.transpose(want, (0, 2, 1))  # PIR (AP, DV, ML) -> IRP array (AP, ML, DV)
    assert _r(ours, want_irp) > 0.9999
    assert np.abs(ours.astype(float) - want_irp).max() <= 0.51


@pytest.mark.parametrize("region", [549, -549, 10703, -10703])  # compact regions: TH, DG-mo
def test_region_centroid_maps_to_its_ccf_centroid(run, region):
    _, config, ctx, _ = run
    p = _paths(config)
    labels_img = _sitk(p["labels"])
    ours = sitk.GetArrayFromImage(labels_img)  # (k, j, i)
    kji = np.argwhere(ours == region).mean(axis=0)
    pipe = _sitk(p["registration_pipeline"])
    reg_point = np.array(pipe.TransformContinuousIndexToPhysicalPoint(kji[::-1].tolist()))
    mapped = apply_to_points(ctx.to_ccf, reg_point)[0]
    ccf_labels = ctx.labels
    ijk = np.argwhere(ccf_labels.unique_labels[ccf_labels.compact] == region).mean(axis=0)
    ccf_centroid = ccf_labels.header.index_to_physical(ijk)[0]
    assert np.linalg.norm(mapped - ccf_centroid) < 0.025  # one 25 um CCF voxel


def test_ccf_template_in_image_space_aligns_with_the_image(run):
    _, config, _, _ = run
    p = _paths(config)
    a = sitk.GetArrayFromImage(_sitk(p["registration"])).astype(float)
    b = sitk.GetArrayFromImage(_sitk(p["ccf_template"])).astype(float)

    def corr(x, y):
        m = (x > 0) & (y > 0)
        return np.corrcoef(x[m], y[m])[0, 1]

    best = corr(a, b)
    assert best > 0.99
    for axis in range(3):  # any one-voxel shift is worse: aligned to better than a voxel
        for shift in (-1, 1):
            assert corr(a, np.roll(b, shift, axis=axis)) < best


def test_ccf_space_qc(run):
    _, config, _, _ = run
    template = sitk.GetArrayFromImage(sitk.ReadImage(str(config.references.ccf_template)))
    shape_apdvml = template.shape[::-1]  # sitk arrays are (k, j, i); CCF ITK order is (AP,DV,ML)
    for channel in ("Ex_639_Em_667", "Ex_488_Em_525"):
        img = _sitk(outputs.ccf_space_path(config.results_root, MOUSE, channel))
        arr = sitk.GetArrayFromImage(img)
        assert arr.shape == (shape_apdvml[0], shape_apdvml[2], shape_apdvml[1])  # (AP, ML, DV)
    reg = sitk.GetArrayFromImage(
        _sitk(outputs.ccf_space_path(config.results_root, MOUSE, "Ex_639_Em_667"))
    )
    ccf_irp = np.transpose(template, (2, 0, 1))  # (ML, DV, AP) -> (AP, ML, DV)
    m = (reg > 0) & (ccf_irp > 0)
    assert np.corrcoef(reg[m].astype(float), ccf_irp[m].astype(float))[0, 1] > 0.95


def test_a_failed_part_leaves_nothing_of_its_own(run, tmp_path):
    """The atlas part fails (no label lookup): its volumes are absent; the channels part and
    the CCF QC, which do not read the lookup, are complete."""
    ds, _, _, _ = run
    config = stage_config(
        ds.data_root,
        tmp_path / "out",
        references={"ccf_labels_unique_values": str(tmp_path / "none.npz")},
    )
    ctx = MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))
    result = run_histology(ctx)
    assert result.status == "failed" and "none.npz" in result.reason
    paths = outputs.histology_paths(config.results_root, ctx.mouse_id)
    left = {p for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert left == set(result.files) and left  # what the other parts wrote, nothing else
    assert paths["ccf_template"] not in left and paths["labels"] not in left
    for path in left:
        if path.suffix == ".nrrd":
            nrrd.read(str(path))  # complete


def test_ten_micrometre_output(tmp_path):
    spec = SyntheticSpec(
        brain_semi_axes_um=(600.0, 500.0, 400.0),
        ccf_shape_apdvml=(100, 70, 280),
        brain_center_um=(5739.0, 1200.0, 800.0),
        fov_margin_mm=0.3,
        tracks=(TrackSpec("T", "T_ann", "ProbeA", None, None, (5600, 1200), (0, 0, 1), 600),),
    )
    ds = cached_dataset(tmp_path / "ds", spec)
    config = stage_config(
        ds.data_root,
        tmp_path / "out",
        histology={"output_voxel_size_um": 10, "write_ccf_space": False},
    )
    ctx = MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))
    result = run_histology(ctx)
    assert result.status == "ok", result.reason
    img = _sitk(_paths(config)["labels"])
    assert np.allclose(img.GetSpacing(), 0.01)
    level = ctx.multiscale.levels[result.level]
    want = sorted(round(n * s / 0.01) for n, s in zip(level.size, level.spacing_mm, strict=True))
    assert sorted(img.GetSize()) == want
    assert len(np.unique(sitk.GetArrayFromImage(img))) > 10


def test_the_narrowest_exact_type_keeps_every_value():
    from alignprep.stages.histology import narrowest_exact

    rng = np.random.default_rng(4)
    wide = rng.integers(0, 40000, (5, 6, 7)).astype(np.uint32)
    wide[0, 0, 0] = 0
    narrow = narrowest_exact(wide)
    assert narrow.dtype == np.uint16 and np.array_equal(narrow, wide)
    assert narrowest_exact(wide // 200).dtype == np.uint8
    assert narrowest_exact(wide - 1).dtype == np.uint32  # 0 - 1 wraps: needs 32 bits
    signed = wide.astype(np.int32) - 5
    assert narrowest_exact(signed) is signed  # negative values: kept as stored
    floats = wide.astype(np.float32)
    assert narrowest_exact(floats) is floats
