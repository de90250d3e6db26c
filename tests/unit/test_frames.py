"""Orientation codes, headers and index <-> physical conversions (coordinates.md §0-§2, §4).

Independent truth: SimpleITK's ``DICOMOrientImageFilter`` and image geometry, the spec's worked
example and plain numpy algebra.
"""

from __future__ import annotations

import itertools

import ants
import numpy as np
import pytest
import SimpleITK as sitk

from alignprep.errors import InputError
from alignprep.space.frames import (
    ImageHeader,
    code_from_direction,
    direction_from_code,
    level_index,
    level_origin,
    lps_mm_to_ras_um,
    native_header,
    ras_um_to_lps_mm,
    require_axis_aligned,
    validate_code,
)


def _all_codes() -> list[str]:
    """The 48 axis-aligned codes: 3! axis permutations x 2^3 sign choices."""
    pairs = (("L", "R"), ("P", "A"), ("S", "I"))
    codes = []
    for perm in itertools.permutations(pairs):
        for choice in itertools.product((0, 1), repeat=3):
            codes.append("".join(pair[c] for pair, c in zip(perm, choice, strict=True)))
    return codes


ALL_CODES = _all_codes()


def _sitk_direction(code: str) -> np.ndarray:
    cosines = sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation(code)
    return np.asarray(cosines, dtype=float).reshape(3, 3)


def _sitk_image(header: ImageHeader) -> sitk.Image:
    img = sitk.Image([int(n) for n in header.size], sitk.sitkUInt8)
    img.SetOrigin(header.origin.tolist())
    img.SetSpacing(header.spacing.tolist())
    img.SetDirection(header.direction.reshape(9).tolist())
    return img


def _random_header(rng: np.random.Generator, code: str | None = None) -> ImageHeader:
    code = code or ALL_CODES[rng.integers(len(ALL_CODES))]
    return ImageHeader(
        rng.uniform(-20, 20, 3),
        rng.uniform(0.001, 0.5, 3),
        direction_from_code(code),
        tuple(int(n) for n in rng.integers(2, 200, 3)),
    )


# ------------------------------------------------------------------------------ orientation codes


def test_there_are_48_distinct_codes():
    assert len(ALL_CODES) == 48
    assert len(set(ALL_CODES)) == 48


@pytest.mark.parametrize("code", ALL_CODES)
def test_direction_from_code_matches_simpleitk(code: str):
    np.testing.assert_array_equal(direction_from_code(code), _sitk_direction(code))


@pytest.mark.parametrize("code", ALL_CODES)
def test_code_from_direction_round_trip(code: str):
    assert code_from_direction(_sitk_direction(code)) == code
    assert code_from_direction(direction_from_code(code)) == code


def test_lps_is_identity_and_lower_case_accepted():
    np.testing.assert_array_equal(direction_from_code("LPS"), np.eye(3))
    np.testing.assert_array_equal(direction_from_code("rpi"), np.diag([-1.0, 1.0, -1.0]))
    assert validate_code("rpi") == "RPI"


def test_irp_direction_matches_spec_section_7():
    # coordinates.md §7: IRP, D (row-major) = [0,-1,0, 0,0,1, -1,0,0]
    np.testing.assert_array_equal(
        direction_from_code("IRP").reshape(9), [0, -1, 0, 0, 0, 1, -1, 0, 0]
    )


@pytest.mark.parametrize("bad", ["RRP", "LP", "XYZ", "LPSI", "", "LLS", "APS"])
def test_invalid_codes_raise(bad: str):
    with pytest.raises(ValueError):
        validate_code(bad)
    with pytest.raises(ValueError):
        direction_from_code(bad)


def test_oblique_direction_raises():
    c, s = np.cos(np.radians(20)), np.sin(np.radians(20))
    oblique = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(ValueError):
        code_from_direction(oblique)
    header = ImageHeader(np.zeros(3), np.ones(3), oblique, (2, 2, 2))
    with pytest.raises(InputError, match="oblique"):
        require_axis_aligned(header, "some.nrrd")


def test_tiny_numerical_noise_is_tolerated():
    d = direction_from_code("PIR") + 1e-9
    assert code_from_direction(d) == "PIR"


def test_degenerate_direction_raises_value_error():
    # Axis-aligned columns, but two index axes along the same world axis (singular matrix): not a
    # direction at all. Must be a ValueError (require_axis_aligned relies on it), not a TypeError.
    degenerate = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    with pytest.raises(ValueError):
        code_from_direction(degenerate)


# ---------------------------------------------------------------------- index <-> physical


