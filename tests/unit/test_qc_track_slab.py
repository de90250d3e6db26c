"""Track on histology: the slab shows the tissue at the picks, and the picks are drawn there."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from alignprep.qc.grid import display_volume
from alignprep.qc.render import data_to_pixel, png_bytes
from alignprep.qc.track_slab import draw_track_slab, fit_line, track_slab

SPACING_MM = 0.025
IRP = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], float) * SPACING_MM  # columns of C order^T


def _oblique_truth():
    """A track from a surface point down and to the animal's right and posterior (LPS mm), its
    picks unevenly spaced along it, and a volume with a bright blob at each pick plus one blob
    0.6 mm to the animal's right of the track's middle."""
    surface = np.array([0.8, 2.0, -0.4])
    direction = np.array([-0.35, 0.2, -1.0])
    direction /= np.linalg.norm(direction)
    along_mm = np.array([0.0, 0.3, 0.45, 0.9, 1.2, 1.75, 2.1])
    picks = surface + along_mm[:, None] * direction
    shape_c = (140, 140, 140)  # (AP, ML, DV) voxels of 25 um
    origin = np.array([2.5, 0.25, 0.0])  # LPS mm of voxel 0
    affine = np.eye(4)
    affine[:3, :3] = IRP[::-1].T  # C-order axes (k, j, i)
    affine[:3, 3] = origin
    vol = display_volume(np.zeros(shape_c, np.float32), affine)
    idx = np.indices(shape_c).reshape(3, -1).T
    pts = vol.point_of(idx)
    lateral_right = np.cross(direction, [0, 1, 0])
    lateral_right /= np.linalg.norm(lateral_right)
    if lateral_right @ [-1, 0, 0] < 0:
        lateral_right = -lateral_right
    side_blob = surface + 1.0 * direction + 0.6 * lateral_right
    data = np.zeros(len(pts), np.float32)
    for centre, value in [*((p, 100.0) for p in picks), (side_blob, 60.0)]:
        data += value * np.exp(-np.sum((pts - centre) ** 2, axis=1) / (2 * 0.04**2))
    vol = display_volume(data.reshape(shape_c), affine)
    return vol, picks, along_mm, direction, side_blob


@pytest.fixture(scope="module")
def truth():
    return _oblique_truth()


def test_line_fit_recovers_the_known_direction(truth):
    _, picks, _, direction, _ = truth
    line = fit_line(picks)
    np.testing.assert_allclose(line.direction, direction, atol=1e-9)  # toward the last pick


def test_slab_shows_the_blobs_where_the_picks_are(truth):
    vol, picks, along_mm, _, _ = truth
    slab = track_slab(vol, picks, thickness_um=300.0)
    # independent geometry: pick n sits (2.1 - along_n) mm above the deepest pick, on the line
    expected_height_um = (along_mm.max() - along_mm) * 1000.0
    np.testing.assert_allclose(slab.picks_um[:, 1], expected_height_um, atol=1e-6)
    np.testing.assert_allclose(slab.picks_um[:, 0], 0.0, atol=1e-6)
    for h in expected_height_um:
        row = int(np.argmin(np.abs(slab.height_um - h)))
        col = int(np.argmin(np.abs(slab.lateral_um)))
        assert slab.image[row, col] > 0.8 * 100.0, f"no tissue blob at the pick {h} um up"
    # between two picks 0.55 mm apart, away from both blobs, the slab is dark
    row = int(np.argmin(np.abs(slab.height_um - (2.1 - 1.475) * 1000.0)))
    assert slab.image[row, int(np.argmin(np.abs(slab.lateral_um)))] < 5.0


def test_the_animals_right_is_on_the_right_of_the_slab(truth):
    vol, picks, _, _, side_blob = truth
    slab = track_slab(vol, picks)
    row = int(np.argmin(np.abs(slab.height_um - 1100.0)))  # side blob: 1.0 mm below the surface
    right = int(np.argmin(np.abs(slab.lateral_um - 600.0)))
    left = int(np.argmin(np.abs(slab.lateral_um + 600.0)))
    assert slab.image[row, right] > 0.8 * 60.0 and slab.image[row, left] < 1.0
    assert side_blob is not None


def _magenta_blobs(rgba: np.ndarray) -> list[tuple[float, float]]:
    from scipy import ndimage

    mask = (rgba[..., 0] > 0.8) & (rgba[..., 1] < 0.35) & (rgba[..., 2] > 0.8)
    labelled, n = ndimage.label(mask)
    return [tuple(c) for c in ndimage.center_of_mass(mask, labelled, range(1, n + 1))]


def test_drawn_picks_land_on_the_pixels_the_picks_map_to(truth):
    vol, picks, along_mm, _, _ = truth
    slab = track_slab(vol, picks)
    fig = draw_track_slab([("left", slab), ("right", slab)], "test")
    data = png_bytes(fig)
    rgba = mpimg.imread(io.BytesIO(data))
    ax = next(a for a in fig.axes if a.get_label() == "slab right")
    expected = [data_to_pixel(ax, (0.0, (along_mm.max() - a) * 1000.0)) for a in along_mm]
    blobs = _magenta_blobs(rgba)
    # the other panel and the legend's marker are magenta too: each pick of the second panel
    # must have a blob within 2 px
    for col, row in expected:
        dist = min(np.hypot(r - row, c - col) for r, c in blobs)
        assert dist < 2.0, f"no pick drawn within 2 px of ({col:.1f}, {row:.1f})"
    assert png_bytes(draw_track_slab([("left", slab), ("right", slab)], "test")) == data
