"""Zarr v2 arrays checked before they are read: ``.zarray`` metadata and chunk files.

zarr trusts ``.zarray`` and reads a missing chunk as the fill value, so a wrong dtype or chunk
shape, an unknown codec or an incomplete copy would change the voxels silently. Here:
* :func:`read_zarray` validates ``zarr_format``, ``shape``, ``chunks``, ``dtype``,
  ``compressor``, ``filters``, ``order``, ``fill_value`` and ``dimension_separator``;
* :func:`check_chunks` checks the chunk files a read touches: each must exist (the SmartSPIM
  pipeline writes every chunk, so a missing one means an incomplete asset, not background), and
  where the stored bytes say what they hold (Blosc header, or no compressor) the type size and
  byte count must agree with ``dtype`` and ``chunks``;
* :func:`decode_error` names the chunk file that fails to decode.
Every error names the channel, the level and the file (``where`` is "channel X, level k").
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .locate import read_json_object

BLOSC_HEADER_BYTES = 16  # c-blosc: version, versionlz, flags, typesize, nbytes, blocksize, cbytes
MAX_LISTED = 5


@dataclass(frozen=True)
class ZarrArray:
    """A validated zarr v2 array: its folder and ``.zarray`` fields."""

    path: Path
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: np.dtype
    compressor: dict[str, Any] | None
    filters: tuple[dict[str, Any], ...]
    separator: str
    fill_value: Any

    @property
    def chunk_nbytes(self) -> int:
        """Bytes of one decoded chunk (zarr v2 stores edge chunks at full size)."""
        return math.prod(self.chunks) * self.dtype.itemsize

    def chunk_path(self, index: tuple[int, ...]) -> Path:
        """The file of chunk ``index`` (per-axis chunk numbers)."""
        return self.path / self.separator.join(str(i) for i in index)

    def chunks_touched(self, selection: tuple[Any, ...]) -> list[tuple[int, ...]]:
        """Chunk indices a basic selection (ints and slices, one per axis) reads."""
        per_axis = []
        for sel, n, c in zip(selection, self.shape, self.chunks, strict=True):
            if isinstance(sel, slice):
                positions = np.arange(*sel.indices(n))
            else:
                positions = np.array([int(sel) + n if int(sel) < 0 else int(sel)])
            per_axis.append(np.unique(positions // c).tolist())
        return list(itertools.product(*per_axis))

    def chunk_region(self, index: tuple[int, ...]) -> tuple[slice, ...]:
        """The array region chunk ``index`` covers (clipped at the array edge)."""
        return tuple(
            slice(i * c, min((i + 1) * c, n))
            for i, c, n in zip(index, self.chunks, self.shape, strict=True)
        )


def read_zarray(path: Path, where: str, ndim: int) -> ZarrArray:
    """Validate ``<path>/.zarray`` for an array of ``ndim`` axes; InputError naming the file."""
    meta_path = Path(path) / ".zarray"
    try:
        meta = read_json_object(meta_path)
    except InputError as exc:
        raise InputError(f"{where}: {exc.message}", file=meta_path) from None

    def fail(key: str, found: Any, expected: str) -> InputError:
        return InputError(
            f"{where}: .zarray {key!r} is {found!r}; expected {expected}", file=meta_path
        )

    if meta.get("zarr_format") != 2:
        raise fail("zarr_format", meta.get("zarr_format"), "2 (zarr v2)")
    shape, chunks = (_positive_ints(meta.get(k), ndim) for k in ("shape", "chunks"))
    if shape is None:
        raise fail("shape", meta.get("shape"), f"a list of {ndim} positive integers (one per axis)")
    if chunks is None:
        raise fail(
            "chunks", meta.get("chunks"), f"a list of {ndim} positive integers (one per axis)"
        )
    dtype = _numeric_dtype(meta.get("dtype"))
    if dtype is None:
        raise fail("dtype", meta.get("dtype"), "a numeric numpy dtype string such as '<u2'")
    if meta.get("order") not in ("C", "F"):
        raise fail("order", meta.get("order"), "'C' or 'F'")
    separator = meta.get("dimension_separator", ".")
    if separator not in (".", "/"):
        raise fail("dimension_separator", separator, "'.' or '/'")
    if "compressor" not in meta:
        raise fail("compressor", None, "a numcodecs codec object or null (the key is missing)")
    compressor = meta["compressor"]
    if compressor is not None:
        _check_codec(compressor, "compressor", where, meta_path)
    filters = meta.get("filters")
    if filters is not None and not isinstance(filters, list):
        raise fail("filters", filters, "null or a list of numcodecs codec objects")
    for k, codec in enumerate(filters or []):
        _check_codec(codec, f"filters[{k}]", where, meta_path)
    if "fill_value" not in meta:
        raise fail("fill_value", None, "a number or null (the key is missing)")
    fill = meta["fill_value"]
    if not _fill_ok(fill, dtype):
        raise fail("fill_value", fill, f"null or a number that fits {dtype}")
    return ZarrArray(
        Path(path), shape, chunks, dtype, compressor, tuple(filters or ()), separator, fill
    )


def _positive_ints(value: Any, n: int) -> tuple[int, ...] | None:
    if not isinstance(value, list) or len(value) != n:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        return None
    return tuple(value)


def _numeric_dtype(value: Any) -> np.dtype | None:
    if not isinstance(value, str):
        return None  # a list is a structured dtype
    try:
        dtype = np.dtype(value)
    except TypeError:
        return None
    return dtype if dtype.kind in "iuf" else None


def _fill_ok(fill: Any, dtype: np.dtype) -> bool:
    if fill is None:
        return True
    if dtype.kind == "f":
        return fill in ("NaN", "Infinity", "-Infinity") or (
            isinstance(fill, int | float) and not isinstance(fill, bool)
        )
    if not isinstance(fill, int) or isinstance(fill, bool):
        return False
    info = np.iinfo(dtype)
    return info.min <= fill <= info.max


def _check_codec(config: Any, key: str, where: str, meta_path: Path) -> None:
    """numcodecs must know the codec and accept its parameters."""
    import numcodecs

    if not isinstance(config, dict) or not isinstance(config.get("id"), str):
        raise InputError(
            f"{where}: .zarray {key!r} is {config!r}; expected a codec object with an 'id'",
            file=meta_path,
        )
    try:
        numcodecs.get_codec(dict(config))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(
            f"{where}: .zarray {key!r} {config!r} is not a codec numcodecs "
            f"{numcodecs.__version__} can build ({exc}); expected a known codec such as blosc, "
            "zstd, gzip or null",
            file=meta_path,
        ) from None


def check_chunks(array: ZarrArray, indices: Iterable[tuple[int, ...]], where: str) -> None:
    """Every chunk file exists and agrees with ``dtype`` / ``chunks`` where its bytes tell."""
    missing = []
    for index in indices:
        path = array.chunk_path(index)
        if not path.is_file():
            missing.append(path)
            continue
        if not array.filters:  # filters change what the compressor sees
            _check_chunk_bytes(array, path, where)
    if missing:
        shown = ", ".join(str(p.relative_to(array.path)) for p in missing[:MAX_LISTED])
        more = ", ..." if len(missing) > MAX_LISTED else ""
        raise InputError(
            f"{where}: {len(missing)} chunk file(s) missing ({shown}{more}); zarr would read them "
            f"as the fill value {array.fill_value!r}. Expected every chunk: the SmartSPIM "
            "pipeline writes them all, so the asset is incomplete (re-copy it)",
            file=missing[0],
        )


def _check_chunk_bytes(array: ZarrArray, path: Path, where: str) -> None:
    size = path.stat().st_size
    codec = (array.compressor or {}).get("id")
    expected = f"dtype {array.dtype.str} ({array.dtype.itemsize} bytes), chunks {array.chunks}"
    if array.compressor is None:
        if size != array.chunk_nbytes:
            raise InputError(
                f"{where}: uncompressed chunk holds {size} bytes; .zarray says "
                f"{array.chunk_nbytes} ({expected})",
                file=path,
            )
        return
    if codec != "blosc":
        return  # no header to compare; decoding checks the size
    with path.open("rb") as fh:
        head = fh.read(BLOSC_HEADER_BYTES)
    if len(head) < BLOSC_HEADER_BYTES:
        raise InputError(
            f"{where}: chunk has {len(head)} bytes, shorter than a Blosc header; expected a Blosc "
            "chunk as .zarray's compressor says",
            file=path,
        )
    typesize = head[3]
    nbytes, _, cbytes = struct.unpack("<III", head[4:16])
    problems = []
    if array.dtype.itemsize <= 255 and typesize != array.dtype.itemsize:
        problems.append(f"type size {typesize} bytes")
    if nbytes != array.chunk_nbytes:
        problems.append(f"{nbytes} uncompressed bytes ({array.chunk_nbytes} expected)")
    if cbytes != size:
        problems.append(f"{cbytes} compressed bytes but the file has {size} (truncated?)")
    if problems:
        raise InputError(
            f"{where}: the chunk's Blosc header says {', '.join(problems)}; .zarray says "
            f"{expected}",
            file=path,
        )


def decode_error(
    array: ZarrArray, zarr_array: Any, indices: list[tuple[int, ...]], where: str, exc: Exception
) -> InputError:
    """An InputError naming the first of ``indices`` whose chunk fails to decode."""
    codec = (array.compressor or {}).get("id", "no compressor")
    for index in indices:
        try:
            zarr_array[array.chunk_region(index)]
        except MemoryError:
            raise
        except Exception as chunk_exc:  # any codec / reshape failure of this one chunk
            return InputError(
                f"{where}: chunk {'/'.join(map(str, index))} cannot be decoded as .zarray says "
                f"({codec}, dtype {array.dtype.str}, chunks {array.chunks}): {chunk_exc}",
                file=array.chunk_path(index),
            )
    return InputError(f"{where}: reading failed: {exc}", file=array.path)
