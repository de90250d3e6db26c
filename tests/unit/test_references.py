"""Reference volumes in any index order (issue 10): read by header, reoriented to PIR on load.

Truth: a seeded (AP, DV, ML) array on the CCF grid (``ccf_header``). Every variant is written in
its exact layout by ``alignprep.synthetic.volumes`` and checked independently with SimpleITK
(``DICOMOrient`` back to PIR), so the files are what they claim before our reader sees them.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from alignprep.errors import InputError
from alignprep.inputs.references import (
    CcfLabels,
    ccf_volume_header,
    check_lca_template,
    nifti_header,
    read_ccf_volume,
)
from alignprep.inputs.volumes import read_header
from alignprep.space.atlas import ccf_header
from alignprep.space.frames import ImageHeader, direction_from_code
from alignprep.synthetic.volumes import (
    ccf_in_order,
    write_raw_allen_nrrd,
    write_volume_file,
)

from ..stages.conftest import stage_config

SHAPE_APDVML = (12, 8, 20)
ORDERS = ["".join(p) for p in itertools.permutations("PIR")]
FORMATS = {
    "nifti": ("vol.nii.gz", "left-posterior-superior"),
    "nrrd-lps": ("vol.nrrd", "left-posterior-superior"),
    "nrrd-ras": ("vol.nrrd", "right-anterior-superior"),
    "nrrd-las": ("vol.nrrd", "left-anterior-superior"),
}


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """CCF voxels (ITK order AP, DV, ML), distinct enough that any axis mix-up shows."""
    rng = np.random.default_rng(10)
    return rng.integers(0, 60000, SHAPE_APDVML).astype(np.uint16)


def _sitk_pir(path: Path) -> tuple[np.ndarray, sitk.Image]:
    """SimpleITK's own reading of a file, reoriented to PIR: array in ITK (i, j, k) order."""
    img = sitk.DICOMOrient(sitk.ReadImage(str(path)), "PIR")
    return sitk.GetArrayFromImage(img).transpose(2, 1, 0), img


def _assert_ccf_header(header: ImageHeader) -> None:
    want = ccf_header(SHAPE_APDVML)
    assert header.size == want.size
    np.testing.assert_array_equal(header.origin, want.origin)
    np.testing.assert_array_equal(header.spacing, want.spacing)
    np.testing.assert_array_equal(header.direction, want.direction)


def _write(tmp_path: Path, array: np.ndarray, header: ImageHeader, fmt: str = "nifti") -> Path:
    name, space = FORMATS[fmt]
    return write_volume_file(tmp_path / name, array, header, nrrd_space=space)


# ----------------------------------------------------------------------------- accepted


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("code", ORDERS)
def test_every_index_order_reads_back_canonical(tmp_path, truth, code, fmt):
    stored, header = ccf_in_order(truth, code)
    path = _write(tmp_path, stored, header, fmt)
    # the file really is that layout (SimpleITK's reading), and physically the CCF
    independent, img = _sitk_pir(path)
    assert (
        sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
            sitk.ReadImage(str(path)).GetDirection()
        )
        == code
    )
    np.testing.assert_array_equal(independent, truth)
    np.testing.assert_allclose(img.GetOrigin(), 0.0, atol=1e-9)
    np.testing.assert_allclose(img.GetSpacing(), 0.025, rtol=1e-6)
    # our reader: the same voxels in PIR, the exact CCF header
    data, canonical = read_ccf_volume(path, "CCF template")
    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data, truth)
    _assert_ccf_header(canonical)
    _assert_ccf_header(ccf_volume_header(path, "CCF template"))
    assert read_header(path, "x").code == code  # the physical header keeps the stored order


def test_nifti_in_micrometres(tmp_path, truth):
    stored, header = ccf_in_order(truth, "RPI")
    path = write_volume_file(tmp_path / "um.nii.gz", stored, header, nifti_unit="micron")
    assert nib.load(str(path)).header.get_zooms()[:3] == pytest.approx((25.0, 25.0, 25.0))
    independent, img = _sitk_pir(path)  # ITK scales micron to mm as well
    np.testing.assert_allclose(img.GetSpacing(), 0.025, rtol=1e-6)
    data, canonical = read_ccf_volume(path, "CCF template")
    np.testing.assert_array_equal(data, truth)
    np.testing.assert_array_equal(independent, truth)
    _assert_ccf_header(canonical)


def test_canonical_array_is_identical_for_every_order(tmp_path, truth):
    """What the histology samples: the same array (bytes and memory layout) and header for every
    stored order and format, so the order cannot change an output byte."""
    arrays = []
    for k, (code, fmt) in enumerate(zip(ORDERS, itertools.cycle(FORMATS), strict=False)):
        stored, header = ccf_in_order(truth, code)
        data, canonical = read_ccf_volume(_write(tmp_path / str(k), stored, header, fmt), "CCF")
        _assert_ccf_header(canonical)
        assert data.flags.f_contiguous  # ITK's memory layout
        arrays.append(data)
    assert all(a.tobytes(order="A") == arrays[0].tobytes(order="A") for a in arrays[1:])
    np.testing.assert_array_equal(arrays[0], truth)


