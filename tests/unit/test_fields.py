"""Transform chains evaluated in numpy/numba against ANTs itself (``apply_transforms_to_points``).

Independent truth: ANTs reading the same files. ``ants.apply_transforms_to_points`` passes points
through float32 and computes in float32 (antspy calls it with ``--precision 0``), so points are
given float32-exact and compared to 5 nm, well inside the 10 nm the picks must keep. Points are
placed inside a field, in the half voxel past its edge voxels (clamped interpolation), just
outside the buffer (no displacement) and far outside.
"""

from __future__ import annotations

import numpy as np
import pytest

from alignprep.inputs.field_store import FieldStore
from alignprep.space import fields
from alignprep.space.fields import ChainMap
from alignprep.space.frames import ImageHeader, direction_from_code
from alignprep.space.transforms import Chain
from alignprep.synthetic.geometry import Field, random_affine

from ..ants_reference import apply_to_points

TOL_MM = 5e-6  # float32 rounding of ANTs at ~10 mm is 1e-6 mm


def _rough_field(rng: np.random.Generator, header: ImageHeader, amplitude_mm: float) -> Field:
    """Independent random vectors at every voxel: interpolation errors cannot hide."""
    return Field(header, rng.normal(0.0, amplitude_mm, (*header.size, 3)))


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("fields")
    rng = np.random.default_rng(3)
    h1 = ImageHeader([1.0, -2.0, 0.5], [0.1, 0.12, 0.15], direction_from_code("PIR"), (9, 7, 6))
    h2 = ImageHeader([-0.7, 0.4, 1.9], [0.2, 0.2, 0.2], direction_from_code("RAS"), (7, 8, 5))
    aff1 = random_affine(rng, np.array([1.0, -1.0, 0.0]), np.array([0.2, 0.3, 0.1]), 12, (0.9, 1.1))
    aff2 = random_affine(rng, np.array([0.0, 0.5, 1.0]), np.array([0.1, -0.2, 0.3]), 8, (0.9, 1.1))
    return {
        "field1": _rough_field(rng, h1, 0.05).write(d / "f1Warp.nii.gz"),
        "field2": _rough_field(rng, h2, 0.08).write(d / "f2Warp.nii.gz"),
        "h1": h1,
        "h2": h2,
        "aff1": aff1.write(d / "a10GenericAffine.mat"),
        "aff2": aff2.write(d / "a20GenericAffine.mat"),
        "store": FieldStore(d / "scratch"),
    }


def _f32(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, dtype=np.float32).astype(np.float64)


def _probe_indices(header: ImageHeader, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Continuous indices: inside, past the edge voxels (< half a voxel), just and far outside."""
    n = np.asarray(header.size, dtype=float)
    inside = rng.uniform(0, n - 1, (300, 3))
    edge, out, far = [], [], []
    for axis in range(3):
        for value_edge, value_out in ((-0.3, -0.51), (n[axis] - 0.7, n[axis] - 0.49)):
            base = rng.uniform(0, n - 1, (20, 3))
            e, o, f = base.copy(), base.copy(), base.copy()
            e[:, axis], o[:, axis] = value_edge, value_out
            f[:, axis] = value_out + np.sign(value_out) * 5
            edge.append(e)
            out.append(o)
            far.append(f)
    return {
        "inside": inside,
        "edge": np.vstack(edge),
        "outside": np.vstack(out),
        "far": np.vstack(far),
    }


@pytest.mark.parametrize("which", ["field1", "field2"])
def test_field_matches_ants_inside_at_the_edge_and_outside(files, which):
    header = files["h1" if which == "field1" else "h2"]
    chain = Chain((files[which],), (False,))
    ours_map = files["store"].chain_map(chain)
    rng = np.random.default_rng(5)
    for where, idx in _probe_indices(header, rng).items():
        pts = _f32(header.index_to_physical(idx))
        ours = ours_map.apply(pts)
        ants_out = apply_to_points(chain, pts)
        np.testing.assert_allclose(ours, ants_out, rtol=0, atol=TOL_MM, err_msg=where)
        moved = np.abs(ours - pts).max(axis=1)
        if where in ("outside", "far"):
            assert np.all(moved == 0), where  # no displacement outside the buffer
        else:
            assert np.all(moved > 1e-4), where  # a displacement of the field's size


def test_edge_points_take_the_edge_voxel_value(files):
    """Past the last voxel centre, interpolation clamps to the edge voxel (numpy truth)."""
    import nibabel as nib

    header = files["store"].get(files["field1"]).scan.header  # as stored (float32 geometry)
    vectors = np.asarray(nib.load(str(files["field1"])).dataobj)[:, :, :, 0, :]  # (i, j, k, 3)
    n = np.asarray(header.size)
    idx = np.array([[n[0] - 0.8, 2.0, 3.0], [-0.4, 4.0, 1.0]])
    want = np.array([vectors[n[0] - 1, 2, 3], vectors[0, 4, 1]], dtype=float)
    pts = header.index_to_physical(idx)
    got = files["store"].chain_map(Chain((files["field1"],), (False,))).apply(pts) - pts
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("invert", [False, True])
def test_affine_matches_ants(files, invert):
    chain = Chain((files["aff1"],), (invert,))
    pts = _f32(np.random.default_rng(1).uniform(-8, 8, (500, 3)))
    ours = files["store"].chain_map(chain).apply(pts)
    np.testing.assert_allclose(ours, apply_to_points(chain, pts), rtol=0, atol=TOL_MM)


def test_chain_in_list_order_matches_ants(files):
    """``[aff1^-1, field1, aff2^-1, field2]``: the shape of the individual -> CCF point chain."""
    chain = Chain(
        (files["aff1"], files["field1"], files["aff2"], files["field2"]), (True, False, True, False)
    )
    rng = np.random.default_rng(2)
    centre = files["h1"].index_to_physical((np.asarray(files["h1"].size) - 1) / 2)[0]
    pts = _f32(centre + rng.uniform(-1.5, 1.5, (2000, 3)))
    ours = files["store"].chain_map(chain).apply(pts)
    ants_out = apply_to_points(chain, pts)
    np.testing.assert_allclose(ours, ants_out, rtol=0, atol=TOL_MM)
    assert np.abs(ours - pts).max() > 0.5  # the chain does move the points


def test_threads_do_not_change_a_bit(files, monkeypatch):
    monkeypatch.setattr(fields, "MIN_POINTS_PER_THREAD", 100)
    chain = Chain((files["aff1"], files["field1"]), (True, False))
    ours_map = files["store"].chain_map(chain)
    centre = files["h1"].index_to_physical((np.asarray(files["h1"].size) - 1) / 2)[0]
    pts = centre + np.random.default_rng(4).uniform(-1, 1, (5001, 3))
    one = ours_map.apply(pts, threads=1)
    assert np.array_equal(one, ours_map.apply(pts, threads=3))
    assert np.array_equal(one, ours_map.apply(pts, threads=2))


def test_an_inverted_field_is_refused(files):
    from alignprep.errors import InputError

    with pytest.raises(InputError, match="cannot be inverted"):
        files["store"].chain_map(Chain((files["field1"],), (True,)))


def test_field_voxels_of_the_wrong_shape_are_refused(files):
    header = files["h1"]
    step = fields.FieldStep(header, lambda: np.zeros((3, 2, 2, 2), np.float32), "bad")
    with pytest.raises(ValueError, match="expected"):
        ChainMap((step,)).apply(np.zeros((1, 3)))
