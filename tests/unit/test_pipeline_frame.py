"""The SmartSPIM pipeline frame (F3) and the sidecar frame decision (coordinates.md §3).

Independent truth: the spec's closed form and the aind-zarr-utils numbers published there, the
RAS-corner voxel computed from the code's letters, and hand-computed bounding boxes.
"""

from __future__ import annotations

import numpy as np
import pytest
from packaging.version import Version

from alignprep.space.frames import direction_from_code, native_header
from alignprep.space.pipeline_frame import (
    bbox_lps,
    decide_frame,
    parse_import_version,
    pipeline_frame,
)

S0 = np.array([0.0018, 0.0018, 0.002])  # level-0 spacing (x, y, z), mm
ANCHOR = np.array([-1.5114, -1.5, 1.5])
FORCED = {"L": 0.0144, "R": 0.0144, "A": 0.0144, "P": 0.0144, "S": 0.016, "I": 0.016}


def _ras_corner(code: str, size: tuple[int, int, int]) -> np.ndarray:
    """Index of the RAS-corner voxel, from the code's letters alone."""
    return np.array([n - 1 if letter in "RAS" else 0 for letter, n in zip(code, size, strict=True)])


def _spacing0_for(code: str) -> np.ndarray:
    """Typical SmartSPIM level-0 spacing per world axis: 1.8 um in-plane, 2.0 um along S-I."""
    return np.array([0.002 if letter in "SI" else 0.0018 for letter in code])


def _frame(code: str, size_r: tuple[int, int, int], version: str, s0: np.ndarray | None = None):
    s0 = _spacing0_for(code) if s0 is None else s0
    native_r = native_header(code, s0 * 8, size_r, s0)
    size0 = tuple(8 * n for n in size_r)
    return native_r, pipeline_frame(native_r, size0, version)


# ----------------------------------------------------------------------------- closed form


def test_closed_form_rpi_n1000():
    native_r, frame = _frame("RPI", (1000, 700, 400), "0.0.25", S0)
    h0 = frame.header0
    np.testing.assert_allclose(h0.origin, [12.8805, -1.5063, 1.507], rtol=0, atol=1e-9)
    np.testing.assert_allclose(h0.spacing, [0.0018, 0.0018, 0.002], rtol=0, atol=1e-12)
    np.testing.assert_array_equal(h0.direction, native_r.direction)
    assert h0.size == (8000, 5600, 3200)
    h3 = frame.header_at(3, (1000, 700, 400))
    np.testing.assert_allclose(h3.origin, [12.8742, -1.5, 1.5], rtol=0, atol=1e-9)
    np.testing.assert_allclose(h3.spacing, [0.0144, 0.0144, 0.016], rtol=0, atol=1e-12)
    # o_R = (-1.5114 + 0.0144 (N - 1), -1.5, 1.5) for other N too
    for n in (1, 37, 1500):
        _, fr = _frame("RPI", (n, 50, 60), "0.0.25", S0)
        o_r = fr.header_at(3, (n, 50, 60)).origin
        np.testing.assert_allclose(o_r, [-1.5114 + 0.0144 * (n - 1), -1.5, 1.5], atol=1e-9)
        np.testing.assert_allclose(
            fr.header0.origin, o_r + np.array([0.0063, -0.0063, 0.007]), rtol=0, atol=1e-9
        )


@pytest.mark.parametrize("code", ["RPI", "LPS", "IRP", "PIR", "ASL", "SLA", "RAS", "LAI"])
@pytest.mark.parametrize("version", ["0.0.18", "0.0.25", "0.0.31", "0.0.33", "0.0.34"])
def test_ras_corner_voxel_sits_at_anchor(code: str, version: str):
    size_r = (90, 70, 50)
    _, frame = _frame(code, size_r, version)
    h3 = frame.header_at(3, size_r)
    corner = _ras_corner(code, size_r)
    np.testing.assert_allclose(h3.index_to_physical(corner)[0], ANCHOR, rtol=0, atol=1e-9)
    # it really is the most Right, Anterior, Superior voxel centre of the grid (LPS: min L, min P,
    # max S)
    corners = h3.corners_physical()
    np.testing.assert_allclose(
        [corners[:, 0].min(), corners[:, 1].min(), corners[:, 2].max()], ANCHOR, atol=1e-9
    )


