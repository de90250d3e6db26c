"""Stored OME-Zarr arrays checked before use (issue 17): ``.zarray``, pyramid, chunks.

Two channels with data on every level are written by ``write_ome_zarr``; one is broken in one
way per test. Each test asserts the error names the channel, the level and the file, and that
what was not broken (the other channel, other levels, other chunks) still reads byte-identical
to the arrays written.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numcodecs
import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.inputs.omezarr import read_multiscale
from alignprep.synthetic.volumes import downsample2, write_ome_zarr

BASE_UM_ZYX = np.array([2.0, 1.8, 1.8])
SHAPE0 = (20, 36, 40)
N_LEVELS = 3
CHUNKS = (8, 8, 8)
BROKEN, OTHER = "Ex_639_Em_667", "Ex_488_Em_525"


def _pyramid(seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    levels = [rng.integers(1, 60000, SHAPE0).astype(np.uint16)]
    for _ in range(N_LEVELS - 1):
        levels.append(downsample2(levels[-1]).astype(np.uint16))
    return levels


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> tuple[Path, dict[str, list[np.ndarray]]]:
    root = tmp_path_factory.mktemp("zarr")
    truth = {BROKEN: _pyramid(1), OTHER: _pyramid(2)}
    for name, levels in truth.items():
        shapes = [lv.shape for lv in levels]
        write_ome_zarr(root / f"{name}.zarr", levels, shapes, BASE_UM_ZYX, chunks=CHUNKS)
    return root, truth


@pytest.fixture
def channels(pristine, tmp_path) -> tuple[Path, Path, dict[str, list[np.ndarray]]]:
    """Private copies: (broken channel path, other channel path, truth)."""
    root, truth = pristine
    for name in truth:
        shutil.copytree(root / f"{name}.zarr", tmp_path / f"{name}.zarr")
    return tmp_path / f"{BROKEN}.zarr", tmp_path / f"{OTHER}.zarr", truth


def _read_all(path: Path) -> list[np.ndarray]:
    ms = read_multiscale(path)
    return [ms.read_level(lv)[:, :, :] for lv in ms.levels]


def _assert_unaffected(other: Path, truth: dict[str, list[np.ndarray]]) -> None:
    for got, want in zip(_read_all(other), truth[OTHER], strict=True):
        assert got.dtype == want.dtype
        assert got.tobytes() == want.tobytes()


def _edit_zarray(path: Path, level: int, edit: Callable[[dict], None]) -> Path:
    meta_path = path / str(level) / ".zarray"
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    return meta_path


def _edit_zattrs(path: Path, edit: Callable[[dict], None]) -> Path:
    attrs_path = path / ".zattrs"
    attrs = json.loads(attrs_path.read_text())
    edit(attrs["multiscales"][0])
    attrs_path.write_text(json.dumps(attrs))
    return attrs_path


def _assert_names(err: pytest.ExceptionInfo, file: Path, level: int | None, *words: str) -> None:
    message = str(err.value)
    assert err.value.file == str(file)
    assert str(file) in message
    assert f"channel {BROKEN}" in message
    if level is not None:
        assert f"level {level}" in message
    for word in words:
        assert word in message, message


# ----------------------------------------------------------------------------- .zarray


def _set(key: str, value: object) -> Callable[[dict], None]:
    return lambda meta: meta.__setitem__(key, value)


def _drop(key: str) -> Callable[[dict], None]:
    return lambda meta: meta.pop(key)


ZARRAY_DEFECTS = {
    "dtype missing": (_drop("dtype"), "'dtype' is None; expected a numeric numpy dtype"),
    "dtype not numpy": (_set("dtype", "<q9"), "'dtype' is '<q9'"),
    "dtype object": (_set("dtype", "|O"), "'dtype' is '|O'"),
    "dtype structured": (_set("dtype", [["a", "<u2"]]), "expected a numeric numpy dtype"),
    "dtype differs between levels": (_set("dtype", "<u4"), "differs from level 0"),
    "shape missing": (_drop("shape"), "'shape' is None"),
    "shape too short": (_set("shape", [1, 10, 18, 20]), "a list of 5 positive integers"),
    "shape with zero": (_set("shape", [1, 1, 0, 18, 20]), "'shape' is [1, 1, 0, 18, 20]"),
    "shape not integers": (_set("shape", [1, 1, 10.0, 18, 20]), "'shape'"),
    "chunks missing": (_drop("chunks"), "'chunks' is None"),
    "chunks with zero": (_set("chunks", [1, 1, 8, 0, 8]), "'chunks' is [1, 1, 8, 0, 8]"),
    "compressor key missing": (_drop("compressor"), "the key is missing"),
    "compressor unknown": (_set("compressor", {"id": "nope"}), "not a codec numcodecs"),
    "compressor bad parameter": (
        _set("compressor", {"id": "blosc", "cname": "lz4", "speed": 3}),
        "not a codec numcodecs",
    ),
    "compressor without id": (_set("compressor", {"cname": "lz4"}), "with an 'id'"),
    "filters unknown": (_set("filters", [{"id": "nope"}]), "'filters[0]'"),
    "filters not a list": (_set("filters", {"id": "delta"}), "null or a list"),
    "order": (_set("order", "X"), "'order' is 'X'; expected 'C' or 'F'"),
    "zarr v3": (_set("zarr_format", 3), "expected 2 (zarr v2)"),
    "fill value out of range": (_set("fill_value", 70000), "fits uint16"),
    "separator": (_set("dimension_separator", "-"), "'dimension_separator'"),
}


@pytest.mark.parametrize("defect", list(ZARRAY_DEFECTS))
def test_zarray_defect_names_channel_level_file(channels, defect):
    broken, other, truth = channels
    edit, words = ZARRAY_DEFECTS[defect]
    meta_path = _edit_zarray(broken, 1, edit)
    with pytest.raises(InputError) as err:
        read_multiscale(broken)
    _assert_names(err, meta_path, 1, words)
    _assert_unaffected(other, truth)


def test_missing_zarray(channels):
    broken, other, truth = channels
    (broken / "2" / ".zarray").unlink()
    with pytest.raises(InputError) as err:
        read_multiscale(broken)
    _assert_names(err, broken / "2" / ".zarray", 2, "file not found")
    _assert_unaffected(other, truth)


def test_level_shape_off_the_pyramid(channels):
    broken, other, truth = channels
    # non-spatial axis c grows on level 2: the spatial sizes still halve
    meta_path = _edit_zarray(broken, 2, _set("shape", [1, 2, 5, 9, 10]))
    with pytest.raises(InputError) as err:
        read_multiscale(broken)
    _assert_names(err, meta_path, 2, "does not follow the pyramid", "other axes unchanged")
    # a spatial size that is not half
    _edit_zarray(broken, 2, _set("shape", [1, 1, 5, 12, 10]))
    with pytest.raises(InputError) as err:
        read_multiscale(broken)
    _assert_names(err, meta_path, 2, "z, y, x ~ [5, 9, 10]")
    _assert_unaffected(other, truth)


# ----------------------------------------------------------------------------- .zattrs


ZATTRS_DEFECTS = {
    "axis without name": (
        lambda ms: ms["axes"][3].pop("name"),
        None,
        "axes[3]",
    ),
    "axis with empty name": (lambda ms: ms["axes"][2].update(name=" "), None, "has no name"),
    "spatial axis typed channel": (
        lambda ms: ms["axes"][4].update(type="channel"),
        None,
        "expected 'space' for x, y and z",
    ),
    "repeated axis": (lambda ms: ms["axes"][0].update(name="c"), None, "repeat ['c']"),
    "zero scale": (
        lambda ms: ms["datasets"][1]["coordinateTransformations"][0].update(
            scale=[1, 1, 0, 3.6, 3.6]
        ),
        1,
        "expected 5 positive numbers",
    ),
    "path outside the zarr": (
        lambda ms: ms["datasets"][2].update(path="../elsewhere"),
        2,
        "a relative path inside the zarr folder",
    ),
}


@pytest.mark.parametrize("defect", list(ZATTRS_DEFECTS))
def test_zattrs_defect_names_channel_and_file(channels, defect):
    broken, other, truth = channels
    edit, level, words = ZATTRS_DEFECTS[defect]
    attrs_path = _edit_zattrs(broken, edit)
    with pytest.raises(InputError) as err:
        read_multiscale(broken)
    _assert_names(err, attrs_path, level, words)
    _assert_unaffected(other, truth)


# ----------------------------------------------------------------------------- chunks


def _level_reader(path: Path, level: int):
    ms = read_multiscale(path)
    return ms.read_level(ms.levels[level])


def _assert_intact(path: Path, truth, levels: list[int], region=None, level=None) -> None:
    """Whole ``levels`` of the broken channel, and ``region`` of ``level``, still read exact."""
    for k in levels:
        got = _level_reader(path, k)[:, :, :]
        assert got.tobytes() == truth[BROKEN][k].tobytes()
    if region is not None:
        got = _level_reader(path, level)[region]
        assert got.tobytes() == truth[BROKEN][level][region].tobytes()


AWAY = (slice(8, 20), slice(8, 36), slice(8, 40))  # skips chunk (0, 0, 0) of level 0
CHUNK0 = Path("0") / "0" / "0" / "0" / "0"  # (t, c, z, y, x) chunk numbers


def _chunk(path: Path, level: int = 0) -> Path:
    return path / str(level) / CHUNK0


def test_missing_chunk(channels):
    broken, other, truth = channels
    _chunk(broken).unlink()
    lazy = _level_reader(broken, 0)
    with pytest.raises(InputError) as err:
        lazy[:, :, :]
    _assert_names(err, _chunk(broken), 0, "1 chunk file(s) missing", "fill value 0")
    _assert_intact(broken, truth, [1, 2], AWAY, 0)
    _assert_unaffected(other, truth)


def test_truncated_chunk(channels):
    broken, other, truth = channels
    data = _chunk(broken).read_bytes()
    _chunk(broken).write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        _level_reader(broken, 0)[0:4, 0:4, 0:4]
    _assert_names(err, _chunk(broken), 0, "truncated?")
    _assert_intact(broken, truth, [1, 2], AWAY, 0)
    _assert_unaffected(other, truth)


def test_dtype_contradicted_by_the_blosc_header(channels):
    # .zarray claims uint8 with twice as many x per chunk: the same bytes would be silently
    # reinterpreted; the Blosc header records 2-byte items
    broken, other, truth = channels
    for k in range(N_LEVELS):
        _edit_zarray(broken, k, lambda m: m.update(dtype="|u1", chunks=[1, 1, 8, 8, 16]))
    lazy = _level_reader(broken, 0)
    with pytest.raises(InputError) as err:
        lazy[0:4, 0:4, 0:4]
    _assert_names(err, _chunk(broken), 0, "type size 2 bytes", "dtype |u1 (1 bytes)")
    _assert_unaffected(other, truth)


def test_chunk_shape_contradicted_by_the_blosc_header(channels):
    broken, other, truth = channels
    _edit_zarray(broken, 1, _set("chunks", [1, 1, 8, 8, 4]))
    with pytest.raises(InputError) as err:
        _level_reader(broken, 1)[:, :, :]
    _assert_names(err, _chunk(broken, 1), 1, "1024 uncompressed bytes (512 expected)")
    _assert_intact(broken, truth, [0, 2])
    _assert_unaffected(other, truth)


def test_compressor_null_but_chunks_compressed(channels):
    broken, other, truth = channels
    _edit_zarray(broken, 0, _set("compressor", None))
    with pytest.raises(InputError) as err:
        _level_reader(broken, 0)[0:2, 0:2, 0:2]
    _assert_names(err, _chunk(broken), 0, "uncompressed chunk holds", "1024")
    _assert_unaffected(other, truth)


def test_chunk_that_fails_to_decode(channels):
    # .zarray says zstd; the chunks are Blosc: zstd cannot decode them
    broken, other, truth = channels
    _edit_zarray(broken, 0, _set("compressor", {"id": "zstd", "level": 1}))
    lazy = _level_reader(broken, 0)
    with pytest.raises(InputError) as err:
        lazy[0:4, 0:4, 0:4]
    _assert_names(err, _chunk(broken), 0, "chunk 0/0/0/0/0 cannot be decoded", "zstd")
    _assert_intact(broken, truth, [1, 2])
    _assert_unaffected(other, truth)


def test_corrupt_zstd_chunk_is_named(channels):
    # a zstd array (no header to compare) with one chunk cut short: the decode error
    # names exactly that chunk, and the other chunks of the level still read exact
    broken, other, truth = channels
    codec = numcodecs.Zstd(level=1)
    level_dir = broken / "0"
    for chunk in [p for p in level_dir.rglob("*") if p.is_file() and p.name != ".zarray"]:
        raw = numcodecs.Blosc().decode(chunk.read_bytes())
        chunk.write_bytes(codec.encode(raw))
    _edit_zarray(broken, 0, _set("compressor", codec.get_config()))
    bad = level_dir / "0" / "0" / "1" / "2" / "3"
    bad.write_bytes(bad.read_bytes()[:-100])  # a cut frame (no header to compare for zstd)
    lazy = _level_reader(broken, 0)
    with pytest.raises(InputError) as err:
        lazy[:, :, :]
    _assert_names(err, bad, 0, "chunk 0/0/1/2/3 cannot be decoded")
    assert lazy[0:8, :, :].tobytes() == truth[BROKEN][0][0:8].tobytes()  # other chunks
    _assert_intact(broken, truth, [1, 2])
    _assert_unaffected(other, truth)
