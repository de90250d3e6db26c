"""What a registration's images say about its transforms (numpy only, no ANTs).

* the fixed image's foreground: sample points in it, and the box a warp must cover;
* rank similarity of the fixed image with the moving image sampled through candidate maps, with
  bootstrap standard errors so that decisions are relative and significant, never absolute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..space.frames import ImageHeader

FOREGROUND_FRACTION = 0.1  # foreground: above this fraction of the 99th percentile
INTERIOR_MARGIN_VOXELS = 2.0  # sample points keep away from a warp's border voxels


@dataclass(frozen=True)
class ImageSource:
    """An image the check may read: what it is (for messages) and how to load it."""

    name: str  # e.g. "LCA template"
    description: str  # name and where it is read from
    load: Callable[[], tuple[np.ndarray, ImageHeader]]  # array in ITK (i, j, k) order
    sources: tuple[Path, ...] = ()  # the files/folders whose content is the image
    geometry: str = ""  # the header given to it by metadata outside ``sources``, if any


@dataclass(frozen=True)
class Foreground:
    """The bright part of an image: a threshold and its voxel bounding box (ITK index)."""

    threshold: float
    lo: np.ndarray
    hi: np.ndarray

    def corners(self) -> np.ndarray:
        """The 8 corners of the bounding box (ITK index)."""
        lo, hi = self.lo, self.hi
        return np.array(
            [[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])]
        )


def foreground(array: np.ndarray, rng: np.random.Generator) -> Foreground | None:
    """Voxels above 10 % of the 99th percentile (estimated on 10^6 voxels); None if none."""
    flat_n = array.size
    picks = rng.integers(0, flat_n, min(flat_n, 1_000_000))
    values = array[np.unravel_index(picks, array.shape)]
    threshold = FOREGROUND_FRACTION * float(np.percentile(values, 99))
    if threshold <= 0:
        return None
    mask = array > threshold
    bounds = []
    for axis in range(3):
        other = tuple(a for a in range(3) if a != axis)
        hits = np.flatnonzero(mask.any(axis=other))
        if hits.size == 0:
            return None
        bounds.append((hits[0], hits[-1]))
    del mask
    lo, hi = np.array(bounds, dtype=float).T
    return Foreground(threshold, lo, hi)


def uncovered_voxels(fg: Foreground, fixed: ImageHeader, grid: ImageHeader) -> float:
    """How far (in ``grid`` voxels) the fixed foreground box reaches outside ``grid``."""
    idx = grid.physical_to_index(fixed.index_to_physical(fg.corners()))
    below = -idx
    above = idx - (np.asarray(grid.size) - 1)
    return float(max(0.0, below.max(), above.max()))


def sample_points(
    array: np.ndarray | None,
    header: ImageHeader | None,
    fg: Foreground | None,
    grid: ImageHeader,
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Up to ``n`` distinct points (LPS mm) inside ``grid``'s interior; with a fixed image, its
    foreground voxel centres and their values, else uniform points of the grid (values None)."""
    size = np.asarray(grid.size, dtype=float)
    lo_idx = np.full(3, INTERIOR_MARGIN_VOXELS)
    hi_idx = size - 1 - INTERIOR_MARGIN_VOXELS
    if array is None or header is None or fg is None:
        if np.any(hi_idx <= lo_idx):
            return np.empty((0, 3)), None
        return grid.index_to_physical(rng.uniform(lo_idx, hi_idx, (n, 3))), None
    shape = array.shape
    accepted = np.empty(0, dtype=np.int64)
    for _ in range(50):
        flat = rng.integers(0, array.size, 4 * n)
        ijk = np.stack(np.unravel_index(flat, shape), axis=1)
        keep = array[tuple(ijk.T)] > fg.threshold
        gidx = grid.physical_to_index(header.index_to_physical(ijk[keep]))
        inside = np.all((gidx >= lo_idx) & (gidx <= hi_idx), axis=1)
        accepted = np.concatenate([accepted, flat[keep][inside]])
        _, first = np.unique(accepted, return_index=True)
        if len(first) >= n:
            break
    chosen = accepted[np.sort(first)][:n] if accepted.size else accepted
    if chosen.size == 0:
        return np.empty((0, 3)), np.empty(0)
    ijk = np.stack(np.unravel_index(chosen, shape), axis=1)
    return header.index_to_physical(ijk), array[tuple(ijk.T)].astype(float)


def sample_image(array: np.ndarray, header: ImageHeader, points_lps_mm: np.ndarray) -> np.ndarray:
    """Trilinear samples at LPS points (0 outside the image, as ANTs resampling does)."""
    from scipy.ndimage import map_coordinates

    idx = header.physical_to_index(points_lps_mm).T
    return map_coordinates(array, idx, order=1, mode="constant", cval=0.0, output=np.float64)


@dataclass(frozen=True)
class Similarity:
    """Rank correlations of the fixed values with each candidate, and paired differences."""

    n_points: int
    corr: dict[str, float]
    se: dict[tuple[str, str], float]  # bootstrap SE of corr[a] - corr[b]

    def difference(self, a: str, b: str) -> tuple[float, float]:
        """``corr[a] - corr[b]`` and its standard error."""
        return self.corr[a] - self.corr[b], self.se[(a, b)]

    def significant(self, a: str, b: str, sigmas: float, min_difference: float) -> int:
        """+1 if a beats b significantly, -1 if b beats a, 0 if they cannot be told apart."""
        d, se = self.difference(a, b)
        if abs(d) <= max(sigmas * se, min_difference):
            return 0
        return 1 if d > 0 else -1


def rank_similarity(
    fixed_values: np.ndarray,
    candidates: dict[str, np.ndarray],
    pairs: list[tuple[str, str]],
    n_bootstrap: int,
    rng: np.random.Generator,
) -> Similarity | None:
    """Spearman correlations (Pearson on ranks); None when an image has no contrast there."""
    from scipy.stats import rankdata

    values = [fixed_values, *candidates.values()]
    if len(fixed_values) < 10 or any(np.ptp(v) == 0 for v in values):
        return None
    rf = rankdata(fixed_values)
    ranks = {k: rankdata(v) for k, v in candidates.items()}
    corr = {k: _pearson(rf, r) for k, r in ranks.items()}
    n = len(rf)
    diffs: dict[tuple[str, str], list[float]] = {p: [] for p in pairs}
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        boot = {k: _pearson(rf[idx], r[idx]) for k, r in ranks.items()}
        for a, b in pairs:
            diffs[(a, b)].append(boot[a] - boot[b])
    se = {p: float(np.std(d)) for p, d in diffs.items()}
    return Similarity(n, corr, se)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else 0.0