def test_labels_in_rpi_are_looked_up_in_ccf_frame(tmp_path):
    rng = np.random.default_rng(11)
    compact = rng.integers(0, 5, SHAPE_APDVML).astype(np.uint16)
    unique = np.array([0, 382, -382, 549, -549])
    stored, header = ccf_in_order(compact, "RPI")
    labels_path = write_volume_file(tmp_path / "labels.nrrd", stored, header)
    lut_path = tmp_path / "lut.npz"
    np.savez(lut_path, unique_labels=unique)
    config = stage_config(
        tmp_path,
        tmp_path / "out",
        references={
            "ccf_labels_compact": str(labels_path),
            "ccf_labels_unique_values": str(lut_path),
        },
    )
    labels = CcfLabels.load(config)
    _assert_ccf_header(labels.header)
    idx = rng.integers(0, SHAPE_APDVML, (200, 3))  # (AP, DV, ML) voxel indices
    ccf_lps_mm = np.stack([-idx[:, 2], idx[:, 0], -idx[:, 1]], axis=1) * 0.025  # coords §6
    want = unique[compact[idx[:, 0], idx[:, 1], idx[:, 2]]]
    np.testing.assert_array_equal(labels.ids_at(ccf_lps_mm), want)


# ----------------------------------------------------------------------------- refused


def _refused(path: Path, *words: str) -> str:
    with pytest.raises(InputError) as err:
        read_ccf_volume(path, "CCF template")
    message = str(err.value)
    assert err.value.file == str(path)
    assert str(path) in message
    for word in words:
        assert word in message, message
    with pytest.raises(InputError):  # the header-only check agrees
        ccf_volume_header(path, "CCF template")
    return message


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_flipped_axis_is_refused(tmp_path, truth, axis):
    good = ccf_header(SHAPE_APDVML)
    direction = good.direction.copy()
    direction[:, axis] *= -1  # a mirrored atlas: same voxels, one axis claimed reversed
    header = ImageHeader(good.origin, good.spacing, direction, good.size)
    flipped_letter = {0: "A", 1: "S", 2: "L"}[axis]
    message = _refused(
        _write(tmp_path, truth, header), f"points {flipped_letter}", "flipped axis", "expected"
    )
    assert "P (AP), I (DV) and R (ML)" in message


def test_consistently_flipped_conversion_is_refused(tmp_path, truth):
    # an RAS conversion (origin moved to the far corner): physically the same voxels, but the
    # contract accepts permutations of PIR only (a flip is refused, naming the axes and origin)
    stored, header = ccf_in_order(truth, "RAS")
    _refused(_write(tmp_path, stored, header), "orientation RAS", "the reverse of", "origin")


@pytest.mark.parametrize("offset_vox", [2.0, 0.5])
def test_origin_off_is_refused(tmp_path, truth, offset_vox):
    good = ccf_header(SHAPE_APDVML)
    origin = np.array([0.0, 0.025 * offset_vox, 0.0])
    header = ImageHeader(origin, good.spacing, good.direction, good.size)
    _refused(_write(tmp_path, truth, header, "nrrd-lps"), "origin", f"{offset_vox:g} voxels")


def test_ten_micrometres_is_refused(tmp_path, truth):
    good = ccf_header(SHAPE_APDVML)
    header = ImageHeader(good.origin, np.full(3, 0.010), good.direction, good.size)
    _refused(_write(tmp_path, truth, header), "spacing [10.0, 10.0, 10.0] um", "expected 25 um")


def test_raw_allen_nrrd_is_refused(tmp_path, truth):
    path = write_raw_allen_nrrd(tmp_path / "annotation_25.nrrd", truth)
    fields = nrrd.read_header(str(path))
    assert fields["space"] == "left-posterior-superior"
    np.testing.assert_array_equal(fields["space directions"], np.eye(3) * 25)
    _refused(path, "raw Allen CCF NRRD", "AP, DV, ML", "(0,0.025,0) (0,0,-0.025) (-0.025,0,0)")


def test_oblique_is_refused(tmp_path, truth):
    good = ccf_header(SHAPE_APDVML)
    c, s = np.cos(np.radians(10)), np.sin(np.radians(10))
    rotation = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    header = ImageHeader(good.origin, good.spacing, rotation @ good.direction, good.size)
    _refused(_write(tmp_path, truth, header), "oblique", "expected")


def test_nrrd_without_space_is_refused(tmp_path, truth):
    path = tmp_path / "nospace.nrrd"
    fields = {"space dimension": 3, "space directions": np.diag([0.025] * 3), "encoding": "raw"}
    nrrd.write(str(path), truth, fields)
    _refused(path, "no 'space' field", "expected 'space: left-posterior-superior'")


