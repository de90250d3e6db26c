"""Foreground, grid coverage, sample points and rank similarity against analytic truth."""

from __future__ import annotations

import numpy as np
import pytest

from alignprep.inputs.registration_images import (
    foreground,
    rank_similarity,
    sample_image,
    sample_points,
    uncovered_voxels,
)
from alignprep.space.frames import ImageHeader, direction_from_code

SHAPE = (40, 50, 30)


@pytest.fixture(scope="module")
def ball() -> tuple[np.ndarray, ImageHeader]:
    """A bright box [5, 30] x [10, 41] x [3, 20] (ITK index) on a dark background."""
    arr = np.zeros(SHAPE, np.uint16)
    arr[5:31, 10:42, 3:21] = 1000
    arr[12:20, 20:30, 8:12] = 3000  # texture inside
    header = ImageHeader(
        np.array([1.0, -2.0, 0.5]), np.array([0.025] * 3), direction_from_code("PIR"), SHAPE
    )
    return arr, header


def test_foreground_box_is_the_bright_box(ball):
    arr, _ = ball
    fg = foreground(arr, np.random.default_rng(0))
    assert fg is not None
    np.testing.assert_array_equal(fg.lo, [5, 10, 3])
    np.testing.assert_array_equal(fg.hi, [30, 41, 20])
    assert foreground(np.zeros(SHAPE), np.random.default_rng(0)) is None


def test_uncovered_voxels_measures_a_shift(ball):
    arr, header = ball
    fg = foreground(arr, np.random.default_rng(0))
    assert uncovered_voxels(fg, header, header) == 0.0
    # a coarser grid (4x spacing) over the same box covers it
    coarse = ImageHeader(
        header.origin,
        header.spacing * 4,
        header.direction,
        tuple(int(np.ceil(n / 4)) for n in SHAPE),
    )
    assert uncovered_voxels(fg, header, coarse) <= 0.5
    # move the grid by 20 fixed voxels along index axis j: the box (j up to 41) now reaches
    # 41 - 20 - (50 - 1) < 0 above, but starts at 10 - 20 = -10 below -> 10 voxels outside
    moved = ImageHeader(
        header.index_to_physical([[0, 20, 0]])[0], header.spacing, header.direction, SHAPE
    )
    assert uncovered_voxels(fg, header, moved) == pytest.approx(10.0)


def test_sample_points_are_foreground_inside_the_grid(ball):
    arr, header = ball
    fg = foreground(arr, np.random.default_rng(0))
    # a warp grid that covers only part of the box: points must stay in its interior
    grid = ImageHeader(
        header.index_to_physical([[0, 15, 0]])[0],
        header.spacing * 2,
        header.direction,
        (20, 15, 15),
    )
    pts, values = sample_points(arr, header, fg, grid, 500, np.random.default_rng(1))
    assert len(pts) == 500
    assert len({tuple(p) for p in pts.round(9)}) == 500  # distinct voxels
    idx = header.physical_to_index(pts)
    np.testing.assert_allclose(idx, np.rint(idx), atol=1e-9)  # voxel centres
    ijk = np.rint(idx).astype(int)
    np.testing.assert_array_equal(values, arr[tuple(ijk.T)])
    assert np.all(values > fg.threshold)
    g = grid.physical_to_index(pts)
    assert np.all(g >= 2 - 1e-9) and np.all(g <= np.asarray(grid.size) - 3 + 1e-9)
    again, _ = sample_points(arr, header, fg, grid, 500, np.random.default_rng(1))
    np.testing.assert_array_equal(again, pts)  # deterministic


def test_sample_points_without_an_image_fill_the_grid_interior(ball):
    _, header = ball
    pts, values = sample_points(None, None, None, header, 300, np.random.default_rng(2))
    assert values is None
    g = header.physical_to_index(pts)
    assert np.all(g >= 2) and np.all(g <= np.asarray(SHAPE) - 3)


def test_sample_image_is_exact_on_a_linear_image():
    header = ImageHeader(
        np.array([0.3, 0.1, -0.2]),
        np.array([0.1, 0.2, 0.05]),
        direction_from_code("RAS"),
        (10, 12, 14),
    )
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in header.size], indexing="ij"), -1)
    xyz = header.index_to_physical(ijk.reshape(-1, 3)).reshape(*header.size, 3)
    image = 2.0 * xyz[..., 0] - 3.0 * xyz[..., 1] + 0.5 * xyz[..., 2]
    pts = header.index_to_physical(np.random.default_rng(3).uniform(0, 9, (50, 3)))
    want = pts @ [2.0, -3.0, 0.5]
    np.testing.assert_allclose(sample_image(image, header, pts), want, atol=1e-9)
    outside = header.index_to_physical([[-5.0, 0, 0]])
    assert sample_image(image, header, outside)[0] == 0.0


def test_rank_similarity_decides_relatively():
    rng = np.random.default_rng(4)
    signal = rng.normal(size=5000)
    good = signal + 0.3 * rng.normal(size=5000)
    worse = signal + 1.0 * rng.normal(size=5000)
    sim = rank_similarity(
        signal,
        {"good": good, "worse": worse, "twin": good.copy()},
        [("good", "worse"), ("worse", "good"), ("good", "twin")],
        200,
        np.random.default_rng(5),
    )
    assert sim.corr["good"] > sim.corr["worse"] > 0.5
    assert sim.significant("good", "worse", 4.0, 0.002) == 1
    assert sim.significant("worse", "good", 4.0, 0.002) == -1
    assert sim.significant("good", "twin", 4.0, 0.002) == 0  # identical: cannot tell
    flat = rank_similarity(signal, {"c": np.ones(5000)}, [], 10, rng)
    assert flat is None  # no contrast: not possible, not "passed"
