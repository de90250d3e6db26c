"""Transform files read completely, without ANTs: the ITK affine .mat and the warp NIfTI.

Independent truth: the synthetic affine / field objects that wrote the files (numpy), and the
defects each test puts in at a known place. Every error must name the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.io import loadmat, savemat

from alignprep.errors import InputError
from alignprep.inputs.transform_files import (
    TransformLimits,
    affine_problems,
    read_itk_affine,
    scan_warp,
)
from alignprep.space.frames import direction_from_code
from alignprep.synthetic import faults
from alignprep.synthetic.geometry import Affine, box_header, random_affine, smooth_field

LIMITS = TransformLimits()
EXPECTED_MAT = "expected an ITK MATLAB v4 .mat"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("transform_files")
    rng = np.random.default_rng(7)
    aff = random_affine(rng, np.array([1.0, -2.0, 3.0]), np.array([4.0, 0.5, -1.0]), 12, (0.8, 1.2))
    hdr = box_header(
        np.array([-2.0, -1.0, 0.0]), np.array([1.0, 1.5, 2.0]), 0.1, direction_from_code("PIR")
    )
    field = smooth_field(rng, hdr, 0.3, 0.6, taper_mm=0.3)
    return {
        "affine": aff,
        "mat": aff.write(d / "a0GenericAffine.mat"),
        "field": field,
        "nii": field.write(d / "a1Warp.nii.gz"),
        "dir": d,
    }


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


# ----------------------------------------------------------------------------- affine .mat


def test_affine_parse_equals_what_was_written(files):
    parsed = read_itk_affine(files["mat"])
    aff: Affine = files["affine"]
    # ANTs stores the parameters as written (double); ITK's centre is single precision
    np.testing.assert_allclose(parsed.matrix, aff.matrix, atol=1e-6)
    np.testing.assert_allclose(parsed.center, aff.center, atol=1e-6)
    pts = np.random.default_rng(0).uniform(-5, 5, (20, 3))
    np.testing.assert_allclose(parsed(pts), aff(pts), atol=1e-5)
    np.testing.assert_allclose(parsed.inverse(parsed(pts)), pts, atol=1e-9)
    assert parsed.kind == "AffineTransform"
    assert affine_problems(parsed, files["mat"], LIMITS) == []


def test_affine_float_variant_is_read(files, tmp_path):
    content = loadmat(str(files["mat"]))
    path = tmp_path / "f.mat"
    savemat(
        str(path),
        {
            "AffineTransform_float_3_3": content["AffineTransform_double_3_3"].astype(np.float32),
            "fixed": content["fixed"].astype(np.float32),
        },
        format="4",
    )
    parsed = read_itk_affine(path)
    np.testing.assert_allclose(parsed.matrix, files["affine"].matrix, atol=1e-6)


def _v4(path: Path, **variables) -> Path:
    savemat(str(path), variables, format="4")
    return path


@pytest.mark.parametrize(
    ("name", "make", "says"),
    [
        ("random bytes", lambda p, m: faults.random_bytes(_copy(m, p)), "unreadable"),
        ("truncated", lambda p, m: faults.truncate(_copy(m, p)), "unreadable"),
        ("empty", lambda p, m: (p.write_bytes(b""), p)[1], "unreadable"),
        ("MATLAB v5", lambda p, m: faults.matlab_v5_copy(_copy(m, p)), "MATLAB v5"),
        ("too large", lambda p, m: faults.random_bytes(p, size=70_000), "bytes"),
        (
            "fixed first",
            lambda p, m: _v4(
                p, fixed=np.zeros((3, 1)), AffineTransform_double_3_3=np.ones((12, 1))
            ),
            "variables",
        ),
        (
            "extra variable",
            lambda p, m: _v4(
                p, AffineTransform_double_3_3=np.ones((12, 1)), fixed=np.zeros((3, 1)), x=np.ones(1)
            ),
            "variables",
        ),
        (
            "rigid transform",
            lambda p, m: _v4(
                p, Euler3DTransform_double_3_3=np.ones((6, 1)), fixed=np.zeros((3, 1))
            ),
            "variables",
        ),
        (
            "row vector",
            lambda p, m: _v4(
                p, AffineTransform_double_3_3=np.ones((1, 12)), fixed=np.zeros((3, 1))
            ),
            "shape",
        ),
        (
            "nine values",
            lambda p, m: _v4(p, AffineTransform_double_3_3=np.ones((9, 1)), fixed=np.zeros((3, 1))),
            "shape",
        ),
        (
            "NaN",
            lambda p, m: _v4(
                p, AffineTransform_double_3_3=np.full((12, 1), np.nan), fixed=np.zeros((3, 1))
            ),
            "non-finite",
        ),
    ],
)
def test_malformed_mat_is_refused_with_its_name(files, tmp_path, name, make, says):
    # ITK's reader SIGSEGVs on random, truncated, empty, v5, fixed-first, extra-variable and
    # row-vector files (antspyx 0.6.3) and reads 12 of 13 values silently: refuse them first
    path = make(tmp_path / "bad0GenericAffine.mat", files["mat"])
    with pytest.raises(InputError) as err:
        read_itk_affine(path)
    assert err.value.file == str(path)
    assert says in str(err.value)
    if says != "non-finite":
        assert EXPECTED_MAT in str(err.value)


@pytest.mark.parametrize(
    ("matrix", "says", "fatal"),
    [
        (np.diag([1.0, 1.0, 0.0]), "singular", True),
        (np.diag([3.0, 3.0, 3.0]), "implausible scale", True),
        (np.diag([1.0, 1.0, 0.3]), "implausible scale", True),
        (np.diag([-1.0, 1.0, 1.0]), "mirrors", False),
    ],
)
def test_affine_problems(tmp_path, matrix, says, fatal):
    path = faults.write_affine(tmp_path / "x.mat", matrix)
    problems = affine_problems(read_itk_affine(path), path, LIMITS)
    assert len(problems) == 1
    assert problems[0].file == str(path)
    assert says in problems[0].message
    assert problems[0].fatal is fatal


# ----------------------------------------------------------------------------- warp NIfTI


@pytest.mark.parametrize("block_bytes", [1 << 25, 4096, 1000])
def test_scan_reads_the_whole_field(files, block_bytes):
    scan = scan_warp(files["nii"], LIMITS, block_bytes=block_bytes)
    field = files["field"]
    assert scan.header.size == field.header.size
    np.testing.assert_allclose(scan.header.origin, field.header.origin, atol=1e-6)
    np.testing.assert_allclose(scan.header.spacing, field.header.spacing, atol=1e-7)
    np.testing.assert_allclose(scan.header.direction, field.header.direction, atol=1e-7)
    truth = float(np.abs(field.vectors.astype(np.float32)).max())
    assert scan.max_abs_mm == pytest.approx(truth, rel=1e-6)
    assert truth > 0.1


def test_scan_finds_truncation(files, tmp_path):
    for keep in (0.5, 0.97):
        path = faults.truncate(_copy(files["nii"], tmp_path / f"t{keep}1Warp.nii.gz"), keep)
        with pytest.raises(InputError, match="truncated") as err:
            scan_warp(path, LIMITS)
        assert err.value.file == str(path)


def test_scan_finds_a_bad_crc(files, tmp_path):
    path = faults.recompress_with_bad_crc(_copy(files["nii"], tmp_path / "c1Warp.nii.gz"))
    with pytest.raises(InputError, match="CRC") as err:
        scan_warp(path, LIMITS)
    assert err.value.file == str(path)


def test_scan_finds_nan_at_its_voxel(files, tmp_path):
    for voxel, comp in (((3, 4, 5), 0), ((0, 0, 0), 2), ((10, 2, 7), 1)):
        path = faults.put_nan(_copy(files["nii"], tmp_path / "n1Warp.nii.gz"), voxel, comp)
        for block in (1 << 25, 1000):
            with pytest.raises(InputError) as err:
                scan_warp(path, LIMITS, block_bytes=block)
            assert err.value.file == str(path)
            assert f"voxel {voxel}, component {comp}" in str(err.value)


def test_scan_refuses_a_scalar_image(files, tmp_path):
    import nibabel as nib

    path = tmp_path / "s1Warp.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 6, 7), np.float32), np.eye(4)), str(path))
    with pytest.raises(InputError, match=r"\(X, Y, Z, 1, 3\)") as err:
        scan_warp(path, LIMITS)
    assert "scalar image" in str(err.value)
    assert err.value.file == str(path)


def test_scan_refuses_4d_vectors_and_integer_data(tmp_path):
    import nibabel as nib

    four = tmp_path / "v1Warp.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 6, 7, 3), np.float32), np.eye(4)), str(four))
    with pytest.raises(InputError, match="shape"):
        scan_warp(four, LIMITS)
    ints = tmp_path / "i1Warp.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((5, 6, 7, 1, 3), np.int16), np.eye(4)), str(ints))
    with pytest.raises(InputError, match="float vectors"):
        scan_warp(ints, LIMITS)


def test_scan_refuses_implausible_magnitudes(files, tmp_path):
    path = faults.scale_field(_copy(files["nii"], tmp_path / "u1Warp.nii.gz"), 1000.0)
    with pytest.raises(InputError, match="implausible displacement") as err:
        scan_warp(path, LIMITS)
    assert err.value.file == str(path)


def test_scan_refuses_junk_and_undefined_position(files, tmp_path):
    junk = faults.random_bytes(_copy(files["nii"], tmp_path / "j1Warp.nii.gz"))
    with pytest.raises(InputError, match="gzip") as err:
        scan_warp(junk, LIMITS)
    assert err.value.file == str(junk)
    import nibabel as nib

    img = nib.load(str(files["nii"]))
    unplaced = nib.Nifti1Image(np.asanyarray(img.dataobj), None, img.header.copy())
    unplaced.set_qform(None, 0)
    unplaced.set_sform(None, 0)
    path = tmp_path / "q1Warp.nii.gz"
    nib.save(unplaced, str(path))
    with pytest.raises(InputError, match="qform nor sform"):
        scan_warp(path, LIMITS)
