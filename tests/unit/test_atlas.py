"""CCF <-> IBL bregma conversions, the CCF header assumption and region ids (coordinates.md §6).

Independent truth: iblatlas's own ``AllenAtlas(25, mock=True).ccf2xyz / xyz2ccf`` (mock: no
download), SimpleITK orientation cosines and the spec's published values.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from iblatlas.atlas import AllenAtlas

from alignprep.space.atlas import (
    ALLEN25_BREGMA_BOX_UM,
    bregma_um_to_ccf_um,
    ccf_header,
    ccf_lps_mm_to_bregma_um,
    ccf_lps_mm_to_ccf_um,
    ccf_um_to_bregma_um,
    ccf_um_to_ccf_lps_mm,
    check_ccf_header,
    in_allen25_box,
    region_acronyms,
)
from alignprep.space.frames import ImageHeader


@pytest.fixture(scope="module")
def mock_atlas() -> AllenAtlas:
    return AllenAtlas(25, mock=True)  # never without mock: that downloads volumes


@pytest.fixture(scope="module")
def ccf_points() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.uniform([-2000, -2000, -2000], [13000, 15000, 10000], (1000, 3))


# ----------------------------------------------------------------------------- vs iblatlas


def test_ccf_um_to_bregma_um_matches_iblatlas(mock_atlas, ccf_points):
    want = mock_atlas.ccf2xyz(ccf_points, ccf_order="mlapdv") * 1e6
    got = ccf_um_to_bregma_um(ccf_points)
    assert got.shape == (1000, 3)
    assert np.abs(got - want).max() < 1e-6


def test_bregma_um_to_ccf_um_matches_iblatlas(mock_atlas):
    rng = np.random.default_rng(1)
    xyz_um = rng.uniform([-8000, -9000, -9000], [8000, 7000, 2000], (1000, 3))
    want = mock_atlas.xyz2ccf(xyz_um * 1e-6, ccf_order="mlapdv", mode="wrap")
    got = bregma_um_to_ccf_um(xyz_um)
    assert np.abs(got - want).max() < 1e-6


def test_allen25_box_matches_iblatlas_grid(mock_atlas):
    bc = mock_atlas.bc
    first = bc.i2xyz(np.zeros(3)) * 1e6
    last = bc.i2xyz(bc.nxyz - 1) * 1e6
    want = np.sort(np.stack([first, last], axis=1), axis=1)
    np.testing.assert_allclose(ALLEN25_BREGMA_BOX_UM, want, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- spec values


def test_spec_values():
    np.testing.assert_allclose(ccf_um_to_bregma_um([5739, 5400, 332]), [[0, 0, 0]], atol=1e-9)
    np.testing.assert_allclose(
        ccf_um_to_bregma_um([4239, 7400, 4832]), [[-1500, -2000, -4500]], atol=1e-9
    )
    np.testing.assert_allclose(
        ccf_lps_mm_to_bregma_um([-0.5106, -0.3984, 1.396]), [[-5228.4, 5798.4, 1728.0]], atol=1e-9
    )


def test_closed_forms():
    rng = np.random.default_rng(2)
    p = rng.uniform(-15, 15, (200, 3))
    x, y, z = p.T
    np.testing.assert_allclose(
        ccf_lps_mm_to_ccf_um(p), np.stack([-1000 * x, 1000 * y, -1000 * z], 1), atol=1e-9
    )
    np.testing.assert_allclose(
        ccf_lps_mm_to_bregma_um(p),
        np.stack([-1000 * x - 5739, 5400 - 1000 * y, 332 + 1000 * z], 1),
        atol=1e-9,
    )


def test_round_trips():
    rng = np.random.default_rng(3)
    f6 = rng.uniform(-15, 15, (500, 3))
    f7 = ccf_lps_mm_to_ccf_um(f6)
    np.testing.assert_allclose(ccf_um_to_ccf_lps_mm(f7), f6, rtol=0, atol=1e-9)
    f8 = ccf_um_to_bregma_um(f7)
    np.testing.assert_allclose(bregma_um_to_ccf_um(f8), f7, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ccf_lps_mm_to_bregma_um(f6), f8, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ccf_um_to_ccf_lps_mm(bregma_um_to_ccf_um(f8)), f6, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- box


def test_in_allen25_box_edges():
    lo = np.array([-5739.0, -7775.0, -7643.0])
    hi = np.array([5636.0, 5400.0, 332.0])
    assert in_allen25_box(lo).tolist() == [True]
    assert in_allen25_box(hi).tolist() == [True]
    assert in_allen25_box(np.zeros(3)).tolist() == [True]
    eps = 1e-3
    for axis in range(3):
        below, above = lo.copy(), hi.copy()
        below[axis] -= eps
        above[axis] += eps
        inside_lo, inside_hi = lo.copy(), hi.copy()
        inside_lo[axis] += eps
        inside_hi[axis] -= eps
        got = in_allen25_box(np.stack([below, above, inside_lo, inside_hi]))
        assert got.tolist() == [False, False, True, True]


def test_ccf_um_as_bregma_is_outside_box():
    # pitfall: CCF micrometres written as bregma (e.g. the bregma landmark itself) leave the box
    assert in_allen25_box([5739.0, 5400.0, 332.0]).tolist() == [False]


# ----------------------------------------------------------------------------- CCF header


def test_ccf_header_geometry():
    hdr = ccf_header((528, 320, 456))
    assert hdr.size == (528, 320, 456)
    sitk_pir = np.asarray(
        sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation("PIR")
    ).reshape(3, 3)
    np.testing.assert_array_equal(hdr.direction, sitk_pir)
    np.testing.assert_array_equal(hdr.origin, np.zeros(3))
    np.testing.assert_allclose(hdr.spacing, 0.025)
    # voxel (AP a, DV d, ML m) is CCF micrometres (25 m, 25 a, 25 d)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, 300, (50, 3)).astype(float)
    ccf_um = ccf_lps_mm_to_ccf_um(hdr.index_to_physical(idx))
    np.testing.assert_allclose(ccf_um, 25.0 * idx[:, [2, 0, 1]], rtol=0, atol=1e-9)


def test_check_ccf_header():
    good = ccf_header((528, 320, 456))
    assert check_ccf_header(good, "ccf.nii.gz") == []
    bad_origin = ImageHeader([0.0, 0.025, 0.0], good.spacing, good.direction, good.size)
    bad_spacing = ImageHeader(good.origin, [0.025, 0.025, 0.01], good.direction, good.size)
    bad_dir = ImageHeader(good.origin, good.spacing, np.eye(3), good.size)
    for hdr, word in (
        (bad_origin, "origin [0.0, 0.025, 0.0] mm (1 voxels from 0)"),
        (bad_spacing, "spacing [25.0, 25.0, 10.0] um"),
        (bad_dir, "orientation LPS (ML, AP, DV): index axis 0 points L"),
    ):
        problems = check_ccf_header(hdr, "ccf.nii.gz")
        assert len(problems) == 1
        assert word in problems[0]
        assert problems[0].startswith("ccf.nii.gz: ")
        assert "expected" in problems[0]
    all_bad = ImageHeader([1.0, 0.0, 0.0], np.full(3, 0.05), np.eye(3), good.size)
    assert len(check_ccf_header(all_bad, "x")) == 3


@pytest.mark.parametrize("code", ["PIR", "PRI", "IPR", "IRP", "RPI", "RIP"])
def test_check_ccf_header_accepts_every_permutation_of_pir(code):
    # SimpleITK's cosines for the code: every permutation of PIR is the CCF frame
    cosines = sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation(code)
    hdr = ImageHeader(np.zeros(3), np.full(3, 0.025), np.reshape(cosines, (3, 3)), (4, 5, 6))
    assert check_ccf_header(hdr, "ccf") == []


@pytest.mark.parametrize(("code", "reversed_letter"), [("AIR", "A"), ("PSR", "S"), ("LIP", "L")])
def test_check_ccf_header_refuses_a_flip(code, reversed_letter):
    cosines = sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation(code)
    hdr = ImageHeader(np.zeros(3), np.full(3, 0.025), np.reshape(cosines, (3, 3)), (4, 5, 6))
    (problem,) = check_ccf_header(hdr, "ccf")
    assert f"points {reversed_letter}" in problem and "flipped axis" in problem


def test_check_ccf_header_refuses_oblique():
    good = ccf_header((4, 5, 6))
    c, s = np.cos(0.1), np.sin(0.1)
    rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]]) @ good.direction
    (problem,) = check_ccf_header(ImageHeader(good.origin, good.spacing, rot, good.size), "ccf")
    assert "oblique" in problem


# ----------------------------------------------------------------------------- regions


def test_region_acronyms():
    assert region_acronyms([0, 382, -382]) == ["void", "CA1", "CA1"]
    assert region_acronyms(np.array([[0, 382]])) == ["void", "CA1"]


def test_region_acronyms_unknown_id():
    with pytest.raises(ValueError, match="999999999"):
        region_acronyms([382, 999999999])