def test_nrrd_non_anatomical_space_is_refused(tmp_path, truth):
    path = tmp_path / "scanner.nrrd"
    fields = {"space": "scanner-xyz", "space directions": np.diag([0.025] * 3)}
    nrrd.write(str(path), truth, fields)
    _refused(path, "scanner-xyz", "expected an anatomical 3-D space")


def test_nifti_sform_qform_disagreement_is_refused(tmp_path, truth):
    stored, header = ccf_in_order(truth, "PIR")
    path = _write(tmp_path, stored, header)
    img = nib.load(str(path))
    qform = img.affine.copy()
    qform[:3, 3] += [1.0, 0.0, 0.0]  # qform 1 mm away from the sform
    img.set_qform(qform, code=1)
    nib.save(img, str(tmp_path / "both.nii.gz"))
    _refused(tmp_path / "both.nii.gz", "sform", "qform", "disagree")


def test_nifti_without_frame_is_refused(tmp_path, truth):
    img = nib.Nifti1Image(truth, np.diag([0.025, 0.025, 0.025, 1]))
    img.set_sform(None, code=0)
    img.set_qform(None, code=0)
    nib.save(img, str(tmp_path / "none.nii.gz"))
    _refused(tmp_path / "none.nii.gz", "neither an sform nor a qform")


def test_vector_volume_is_refused(tmp_path):
    header = ccf_header(SHAPE_APDVML)
    path = _write(tmp_path, np.zeros((*SHAPE_APDVML, 2), np.uint16), header)
    _refused(path, "3-D scalar")


def test_unknown_format_and_missing_file(tmp_path):
    path = tmp_path / "ccf.mha"
    path.write_bytes(b"x")
    _refused(path, "expected a NIfTI")
    _refused(tmp_path / "absent.nii.gz", "not found")


# ----------------------------------------------------------------------------- LCA, nifti_header


@pytest.mark.parametrize("code", ["RAS", "IRP", "LPI"])
def test_lca_template_any_axis_aligned_order(tmp_path, code):
    header = ImageHeader([-2.0, 1.5, 3.25], np.full(3, 0.025), direction_from_code(code), (9, 7, 5))
    path = write_volume_file(tmp_path / "lca.nii.gz", np.ones((9, 7, 5), np.uint16), header)
    got = check_lca_template(path)
    assert got.code == code and got.size == (9, 7, 5)
    np.testing.assert_allclose(got.origin, header.origin, atol=1e-6)
    np.testing.assert_allclose(got.spacing, 0.025, atol=1e-9)
    img = sitk.ReadImage(str(path))  # independent: SimpleITK reads the same frame
    np.testing.assert_allclose(img.GetOrigin(), got.origin, atol=1e-6)


def test_lca_template_refusals(tmp_path):
    for name, spacing, direction, words in (
        ("ten.nii.gz", 0.010, direction_from_code("RAS"), ("spacing [10.0, 10.0, 10.0] um",)),
        ("oblique.nii.gz", 0.025, sitk_rotated(), ("oblique",)),
    ):
        header = ImageHeader(np.zeros(3), np.full(3, spacing), direction, (4, 4, 4))
        path = write_volume_file(tmp_path / name, np.zeros((4, 4, 4), np.uint16), header)
        with pytest.raises(InputError) as err:
            check_lca_template(path)
        assert str(path) in str(err.value) and "expected the SmartSPIM LCA template" in str(
            err.value
        )
        for word in words:
            assert word in str(err.value)
    with pytest.raises(InputError, match="not found"):
        check_lca_template(tmp_path / "absent.nii.gz")


def sitk_rotated() -> np.ndarray:
    """A 20 degree oblique direction (SimpleITK's own rotation)."""
    tx = sitk.Euler3DTransform()
    tx.SetRotation(0.0, 0.0, np.radians(20))
    return np.asarray(tx.GetMatrix()).reshape(3, 3)


def test_nifti_header_is_the_stored_physical_header(tmp_path, truth):
    stored, header = ccf_in_order(truth, "RPI")
    path = _write(tmp_path, stored, header)
    got = nifti_header(path)
    assert got.code == "RPI" and got.size == header.size
    img = sitk.ReadImage(str(path))
    np.testing.assert_allclose(got.direction.reshape(9), img.GetDirection(), atol=1e-6)
    np.testing.assert_allclose(got.origin, img.GetOrigin(), atol=1e-6)
    # a vector image (ANTs displacement field) gives its three spatial axes
    field = sitk.Image([5, 6, 7], sitk.sitkVectorFloat32, 3)
    field.SetSpacing((0.1, 0.2, 0.3))
    field.SetOrigin((1.0, -2.0, 3.0))
    sitk.WriteImage(field, str(tmp_path / "warp.nii.gz"))
    warp = nifti_header(tmp_path / "warp.nii.gz")
    assert warp.size == (5, 6, 7)
    np.testing.assert_allclose(warp.spacing, [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(warp.origin, [1.0, -2.0, 3.0], atol=1e-6)
