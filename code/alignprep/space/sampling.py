"""Volumes resampled through a transform chain, the way ``antsApplyTransforms`` resamples them.

For every voxel of an output grid: its physical point (``origin + D diag(s) idx``), mapped
through the chain (:class:`alignprep.space.fields.ChainMap`), then the moving image's continuous
index there (``(D diag(s))^-1 (p - origin)``); outside ``[-0.5, n - 0.5)`` on any axis the voxel
gets 0 (ITK's ``IsInsideBuffer``, ANTs's default value). Inside:

* ``linear``: ITK's LinearInterpolateImageFunction, nested linear interpolation along i, then j,
  then k, a neighbour past the last voxel clamped to it;
* ``label``: ANTs's ``genericLabel`` (ITK LabelImageGenericInterpolateImageFunction with linear
  interpolation): each label's indicator interpolated as above, the label with the largest value
  wins, a tie goes to the smallest label (ITK visits labels in increasing order and keeps the
  first maximum).

The chain is evaluated once per output voxel and every volume is sampled at the same point, brick
by brick (cubes of the output grid): memory holds one brick of points besides the volumes, and a
brick maps to a compact region of every displacement field, so only that region's pages of the
field's memory map are resident while the brick is computed (a slab of planes would touch every
page of a field whose fastest axis crosses the slab: ~1 GB per field at 25 um). Tests compare
each rule with ANTs itself (tests/unit/test_sampling.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numba
import numpy as np

from .fields import ChainMap, _split
from .frames import ImageHeader

Interpolation = Literal["linear", "label"]
# Voxels per brick edge (110592 points). The memory-mapped field pages a brick maps stay resident
# while it is computed, and the page cache's large folios make that more than the region itself.
# Measured at real size (the atlas part: CCF template and labels onto G, 2 threads): edge 64
# 10.9 s, +0.99 GB; 48: 13.2 s, +0.90 GB; 32: 16.0 s, +0.84 GB; a slab of planes: ~1 GB per field.
BRICK_EDGE = 48


@numba.njit(nogil=True, cache=True)
def _brick_points(origin, to_physical, lo, hi, out):  # pragma: no cover - compiled
    """Physical points of the grid voxels lo <= index < hi, i fastest (Fortran order)."""
    p = 0
    for k in range(lo[2], hi[2]):
        for j in range(lo[1], hi[1]):
            for i in range(lo[0], hi[0]):
                for r in range(3):
                    out[p, r] = origin[r] + (
                        to_physical[r, 0] * i + to_physical[r, 1] * j + to_physical[r, 2] * k
                    )
                p += 1


@numba.njit(nogil=True, cache=True)
def _continuous_index(point, origin, to_index, size, c):  # pragma: no cover - compiled
    """Continuous index of ``point`` in ``c``; False when outside [-0.5, n - 0.5)."""
    x0 = point[0] - origin[0]
    x1 = point[1] - origin[1]
    x2 = point[2] - origin[2]
    inside = True
    for a in range(3):
        c[a] = to_index[a, 0] * x0 + to_index[a, 1] * x1 + to_index[a, 2] * x2
        if not (c[a] >= -0.5 and c[a] < size[a] - 0.5):
            inside = False
    return inside


@numba.njit(nogil=True, cache=True)
def _corners(c, size, idx, dist):  # pragma: no cover - compiled
    """Lower / upper neighbour per axis (clamped) and the distances ITK interpolates with."""
    for a in range(3):
        b = int(np.floor(c[a]))
        if b < 0:
            b = 0
        d = c[a] - b
        if d < 0.0:  # below the first voxel centre: no interpolation along this axis
            d = 0.0
        idx[a, 0] = b
        idx[a, 1] = min(b + 1, size[a] - 1)
        dist[a] = d


@numba.njit(nogil=True, cache=True)
def _lerp3(v, dist):  # pragma: no cover - compiled
    """Nested interpolation of 8 corner values (index = i + 2 j + 4 k): i, then j, then k."""
    x00 = v[0] + (v[1] - v[0]) * dist[0]
    x10 = v[2] + (v[3] - v[2]) * dist[0]
    x01 = v[4] + (v[5] - v[4]) * dist[0]
    x11 = v[6] + (v[7] - v[6]) * dist[0]
    xy0 = x00 + (x10 - x00) * dist[1]
    xy1 = x01 + (x11 - x01) * dist[1]
    return xy0 + (xy1 - xy0) * dist[2]


@numba.njit(nogil=True, cache=True)
def _gather(volume, idx, out):  # pragma: no cover - compiled
    """The 8 corner values (index = i + 2 j + 4 k) at the neighbours ``idx``."""
    for corner in range(8):
        out[corner] = volume[
            idx[0, corner & 1], idx[1, (corner >> 1) & 1], idx[2, (corner >> 2) & 1]
        ]


@numba.njit(nogil=True, cache=True)
def _sample_linear(volume, points, origin, to_index, out, lo, hi):  # pragma: no cover
    """Linear samples; rounded half to even and clipped to [lo, hi] when ``lo < hi``."""
    size = (volume.shape[0], volume.shape[1], volume.shape[2])
    c = np.empty(3)
    idx = np.empty((3, 2), np.int64)
    dist = np.empty(3)
    v = np.empty(8)
    for p in range(points.shape[0]):
        if not _continuous_index(points[p], origin, to_index, size, c):
            out[p] = 0.0
            continue
        _corners(c, size, idx, dist)
        _gather(volume, idx, v)
        value = _lerp3(v, dist)
        if lo < hi:
            value = min(max(np.rint(value), lo), hi)
        out[p] = value


@numba.njit(nogil=True, cache=True)
def _sample_label(volume, points, origin, to_index, out, lo, hi):  # pragma: no cover
    """genericLabel samples (``lo`` and ``hi`` are unused: labels are copied)."""
    size = (volume.shape[0], volume.shape[1], volume.shape[2])
    c = np.empty(3)
    idx = np.empty((3, 2), np.int64)
    dist = np.empty(3)
    labels = np.empty(8, np.int64)
    v = np.empty(8)
    for p in range(points.shape[0]):
        if not _continuous_index(points[p], origin, to_index, size, c):
            out[p] = 0
            continue
        _corners(c, size, idx, dist)
        _gather(volume, idx, labels)
        if np.all(labels == labels[0]):
            out[p] = labels[0]
            continue
        best_label = 0
        best = 0.0
        for candidate in np.sort(labels):  # increasing, as ITK visits its label set
            for corner in range(8):
                v[corner] = 1.0 if labels[corner] == candidate else 0.0
            value = _lerp3(v, dist)
            if value > best:
                best = value
                best_label = candidate
        out[p] = best_label


@dataclass(frozen=True)
class Moving:
    """A volume to sample: ITK-ordered voxels (any memory layout), its header, how."""

    volume: np.ndarray
    header: ImageHeader
    interpolation: Interpolation
    dtype: np.dtype  # of the output: linear samples are rounded and clipped to an integer type

    @property
    def bounds(self) -> tuple[float, float]:
        """Clip range of an integer output (``(0, 0)``: a float output, stored as is)."""
        dtype = np.dtype(self.dtype)
        if self.interpolation == "linear" and dtype.kind in "iu":
            info = np.iinfo(dtype)
            return float(info.min), float(info.max)
        return 0.0, 0.0

    def __post_init__(self) -> None:
        if tuple(self.volume.shape) != tuple(self.header.size):
            raise ValueError(f"volume {self.volume.shape} vs header size {self.header.size}")


def resample(
    grid: ImageHeader, chain: ChainMap, moving: Sequence[Moving], threads: int = 1
) -> list[np.ndarray]:
    """Every ``moving`` volume sampled on ``grid`` through ``chain``: ITK-ordered (Fortran) arrays.

    Linear samples are computed in float64 and stored in each volume's output ``dtype`` (an
    integer type: rounded half to even and clipped, as :func:`.resample.to_dtype` does).
    """
    outs = [np.zeros(grid.size, dtype=m.dtype, order="F") for m in moving]
    to_physical = grid.direction * grid.spacing
    maps = [(np.linalg.inv(m.header.direction * m.header.spacing), m.header.origin) for m in moving]
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for lo, hi in bricks(grid.size, BRICK_EDGE):
            shape = tuple(int(b - a) for a, b in zip(lo, hi, strict=True))
            points = np.empty((int(np.prod(shape)), 3))
            _brick_points(grid.origin, to_physical, lo, hi, points)
            mapped = chain.apply(points, threads, pool)
            del points
            box = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
            for m, out, (to_index, origin) in zip(moving, outs, maps, strict=True):
                values = np.empty(len(mapped), dtype=m.dtype)
                _sample(pool, m, mapped, to_index, origin, values, threads)
                out[box] = values.reshape(shape, order="F")
            del mapped
    return outs


def warm_kernels() -> None:
    """Load one compiled kernel from numba's cache, so that this process has numba's compiler
    set up (~0.25 s the first time in a process; every other kernel then loads in ~5 ms).

    The pool's fork server calls it, so that its workers start with it done; it starts no
    thread, so forking afterwards is safe.
    """
    lo, hi = np.zeros(3, dtype=np.int64), np.ones(3, dtype=np.int64)
    _brick_points(np.zeros(3), np.eye(3), lo, hi, np.empty((1, 3)))


def bricks(size: Sequence[int], edge: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(lo, hi) index corners of the cubes of ``edge`` voxels that tile a grid, i fastest."""
    starts = [range(0, int(n), edge) for n in size]
    out = []
    for k in starts[2]:
        for j in starts[1]:
            for i in starts[0]:
                lo = np.array([i, j, k], dtype=np.int64)
                out.append((lo, np.minimum(lo + edge, np.asarray(size, dtype=np.int64))))
    return out


def _sample(
    pool: ThreadPoolExecutor,
    m: Moving,
    points: np.ndarray,
    to_index: np.ndarray,
    origin: np.ndarray,
    out: np.ndarray,
    threads: int,
) -> None:
    """Sample ``m`` at ``points`` into ``out``, the points split across threads."""
    kernel = _sample_label if m.interpolation == "label" else _sample_linear
    lo, hi = m.bounds

    def part(sl: slice) -> None:
        kernel(m.volume, points[sl], origin, to_index, out[sl], lo, hi)

    list(pool.map(part, _split(len(points), threads)))