@pytest.mark.parametrize("code", ALL_CODES)
def test_index_to_physical_matches_simpleitk(code: str):
    rng = np.random.default_rng(sum(map(ord, code)))
    header = _random_header(rng, code)
    img = _sitk_image(header)
    idx = rng.uniform(-5, 50, (20, 3))
    want = np.array([img.TransformContinuousIndexToPhysicalPoint(p.tolist()) for p in idx])
    np.testing.assert_allclose(header.index_to_physical(idx), want, rtol=0, atol=1e-10)
    back = np.array([img.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in want])
    np.testing.assert_allclose(header.physical_to_index(want), back, rtol=0, atol=1e-9)


def test_index_physical_round_trip_random_headers():
    rng = np.random.default_rng(1)
    for _ in range(50):
        header = _random_header(rng)
        idx = rng.uniform(-100, 300, (100, 3))
        np.testing.assert_allclose(
            header.physical_to_index(header.index_to_physical(idx)), idx, rtol=0, atol=1e-9
        )
        pts = rng.uniform(-50, 50, (100, 3))
        np.testing.assert_allclose(
            header.index_to_physical(header.physical_to_index(pts)), pts, rtol=0, atol=1e-9
        )


def test_single_point_gives_one_row():
    header = _random_header(np.random.default_rng(2))
    assert header.index_to_physical(np.zeros(3)).shape == (1, 3)
    np.testing.assert_allclose(header.index_to_physical(np.zeros(3))[0], header.origin)