@pytest.mark.parametrize("code", ["RPI", "IRP", "ASL"])
def test_level0_and_level3_describe_the_same_tissue(code: str):
    size_r = (40, 30, 20)
    _, frame = _frame(code, size_r, "0.0.25")
    h0, h3 = frame.header0, frame.header_at(3, size_r)
    # level-3 voxel centre = mean of the 8x8x8 level-0 voxel centres beneath it
    fine = np.stack(np.meshgrid(*[np.arange(16, 24)] * 3, indexing="ij"), -1).reshape(-1, 3)
    np.testing.assert_allclose(
        h3.index_to_physical([2, 2, 2])[0], h0.index_to_physical(fine).mean(0), atol=1e-12
    )


# ----------------------------------------------------------------------------- versions


@pytest.mark.parametrize("version", ["0.0.18", "0.0.25", "0.0.31", "v0.0.20"])
def test_step_a_forces_spacing_per_world_axis(version: str):
    # IRP: index i along S-I, j along L-R, k along A-P. Native spacings deliberately odd.
    code = "IRP"
    s0 = np.array([0.003, 0.0025, 0.0022])
    _, frame = _frame(code, (30, 40, 50), version, s0)
    want_r = np.array([FORCED[letter] for letter in code])  # (0.016, 0.0144, 0.0144)
    np.testing.assert_allclose(want_r, [0.016, 0.0144, 0.0144])
    np.testing.assert_allclose(frame.header0.spacing, want_r / 8, rtol=0, atol=1e-12)
    np.testing.assert_allclose(frame.header_at(3, (30, 40, 50)).spacing, want_r, atol=1e-12)
    assert frame.warnings == ()


@pytest.mark.parametrize("version", ["0.0.32", "0.0.33", "0.0.34", "0.0.40", "1.2.0"])
def test_no_step_a_from_0_0_32(version: str):
    code = "IRP"
    s0 = np.array([0.003, 0.0025, 0.0022])
    size_r = (30, 40, 50)
    _, frame = _frame(code, size_r, version, s0)
    np.testing.assert_allclose(frame.header0.spacing, s0, rtol=0, atol=1e-12)
    # step B still applies, with the native spacing
    h3 = frame.header_at(3, size_r)
    np.testing.assert_allclose(
        h3.index_to_physical(_ras_corner(code, size_r))[0], ANCHOR, rtol=0, atol=1e-9
    )


@pytest.mark.parametrize(("version", "warns"), [("0.0.33", False), ("0.0.34", False),
                                                ("0.0.35", True), ("0.1.0", True)])  # fmt: skip
def test_warning_above_0_0_34(version: str, warns: bool):
    _, frame = _frame("RPI", (10, 10, 10), version)
    assert bool(frame.warnings) is warns
    if warns:
        assert "0.0.34" in frame.warnings[0]


@pytest.mark.parametrize("version", ["0.0.17", "0.0.1", "0.0.17.post1"])
def test_before_0_0_18_pipeline_frame_is_native(version: str):
    code = "RPI"
    s0 = np.array([0.003, 0.0025, 0.0022])
    size_r = (30, 40, 50)
    native_r, frame = _frame(code, size_r, version, s0)
    np.testing.assert_array_equal(frame.header0.origin, np.zeros(3))
    np.testing.assert_allclose(frame.header0.spacing, s0, rtol=0, atol=1e-12)
    native0 = native_header(code, s0, tuple(8 * n for n in size_r))
    i0 = np.random.default_rng(0).uniform(0, 300, (20, 3))
    np.testing.assert_allclose(
        frame.header0.index_to_physical(i0), native0.index_to_physical(i0), rtol=0, atol=1e-12
    )
    # and at level 3 it matches the native level-3 header
    np.testing.assert_allclose(frame.header_at(3, size_r).origin, native_r.origin, atol=1e-12)


