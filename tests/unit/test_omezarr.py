"""OME-Zarr multiscale metadata, level choice and lazy reads (inputs.md §4).

Pyramids are written with ``alignprep.synthetic.volumes.write_ome_zarr`` or by hand with zarr for
other axis layouts; the truth is the arrays and numbers written.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from alignprep.errors import InputError
from alignprep.inputs.omezarr import check_same_pyramid, read_multiscale
from alignprep.synthetic.volumes import downsample2, write_ome_zarr

BASE_UM_ZYX = np.array([2.0, 1.8, 1.8])  # (z, y, x) = ITK (1.8, 1.8, 2.0) um
SHAPE0 = (20, 36, 40)


def _shapes(shape0: tuple[int, int, int], n: int) -> list[tuple[int, int, int]]:
    return [tuple(int(np.ceil(s / 2**k)) for s in shape0) for k in range(n)]


def _pyramid(shape0: tuple[int, int, int], n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    levels = [rng.integers(0, 60000, shape0).astype(np.uint16)]
    for _ in range(n - 1):
        levels.append(downsample2(levels[-1]).astype(np.uint16))
    return levels


@pytest.fixture
def pyramid(tmp_path: Path) -> tuple[Path, list[np.ndarray]]:
    levels = _pyramid(SHAPE0, 5)
    path = tmp_path / "Ex_639_Em_667.zarr"
    write_ome_zarr(path, levels, _shapes(SHAPE0, 5), BASE_UM_ZYX, chunks=(8, 8, 8))
    return path, levels


def _edit_zattrs(path: Path, edit) -> None:
    attrs_path = path / ".zattrs"
    attrs = json.loads(attrs_path.read_text())
    edit(attrs["multiscales"][0])
    attrs_path.write_text(json.dumps(attrs))


def _write_custom(path: Path, axes: list[dict], levels_zyx: list[np.ndarray], base_um_zyx) -> None:
    """Multiscale with arbitrary axis order; non-spatial axes of size 2 (index 0 holds data)."""
    names = [a["name"].lower() for a in axes]
    spatial = [names.index(a) for a in "zyx"]
    root = zarr.open_group(str(path), mode="w")
    datasets = []
    for k, data in enumerate(levels_zyx):
        shape = [2] * len(names)
        for a, n in zip(spatial, data.shape, strict=True):
            shape[a] = n
        arr = root.create_dataset(str(k), shape=shape, chunks=shape, dtype="uint16")
        # place data at index 0 of non-spatial axes, zyx permuted into the array order
        order = sorted(range(3), key=lambda i: spatial[i])  # zyx axes sorted by array position
        index = [0] * len(names)
        for a in spatial:
            index[a] = slice(None)
        arr[tuple(index)] = np.transpose(data, order)
        index = [1 if a not in spatial else slice(None) for a in range(len(names))]
        arr[tuple(index)] = 7  # decoy at non-spatial index 1
        scale = [1.0] * len(names)
        for a, s in zip(spatial, np.asarray(base_um_zyx) * 2**k, strict=True):
            scale[a] = float(s)
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": scale}]})  # fmt: skip
    root.attrs["multiscales"] = [{"version": "0.4", "axes": axes, "datasets": datasets}]


SPACE = {"type": "space", "unit": "micrometer"}


# ----------------------------------------------------------------------------- metadata


def test_spacing_in_mm_and_shapes(pyramid):
    path, levels = pyramid
    ms = read_multiscale(path)
    assert ms.name == "Ex_639_Em_667"
    assert ms.axes == ("t", "c", "z", "y", "x")
    assert ms.spatial_axes == (2, 3, 4)
    assert ms.dtype == np.uint16
    assert len(ms.levels) == 5
    for k, lv in enumerate(ms.levels):
        assert lv.index == k
        assert lv.path == str(k)
        assert lv.shape_zyx == levels[k].shape
        assert lv.size == levels[k].shape[::-1]
        np.testing.assert_allclose(lv.spacing_mm_zyx, BASE_UM_ZYX * 2**k * 1e-3, rtol=1e-12)
        np.testing.assert_allclose(lv.spacing_mm, [0.0018 * 2**k, 0.0018 * 2**k, 0.002 * 2**k])
    np.testing.assert_allclose(ms.levels[3].spacing_mm, [0.0144, 0.0144, 0.016], rtol=1e-12)
    np.testing.assert_allclose(ms.levels[4].spacing_mm, [0.0288, 0.0288, 0.032], rtol=1e-12)


@pytest.mark.parametrize(("unit", "factor"), [("millimeter", 1.0), ("nanometer", 1e-6),
                                              ("um", 1e-3)])  # fmt: skip
def test_other_length_units(tmp_path: Path, unit: str, factor: float):
    path = tmp_path / "a.zarr"
    write_ome_zarr(path, [None] * 3, _shapes(SHAPE0, 3), BASE_UM_ZYX)

    def edit(ms):
        for ax in ms["axes"][2:]:
            ax["unit"] = unit

    _edit_zattrs(path, edit)
    np.testing.assert_allclose(
        read_multiscale(path).levels[1].spacing_mm_zyx, BASE_UM_ZYX * 2 * factor, rtol=1e-12
    )


def test_axes_identified_by_name_czyx(tmp_path: Path):
    levels = _pyramid((10, 12, 14), 3, seed=1)
    axes = [{"name": "c", "type": "channel"}, *({"name": a, **SPACE} for a in "zyx")]
    path = tmp_path / "czyx.zarr"
    _write_custom(path, axes, levels, BASE_UM_ZYX)
    ms = read_multiscale(path)
    assert ms.axes == ("c", "z", "y", "x")
    assert ms.spatial_axes == (1, 2, 3)
    np.testing.assert_allclose(ms.levels[2].spacing_mm_zyx, BASE_UM_ZYX * 4e-3, rtol=1e-12)
    for k in range(3):
        lazy = ms.read_level(ms.levels[k])
        assert lazy.shape == levels[k].shape
        np.testing.assert_array_equal(lazy[:, :, :], levels[k])


def test_axes_identified_by_name_permuted(tmp_path: Path):
    # spatial axes in x, z, y array order, with channel and time interleaved
    levels = _pyramid((10, 12, 14), 2, seed=2)
    axes = [
        {"name": "X", **SPACE},
        {"name": "c", "type": "channel"},
        {"name": "z", **SPACE},
        {"name": "t", "type": "time", "unit": "second"},
        {"name": "y", **SPACE},
    ]
    path = tmp_path / "perm.zarr"
    _write_custom(path, axes, levels, BASE_UM_ZYX)
    ms = read_multiscale(path)
    assert ms.spatial_axes == (2, 4, 0)
    assert ms.levels[0].shape_zyx == (10, 12, 14)
    np.testing.assert_allclose(ms.levels[0].spacing_mm_zyx, BASE_UM_ZYX * 1e-3, rtol=1e-12)
    lazy = ms.read_level(ms.levels[0])
    assert lazy.shape == (10, 12, 14)
    np.testing.assert_array_equal(lazy[:, :, :], levels[0])
    np.testing.assert_array_equal(lazy[2:5, 3:9, 1:4], levels[0][2:5, 3:9, 1:4])
    np.testing.assert_array_equal(lazy[4, 3:9, 1:4], levels[0][4, 3:9, 1:4])


def test_missing_spatial_axis(tmp_path: Path):
    path = tmp_path / "a.zarr"
    write_ome_zarr(path, [None] * 2, _shapes(SHAPE0, 2), BASE_UM_ZYX)
    _edit_zattrs(path, lambda ms: ms["axes"][4].update(name="w"))
    with pytest.raises(InputError, match="x"):
        read_multiscale(path)


def test_non_factor_two_pyramid(tmp_path: Path):
    path = tmp_path / "a.zarr"
    write_ome_zarr(path, [None] * 4, _shapes(SHAPE0, 4), BASE_UM_ZYX)

    def edit(ms):
        ms["datasets"][2]["coordinateTransformations"][0]["scale"][4] = 1.8 * 3  # x: 1.8, 3.6, 5.4

    _edit_zattrs(path, edit)
    with pytest.raises(InputError, match="factor 2") as err:
        read_multiscale(path)
    assert err.value.file == str(path / ".zattrs")
    assert "channel a, level 2" in str(err.value)


def test_shape_not_halved(tmp_path: Path):
    path = tmp_path / "a.zarr"
    shapes = _shapes(SHAPE0, 3)
    shapes[2] = (shapes[2][0], shapes[2][1] + 5, shapes[2][2])
    write_ome_zarr(path, [None] * 3, shapes, BASE_UM_ZYX)
    with pytest.raises(InputError, match="half"):
        read_multiscale(path)


@pytest.mark.parametrize("unit", ["second", "pixel", "inch"])
def test_non_length_unit(tmp_path: Path, unit: str):
    path = tmp_path / "a.zarr"
    write_ome_zarr(path, [None] * 2, _shapes(SHAPE0, 2), BASE_UM_ZYX)
    _edit_zattrs(path, lambda ms: ms["axes"][3].update(unit=unit))
    with pytest.raises(InputError, match=unit):
        read_multiscale(path)


def test_no_multiscales_and_no_zattrs(tmp_path: Path):
    path = tmp_path / "a.zarr"
    path.mkdir()
    with pytest.raises(InputError):
        read_multiscale(path)
    (path / ".zattrs").write_text(json.dumps({"foo": 1}))
    with pytest.raises(InputError, match="multiscales"):
        read_multiscale(path)


# ----------------------------------------------------------------------------- level choice


def test_choose_level_rule(tmp_path: Path):
    path = tmp_path / "a.zarr"
    write_ome_zarr(path, [None] * 5, _shapes((64, 64, 64), 5), BASE_UM_ZYX)
    ms = read_multiscale(path)
    assert ms.choose_level(35).index == 4  # 28.8 um
    assert ms.choose_level(25).index == 3  # 14.4 um
    assert ms.choose_level(14.5).index == 3
    assert ms.choose_level(14.3).index == 2  # 7.2 um
    assert ms.choose_level(1).index == 0  # none qualifies
    assert ms.choose_level(1000).index == 4


def test_choose_level_exact_spacing_qualifies(tmp_path: Path):
    # "scale_l <= desired": a level whose finest spacing equals the desired size qualifies, even
    # though the mm -> um round trip of 1.8 * 2**k is not exact in floating point.
    path = tmp_path / "a.zarr"
    write_ome_zarr(path, [None] * 5, _shapes((64, 64, 64), 5), BASE_UM_ZYX)
    ms = read_multiscale(path)
    for k, desired in enumerate([1.8, 3.6, 7.2, 14.4, 28.8]):
        assert ms.choose_level(desired).index == k, desired


# ----------------------------------------------------------------------------- reads


def test_read_level_values(pyramid):
    path, levels = pyramid
    ms = read_multiscale(path)
    for k in (0, 2, 4):
        lazy = ms.read_level(ms.levels[k])
        assert lazy.shape == levels[k].shape
        assert lazy.dtype == np.uint16
        np.testing.assert_array_equal(lazy[:, :, :], levels[k])
    lazy = ms.read_level(ms.levels[0])
    np.testing.assert_array_equal(lazy[3:11, 5:30, 9:17], levels[0][3:11, 5:30, 9:17])
    np.testing.assert_array_equal(lazy[3:11, 7, 9:17], levels[0][3:11, 7, 9:17])


def test_read_level_without_chunks_is_refused(tmp_path: Path):
    # zarr would return the fill value; the SmartSPIM pipeline writes every chunk (zarr_arrays)
    path = tmp_path / "a.zarr"
    write_ome_zarr(path, [None] * 2, _shapes(SHAPE0, 2), BASE_UM_ZYX)
    ms = read_multiscale(path)
    lazy = ms.read_level(ms.levels[1])
    assert lazy.shape == _shapes(SHAPE0, 2)[1]
    with pytest.raises(InputError, match="channel a, level 1: 1 chunk file"):
        lazy[:, :, :]


# ----------------------------------------------------------------------------- same pyramid


def test_check_same_pyramid(tmp_path: Path):
    shapes = _shapes(SHAPE0, 4)
    write_ome_zarr(tmp_path / "a.zarr", [None] * 4, shapes, BASE_UM_ZYX)
    write_ome_zarr(tmp_path / "b.zarr", [None] * 4, shapes, BASE_UM_ZYX)
    ref = read_multiscale(tmp_path / "a.zarr")
    check_same_pyramid(ref, read_multiscale(tmp_path / "b.zarr"))

    write_ome_zarr(tmp_path / "shape.zarr", [None] * 4, _shapes((20, 36, 42), 4), BASE_UM_ZYX)
    with pytest.raises(InputError) as err:
        check_same_pyramid(ref, read_multiscale(tmp_path / "shape.zarr"))
    assert err.value.file == str(tmp_path / "shape.zarr")

    write_ome_zarr(tmp_path / "spacing.zarr", [None] * 4, shapes, BASE_UM_ZYX * 1.1)
    with pytest.raises(InputError):
        check_same_pyramid(ref, read_multiscale(tmp_path / "spacing.zarr"))

    write_ome_zarr(tmp_path / "fewer.zarr", [None] * 3, shapes[:3], BASE_UM_ZYX)
    with pytest.raises(InputError, match="levels"):
        check_same_pyramid(ref, read_multiscale(tmp_path / "fewer.zarr"))