def test_lps_mm_ras_um_round_trip_and_values():
    rng = np.random.default_rng(3)
    pts = rng.uniform(-15, 15, (200, 3))
    ras = lps_mm_to_ras_um(pts)
    np.testing.assert_allclose(ras[:, 0], -1000 * pts[:, 0], rtol=1e-15)
    np.testing.assert_allclose(ras[:, 1], -1000 * pts[:, 1], rtol=1e-15)
    np.testing.assert_allclose(ras[:, 2], 1000 * pts[:, 2], rtol=1e-15)
    np.testing.assert_allclose(ras_um_to_lps_mm(ras), pts, rtol=0, atol=1e-9)
    np.testing.assert_allclose(lps_mm_to_ras_um(ras_um_to_lps_mm(ras)), ras, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------- spec worked example


def test_spec_worked_example_rpi():
    s0 = np.array([0.0144, 0.0144, 0.016])
    header = native_header("RPI", s0, (200, 200, 100))
    np.testing.assert_array_equal(header.direction, np.diag([-1.0, 1.0, -1.0]))
    np.testing.assert_allclose(header.origin, 0.0, atol=0)
    p2 = header.index_to_physical([70, 80, 10])
    np.testing.assert_allclose(p2[0], [-1.008, 1.152, -0.160], rtol=0, atol=1e-12)
    np.testing.assert_allclose(lps_mm_to_ras_um(p2)[0], [1008, -1152, -160], rtol=0, atol=1e-9)
    corner = header.index_to_physical(np.array([70, 80, 10]) - 0.5)
    np.testing.assert_allclose(corner[0], [-1.0008, 1.1448, -0.152], rtol=0, atol=1e-12)


# ---------------------------------------------------------------------- pyramid levels


@pytest.mark.parametrize("code", ["LPS", "RPI", "IRP", "PIR", "ASL", "SLA"])
@pytest.mark.parametrize("level", [1, 2, 3, 4])
def test_level_index_maps_same_physical_point(code: str, level: int):
    rng = np.random.default_rng(10 * level + len(code))
    d = direction_from_code(code)
    s0 = rng.uniform(0.001, 0.003, 3)
    s_l = s0 * 2**level
    o0 = rng.uniform(-10, 10, 3)
    h0 = ImageHeader(o0, s0, d, (512, 512, 512))
    h_l = ImageHeader(level_origin(o0, d, s0, s_l), s_l, d, (512 >> level,) * 3)
    i0 = rng.uniform(-2, 500, (50, 3))
    np.testing.assert_allclose(
        h_l.index_to_physical(level_index(i0, s0, s_l)),
        h0.index_to_physical(i0),
        rtol=0,
        atol=1e-12,
    )
    # native_header builds the same level-L geometry around a level-0 origin at 0
    nat0 = native_header(code, s0, (512, 512, 512))
    nat_l = native_header(code, s_l, (512 >> level,) * 3, s0)
    np.testing.assert_allclose(
        nat_l.index_to_physical(level_index(i0, s0, s_l)),
        nat0.index_to_physical(i0),
        rtol=0,
        atol=1e-12,
    )


@pytest.mark.parametrize("code", ["RPI", "IRP", "LAS"])
def test_level_voxel_centre_is_mean_of_level0_voxels_beneath(code: str):
    # A level-L voxel averages the 2^L x 2^L x 2^L level-0 voxels beneath it (coordinates.md §2).
    d = direction_from_code(code)
    s0 = np.array([0.0018, 0.0018, 0.002])
    level = 3
    s_l = s0 * 2**level
    h0 = native_header(code, s0, (64, 64, 64))
    h_l = native_header(code, s_l, (8, 8, 8), s0)
    for block in ([0, 0, 0], [2, 5, 7]):
        block = np.asarray(block)
        fine = np.stack(
            np.meshgrid(*[np.arange(8 * b, 8 * b + 8) for b in block], indexing="ij"), -1
        ).reshape(-1, 3)
        want = h0.index_to_physical(fine).mean(axis=0)
        np.testing.assert_allclose(h_l.index_to_physical(block)[0], want, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(h_l.direction, d)


def test_level_origin_hand_computed():
    # RPI, level 3 of (1.8, 1.8, 2.0) um: (s3 - s0)/2 = (6.3, 6.3, 7.0) um, D = diag(-1, 1, -1)
    o = level_origin(
        np.array([1.0, 2.0, 3.0]),
        np.diag([-1.0, 1.0, -1.0]),
        np.array([0.0018, 0.0018, 0.002]),
        np.array([0.0144, 0.0144, 0.016]),
    )
    np.testing.assert_allclose(o, [0.9937, 2.0063, 2.993], rtol=0, atol=1e-12)


def test_level_index_hand_computed():
    # level-0 index 0 (centre of the first fine voxel) is 3/8 of a coarse voxel before centre 0
    np.testing.assert_allclose(level_index(np.zeros(3), np.ones(3), np.full(3, 4.0)), -0.375)
    np.testing.assert_allclose(level_index(np.full(3, 1.5), np.ones(3), np.full(3, 4.0)), 0.0)


# ---------------------------------------------------------------------- serialisation


def test_header_json_round_trip():
    rng = np.random.default_rng(4)
    for code in ("RPI", "IRP", "ASR"):
        header = _random_header(rng, code)
        obj = header.to_json()
        assert obj["size_ijk"] == list(header.size)
        np.testing.assert_array_equal(np.reshape(obj["direction"], (3, 3)), header.direction)
        back = ImageHeader.from_json(obj)
        np.testing.assert_array_equal(back.origin, header.origin)
        np.testing.assert_array_equal(back.spacing, header.spacing)
        np.testing.assert_array_equal(back.direction, header.direction)
        assert back.size == header.size
        assert back.code == code


def test_header_shape_zyx_is_reversed_size():
    header = ImageHeader(np.zeros(3), np.ones(3), np.eye(3), (5, 6, 7))
    assert header.shape_zyx == (7, 6, 5)


@pytest.mark.parametrize("code", ["LPS", "RPI", "IRP", "PIR"])
def test_from_ants_equals_source_header(code: str):
    rng = np.random.default_rng(5)
    header = _random_header(rng, code)
    header = ImageHeader(header.origin, header.spacing, header.direction, (4, 5, 6))
    img = ants.from_numpy(np.zeros(header.size, np.float32), **header.ants_kwargs())
    back = ImageHeader.from_ants(img)
    np.testing.assert_allclose(back.origin, header.origin, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back.spacing, header.spacing, rtol=0, atol=1e-12)
    np.testing.assert_allclose(back.direction, header.direction, rtol=0, atol=1e-12)
    assert back.size == header.size
    # and ANTs agrees on where index (1, 2, 3) is (ANTs computes this in single precision)
    want = ants.transform_index_to_physical_point(img, (1, 2, 3))
    np.testing.assert_allclose(header.index_to_physical([1, 2, 3])[0], want, rtol=0, atol=1e-6)


def test_header_rejects_bad_geometry():
    with pytest.raises(ValueError):
        ImageHeader(np.zeros(3), np.array([1.0, 0.0, 1.0]), np.eye(3), (2, 2, 2))
    with pytest.raises(ValueError):
        ImageHeader(np.zeros(3), np.ones(3), np.eye(2), (2, 2, 2))


def test_corners_and_contains_index():
    header = native_header("RPI", np.array([0.5, 1.0, 2.0]), (3, 4, 5))
    corners = header.corners_physical()
    assert corners.shape == (8, 3)
    # RPI from 0: L in [-1, 0], P in [0, 3], S in [-8, 0]
    np.testing.assert_allclose(corners.min(0), [-1.0, 0.0, -8.0], atol=1e-12)
    np.testing.assert_allclose(corners.max(0), [0.0, 3.0, 0.0], atol=1e-12)
    idx = np.array([[-0.5, 0, 0], [-0.6, 0, 0], [2.5, 3.5, 4.5], [2.5, 3.6, 4.5], [1, 1, 1]])
    assert header.contains_index(idx).tolist() == [True, False, True, False, True]
    assert header.contains_index(idx, margin=0.0).tolist() == [False, False, False, False, True]
