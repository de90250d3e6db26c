"""Volumes resampled through a chain against ``ants.apply_transforms`` (double precision).

Independent truth: ANTs itself on the same files and arrays (linear and genericLabel), and ITK's
documented rules where they can be stated exactly (a tie between labels goes to the smallest;
voxels that map outside the moving image get 0).
"""

from __future__ import annotations

import ants
import numpy as np
import pytest

from alignprep.inputs.field_store import FieldStore
from alignprep.space import fields, sampling
from alignprep.space.frames import ImageHeader, direction_from_code
from alignprep.space.sampling import Moving, resample
from alignprep.space.transforms import Chain
from alignprep.synthetic.geometry import Affine, Field, random_affine


def _ants_warp(grid: ImageHeader, volume, header: ImageHeader, chain: Chain, how: str):
    fixed = ants.from_numpy(np.zeros(grid.size, np.float32), **grid.ants_kwargs())
    moving = ants.from_numpy(np.asarray(volume, np.float32), **header.ants_kwargs())
    out = ants.apply_transforms(
        fixed,
        moving,
        [str(p) for p in chain.files],
        interpolator=how,
        whichtoinvert=list(chain.invert),
    )
    return out.numpy()


def _blocky_labels(rng: np.random.Generator, size, block: int, values) -> np.ndarray:
    """Labels constant on blocks (real label volumes are), several per neighbourhood at edges."""
    coarse = rng.choice(values, size=tuple(-(-n // block) for n in size))
    up = coarse.repeat(block, 0).repeat(block, 1).repeat(block, 2)
    return np.ascontiguousarray(up[: size[0], : size[1], : size[2]])


def _centred(centre, spacing, code: str, size) -> ImageHeader:
    d = direction_from_code(code)
    s = np.broadcast_to(np.asarray(spacing, float), (3,))
    origin = np.asarray(centre) - d @ (s * (np.asarray(size) - 1) / 2)
    return ImageHeader(origin, s, d, size)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("sampling")
    rng = np.random.default_rng(11)
    moving_h = ImageHeader(
        [2.0, -1.0, 1.5], [0.1, 0.1, 0.1], direction_from_code("PIR"), (24, 20, 22)
    )
    centre_m = moving_h.index_to_physical((np.asarray(moving_h.size) - 1) / 2)[0]
    field_h = _centred(centre_m, 0.2, "RAS", (16, 15, 14))
    from scipy.ndimage import zoom

    smooth = rng.normal(0, 0.06, (4, 4, 4, 3))
    vectors = zoom(smooth, (4, 3.75, 3.5, 1), order=1)[:16, :15, :14]
    field = Field(field_h, vectors).write(d / "sWarp.nii.gz")
    centre_g = centre_m + np.array([0.5, -0.3, 0.2])
    # grid points -> A^-1 -> field -> moving: A takes the moving centre to the grid centre
    aff = random_affine(rng, centre_m, centre_g, 15, (0.9, 1.1)).write(d / "s0GenericAffine.mat")
    grid = ImageHeader(np.zeros(3), [0.07, 0.08, 0.09], direction_from_code("IRP"), (36, 30, 33))
    grid = _centred(centre_g, grid.spacing, "IRP", grid.size)
    labels = _blocky_labels(rng, moving_h.size, 3, np.array([0, 1, 2, 7, 300, 1301]))
    intensity = rng.uniform(0, 1000, moving_h.size).astype(np.float32)
    return {
        "store": FieldStore(d / "scratch"),
        "chain": Chain((aff, field), (True, False)),  # grid points -> moving points
        "grid": grid,
        "moving_h": moving_h,
        "labels": labels,
        "intensity": intensity,
    }


def test_labels_and_intensities_match_ants(scene):
    grid, moving_h, chain = scene["grid"], scene["moving_h"], scene["chain"]
    chain_map = scene["store"].chain_map(chain)
    labels, intensity = resample(
        grid,
        chain_map,
        [
            Moving(scene["labels"], moving_h, "label", np.dtype(np.int32)),
            Moving(scene["intensity"], moving_h, "linear", np.dtype(np.float64)),
        ],
    )
    want_labels = _ants_warp(grid, scene["labels"], moving_h, chain, "genericLabel")
    assert np.array_equal(labels, want_labels.astype(np.int32))
    assert len(np.unique(labels)) >= 5
    want = _ants_warp(grid, scene["intensity"], moving_h, chain, "linear")
    np.testing.assert_allclose(intensity, want, rtol=1e-6, atol=1e-3)
    outside = want_labels == 0
    assert 0.05 < np.mean(intensity == 0) < 0.9  # some voxels map outside the moving image
    assert np.all(intensity[outside & (intensity == 0)] == 0)


def test_integer_output_is_rounded_and_clipped(scene):
    grid, moving_h = scene["grid"], scene["moving_h"]
    chain_map = scene["store"].chain_map(scene["chain"])
    volume = scene["intensity"] * 100 - 20000  # -20000 .. 80000: clipped at both ends of uint16
    (as_float,), (as_uint16,) = (
        resample(grid, chain_map, [Moving(volume, moving_h, "linear", np.dtype(t))])
        for t in (np.float64, np.uint16)
    )
    assert np.array_equal(as_uint16, np.clip(np.rint(as_float), 0, 65535).astype(np.uint16))
    assert as_uint16.max() == 65535 and (as_float < 0).any()


def test_ties_go_to_the_smallest_label(tmp_path):
    """Output voxels exactly between 2, 4 or 8 moving voxels: ITK keeps the smallest label."""
    h = ImageHeader([0.0, 0.0, 0.0], [0.25, 0.25, 0.25], np.eye(3), (8, 8, 8))
    identity = Affine(np.eye(3), np.zeros(3), np.zeros(3)).write(tmp_path / "id.mat")
    chain = Chain((identity,), (False,))
    labels = _blocky_labels(np.random.default_rng(0), h.size, 1, np.array([5, 3, 9, 4]))
    store = FieldStore(tmp_path / "scratch")
    for shift in ([0.5, 0, 0], [0.5, 0.5, 0], [0.5, 0.5, 0.5]):
        grid = ImageHeader(np.array(shift) * 0.25, h.spacing, h.direction, (7, 7, 7))
        (ours,) = resample(grid, store.chain_map(chain), [Moving(labels, h, "label", np.int32)])
        want = _ants_warp(grid, labels, h, chain, "genericLabel").astype(np.int32)
        assert np.array_equal(ours, want), shift
        # independent of ANTs: a 2-way tie along i takes the smaller of the two voxels
        if shift == [0.5, 0, 0]:
            assert np.array_equal(ours, np.minimum(labels[:-1, :7, :7], labels[1:, :7, :7]))


def test_bricks_and_threads_do_not_change_a_bit(scene, monkeypatch):
    grid, moving_h = scene["grid"], scene["moving_h"]
    chain_map = scene["store"].chain_map(scene["chain"])
    moving = [
        Moving(scene["labels"], moving_h, "label", np.dtype(np.int32)),
        Moving(scene["intensity"], moving_h, "linear", np.dtype(np.uint16)),
    ]
    whole = resample(grid, chain_map, moving, threads=1)
    monkeypatch.setattr(sampling, "BRICK_EDGE", 7)  # many bricks, partial ones at every edge
    monkeypatch.setattr(fields, "MIN_POINTS_PER_THREAD", 10)  # several threads per brick
    sliced = resample(grid, chain_map, moving, threads=3)
    for a, b in zip(whole, sliced, strict=True):
        assert np.array_equal(a, b)
