"""ANTs transform chains evaluated in numpy/numba with ITK's exact rules, on any points.

ITK semantics, as ``antsApplyTransforms`` / ``ants.apply_transforms_to_points`` apply them in
double precision (tests/unit/test_fields.py compares every rule with ANTs itself):

* an affine ``.mat`` (MatrixOffsetTransform) maps ``y = A x + o`` with ``o = t + c - A c``; its
  inverse (``[affine, 1]``) is ``x = A^-1 y - A^-1 o``;
* a displacement field maps ``y = x + u(x)``: ``u`` is interpolated linearly in the field's
  continuous index (the 8 neighbours, weights multiplied axis by axis, summed neighbour by
  neighbour as ITK's VectorLinearInterpolateImageFunction does; a neighbour past the last voxel
  is clamped to it), and ``u = 0`` where the continuous index lies outside
  ``[-0.5, n - 0.5)`` on any axis (ITK's ``IsInsideBuffer``);
* a chain maps points through its steps in list order (element 0 first).

A field's voxels are a ``(3, nk, nj, ni)`` float32 array (component, then ITK k, j, i: the
NIfTI ``(i, j, k, 1, 3)`` Fortran layout read as C order), typically a read-only memory map of
the decoded field (:mod:`alignprep.inputs.field_store`), so that only the pages a set of points
needs are touched. Kernels are numba functions that release the GIL; large point sets are split
across threads, so the results do not depend on the thread count.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import numba
import numpy as np

from .frames import ImageHeader

MIN_POINTS_PER_THREAD = 1 << 13  # below this, threads cost more than they save


@numba.njit(nogil=True, cache=True, fastmath=False)
def _displace(points, field, to_index, origin, out):  # pragma: no cover - compiled
    """``out = points + u(points)`` (ITK DisplacementFieldTransform, linear, 0 outside)."""
    nk, nj, ni = field.shape[1], field.shape[2], field.shape[3]
    size = (ni, nj, nk)
    for p in range(points.shape[0]):
        x0 = points[p, 0] - origin[0]
        x1 = points[p, 1] - origin[1]
        x2 = points[p, 2] - origin[2]
        c = (
            to_index[0, 0] * x0 + to_index[0, 1] * x1 + to_index[0, 2] * x2,
            to_index[1, 0] * x0 + to_index[1, 1] * x1 + to_index[1, 2] * x2,
            to_index[2, 0] * x0 + to_index[2, 1] * x1 + to_index[2, 2] * x2,
        )
        inside = True
        for a in range(3):
            if not (c[a] >= -0.5 and c[a] < size[a] - 0.5):  # NaN is outside too
                inside = False
        out[p, 0] = points[p, 0]
        out[p, 1] = points[p, 1]
        out[p, 2] = points[p, 2]
        if not inside:
            continue
        b0 = int(np.floor(c[0]))
        b1 = int(np.floor(c[1]))
        b2 = int(np.floor(c[2]))
        d0 = c[0] - b0
        d1 = c[1] - b1
        d2 = c[2] - b2
        u0 = 0.0
        u1 = 0.0
        u2 = 0.0
        total = 0.0
        for corner in range(8):
            w = 1.0
            if corner & 1:
                i = min(b0 + 1, ni - 1)
                w *= d0
            else:
                i = max(b0, 0)
                w *= 1.0 - d0
            if corner & 2:
                j = min(b1 + 1, nj - 1)
                w *= d1
            else:
                j = max(b1, 0)
                w *= 1.0 - d1
            if corner & 4:
                k = min(b2 + 1, nk - 1)
                w *= d2
            else:
                k = max(b2, 0)
                w *= 1.0 - d2
            if w != 0.0:
                u0 += w * field[0, k, j, i]
                u1 += w * field[1, k, j, i]
                u2 += w * field[2, k, j, i]
                total += w
            if total == 1.0:  # ITK stops once the weights sum to one
                break
        out[p, 0] += u0
        out[p, 1] += u1
        out[p, 2] += u2


@numba.njit(nogil=True, cache=True)
def _affine(points, matrix, offset, out):  # pragma: no cover - compiled
    """``out = matrix @ points + offset`` row by row (ITK's loop order)."""
    for p in range(points.shape[0]):
        x0, x1, x2 = points[p, 0], points[p, 1], points[p, 2]
        for r in range(3):
            out[p, r] = matrix[r, 0] * x0 + matrix[r, 1] * x1 + matrix[r, 2] * x2 + offset[r]


@dataclass(frozen=True)
class AffineStep:
    """``y = matrix @ x + offset`` (LPS mm)."""

    matrix: np.ndarray
    offset: np.ndarray

    @classmethod
    def from_itk(
        cls, matrix: np.ndarray, translation: np.ndarray, center: np.ndarray, invert: bool
    ) -> AffineStep:
        """An ITK matrix-offset transform ``y = A (x - c) + t + c``, or its inverse."""
        a = np.asarray(matrix, dtype=float)
        c = np.asarray(center, dtype=float)
        offset = np.asarray(translation, dtype=float) + c - a @ c
        if not invert:
            return cls(a, offset)
        inverse = np.linalg.inv(a)
        return cls(inverse, -(inverse @ offset))

    def apply(self, points: np.ndarray, out: np.ndarray) -> None:
        """Map ``points`` into ``out`` (both (n, 3) float64; may be the same array)."""
        _affine(points, self.matrix, self.offset, out)


@dataclass(frozen=True)
class FieldStep:
    """A displacement field on ``header``'s grid; ``open`` returns its (3, nk, nj, ni) voxels.

    ``open`` is called once per :meth:`ChainMap.apply`, so a memory map is released (and its
    pages leave this process's resident memory) between calls.
    """

    header: ImageHeader
    open: Callable[[], np.ndarray]
    name: str = ""

    @property
    def to_index(self) -> np.ndarray:
        """Physical (LPS mm, minus the origin) -> continuous index matrix."""
        return np.linalg.inv(self.header.direction * self.header.spacing)

    def apply(self, points: np.ndarray, out: np.ndarray, field: np.ndarray) -> None:
        """Displace ``points`` into ``out`` using the opened voxels ``field``."""
        if field.shape != (3, *self.header.size[::-1]) or field.dtype != np.float32:
            raise ValueError(
                f"{self.name}: voxels {field.shape} {field.dtype}, expected "
                f"(3, {', '.join(map(str, self.header.size[::-1]))}) float32"
            )
        _displace(points, field, self.to_index, self.header.origin, out)


Step = AffineStep | FieldStep


@dataclass(frozen=True)
class ChainMap:
    """Steps applied in list order (element 0 first), as ANTs applies a transform list."""

    steps: tuple[Step, ...]

    def apply(
        self, points_lps_mm: np.ndarray, threads: int = 1, pool: ThreadPoolExecutor | None = None
    ) -> np.ndarray:
        """Map (n, 3) LPS mm points through every step; a new float64 (n, 3) array.

        Large point sets are split across ``threads`` (on ``pool`` when given, else on threads
        started for this call).
        """
        pts = np.array(np.atleast_2d(points_lps_mm), dtype=np.float64, order="C")
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise ValueError(f"points must be (n, 3), got {pts.shape}")
        # opened per call: memory maps close (their pages leave this process) when it returns
        voxels = [s.open() if isinstance(s, FieldStep) else None for s in self.steps]
        parts = _split(len(pts), threads)
        if len(parts) == 1:
            self._run(pts, voxels)
        elif pool is not None:
            list(pool.map(lambda sl: self._run(pts[sl], voxels), parts))
        else:
            with ThreadPoolExecutor(len(parts)) as own:
                list(own.map(lambda sl: self._run(pts[sl], voxels), parts))
        return pts

    def _run(self, pts: np.ndarray, fields: Sequence[np.ndarray | None]) -> None:
        for step, field in zip(self.steps, fields, strict=True):
            if isinstance(step, FieldStep):
                step.apply(pts, pts, field)
            else:
                step.apply(pts, pts)


def _split(n: int, threads: int) -> list[slice]:
    """Contiguous parts of ``range(n)``, one per thread (one part when ``n`` is small)."""
    k = max(1, min(int(threads), n // MIN_POINTS_PER_THREAD))
    bounds = np.linspace(0, n, k + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in pairwise(bounds)]