@pytest.mark.parametrize("bad", ["abc", "", "0.0.x", "latest"])
def test_invalid_version_raises(bad: str):
    with pytest.raises(ValueError):
        parse_import_version(bad)
    native_r = native_header("RPI", S0 * 8, (10, 10, 10), S0)
    with pytest.raises(ValueError):
        pipeline_frame(native_r, (80, 80, 80), bad)


def test_parse_import_version_ordering():
    assert parse_import_version("0.0.25") == Version("0.0.25")
    assert parse_import_version(" v0.0.9 ") < parse_import_version("0.0.18")


def test_header_at_spacing_factor_two():
    _, frame = _frame("RPI", (10, 10, 10), "0.0.25", S0)
    for level in range(5):
        np.testing.assert_allclose(frame.header_at(level, (5, 5, 5)).spacing, S0 * 2**level)
    np.testing.assert_allclose(frame.header_at(0, (5, 5, 5)).origin, frame.header0.origin)


# ----------------------------------------------------------------------------- frame decision


def _sidecar(box: np.ndarray) -> dict:
    return {
        "schema": "1.0",
        "frame": "LPS",
        "units": "mm",
        "moving_domain": {
            "definition": "voxel-center",
            "bbox": {axis: [float(box[a, 0]), float(box[a, 1])] for a, axis in enumerate("LPS")},
        },
    }


@pytest.fixture
def headers():
    size_r = (1000, 700, 400)
    _, frame = _frame("RPI", size_r, "0.0.25", S0)
    native0 = native_header("RPI", S0, tuple(8 * n for n in size_r))
    return native0, frame.header0


def test_bbox_lps_hand_computed(headers):
    native0, _ = headers
    nx, ny, nz = native0.size
    want = np.array([[-(nx - 1) * 0.0018, 0.0], [0.0, (ny - 1) * 0.0018], [-(nz - 1) * 0.002, 0.0]])
    np.testing.assert_allclose(bbox_lps(native0), want, rtol=0, atol=1e-12)


def test_decide_without_sidecar_is_pipeline(headers):
    native0, pipe0 = headers
    assert decide_frame(None, native0, pipe0).frame == "pipeline"


def test_decide_native_bbox(headers):
    native0, pipe0 = headers
    decision = decide_frame(_sidecar(bbox_lps(native0)), native0, pipe0)
    assert decision.frame == "native"
    assert decision.distance_mm["native"] == pytest.approx(0.0, abs=1e-12)
    # small disagreement (0.3 mm) still decides native
    assert decide_frame(_sidecar(bbox_lps(native0) + 0.3), native0, pipe0).frame == "native"


def test_decide_pipeline_bbox(headers):
    native0, pipe0 = headers
    decision = decide_frame(_sidecar(bbox_lps(pipe0)), native0, pipe0)
    assert decision.frame == "pipeline"
    assert decision.distance_mm["pipeline"] == pytest.approx(0.0, abs=1e-12)
    # the two frames are ~12.9 mm apart along L in this example (coordinates.md §3)
    assert decision.distance_mm["native"] == pytest.approx(12.8805, abs=1e-3)


def test_decide_far_from_both_raises(headers):
    native0, pipe0 = headers
    with pytest.raises(ValueError, match="moving_domain"):
        decide_frame(_sidecar(bbox_lps(native0) + 40.0), native0, pipe0, "tx.json")


def test_decide_missing_or_malformed_moving_domain_raises(headers):
    native0, pipe0 = headers
    with pytest.raises(ValueError, match="moving_domain"):
        decide_frame({"schema": "1.0", "fixed_domain": {}}, native0, pipe0)
    with pytest.raises(ValueError, match="moving_domain"):
        decide_frame({"moving_domain": {"bbox": {"L": [0, 1], "P": [0, 1]}}}, native0, pipe0)


def test_direction_consistency_of_frames():
    _, frame = _frame("IRP", (10, 20, 30), "0.0.25")
    np.testing.assert_array_equal(frame.header0.direction, direction_from_code("IRP"))
    assert frame.header0.code == "IRP"
