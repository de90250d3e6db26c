"""The QC display layout: volumes turned by their header's physical meaning, never by layout."""

from __future__ import annotations

import nrrd
import numpy as np
import pytest

from alignprep.qc.grid import display_volume, nrrd_affine_lps_mm, read_display_volume

RNG = np.random.default_rng(12)


def _lps_of_display_axes(vol) -> np.ndarray:
    """The LPS direction in which each display index axis increases."""
    d = vol.affine_lps_mm[:3, :3]
    return np.sign(np.round(d / np.abs(d).max(axis=0), 6)).T


@pytest.mark.parametrize(
    "directions_ijk",
    [
        # IRP (what the run writes), then LPS, RAS-like and a permuted layout
        [[0, 0, -1], [-1, 0, 0], [0, 1, 0]],
        [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        [[-1, 0, 0], [0, -1, 0], [0, 0, 1]],
        [[0, -1, 0], [0, 0, 1], [1, 0, 0]],
    ],
)
def test_any_stored_order_is_shown_posterior_right_ventral(tmp_path, directions_ijk):
    spacing_mm = np.array([0.02, 0.03, 0.05])
    directions = np.asarray(directions_ijk, float) * spacing_mm[:, None]
    shape_ijk = (5, 6, 7)
    data_c = RNG.integers(0, 1000, size=shape_ijk[::-1]).astype(np.int32)
    header = {
        "space": "left-posterior-superior",
        "space directions": directions,
        "space origin": np.array([1.0, -2.0, 3.0]),
    }
    path = tmp_path / "v.nrrd"
    nrrd.write(str(path), data_c, header, index_order="C")
    vol = read_display_volume(path)
    # each display axis increases toward posterior (+y), right (-x), inferior (-z) in LPS
    np.testing.assert_array_equal(_lps_of_display_axes(vol), [[0, 1, 0], [-1, 0, 0], [0, 0, -1]])
    # every voxel keeps its physical position: compare each value at its LPS point
    _, hdr = nrrd.read(str(path), index_order="C")
    for _ in range(20):
        kji = tuple(int(RNG.integers(0, n)) for n in data_c.shape)
        point = hdr["space origin"] + np.asarray(hdr["space directions"]).T @ np.array(kji[::-1])
        idx = np.round(vol.index_of(point)[0]).astype(int)
        assert vol.data[tuple(idx)] == data_c[kji]
        np.testing.assert_allclose(vol.point_of(idx), [point], atol=1e-9)


def test_ras_space_headers_are_converted_to_lps():
    header = {
        "space": "right-anterior-superior",
        "space directions": np.eye(3) * 0.025,
        "space origin": np.array([1.0, 2.0, 3.0]),
    }
    affine = nrrd_affine_lps_mm(header)
    np.testing.assert_allclose(affine[:3, 3], [-1.0, -2.0, 3.0])
    vol = display_volume(np.zeros((4, 5, 6)), affine)
    assert vol.data.shape == (5, 6, 4)  # (AP, ML, DV) from C-order (S, A, R)


def test_unknown_space_is_refused():
    with pytest.raises(ValueError, match="scanner-xyz"):
        nrrd_affine_lps_mm({"space": "scanner-xyz", "space directions": np.eye(3)})
