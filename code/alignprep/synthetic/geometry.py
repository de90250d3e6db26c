"""Synthetic registrations: affines, smooth displacement fields and their numerical inverses.

Ground truth is computed here with numpy only (matrix algebra and trilinear interpolation of the
stored field values), independent of ANTs's point code: a registration of moving M onto fixed F
maps an F-point x to ``A (x + u(x) - c) + c + t`` in M (ITK affine after the 1Warp field).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import map_coordinates
from scipy.spatial.transform import Rotation

from ..space.frames import ImageHeader


@dataclass(frozen=True)
class Affine:
    """ITK affine ``x -> A (x - c) + c + t`` (LPS mm)."""

    matrix: np.ndarray
    center: np.ndarray
    translation: np.ndarray

    def __call__(self, points: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(points)
        return (pts - self.center) @ self.matrix.T + self.center + self.translation

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """Exact inverse map."""
        pts = np.atleast_2d(points) - self.center - self.translation
        return np.linalg.solve(self.matrix, pts.T).T + self.center

    def write(self, path: Path) -> Path:
        """Write as an ANTs/ITK ``.mat`` (double precision)."""
        import ants

        tx = ants.create_ants_transform(
            transform_type="AffineTransform",
            precision="double",
            dimension=3,
            matrix=self.matrix,
            translation=self.translation,
            center=self.center,
        )
        ants.write_transform(tx, str(path))
        return path


def random_affine(
    rng: np.random.Generator,
    source_center: np.ndarray,
    target_center: np.ndarray,
    max_angle_deg: float,
    scale_range: tuple[float, float],
) -> Affine:
    """A rotation + anisotropic scaling taking ``source_center`` to ``target_center``."""
    angles = rng.uniform(-max_angle_deg, max_angle_deg, 3)
    rot = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    scale = np.diag(rng.uniform(*scale_range, 3))
    matrix = rot @ scale
    center = np.asarray(source_center, float)
    return Affine(matrix, center, np.asarray(target_center, float) - center)


@dataclass(frozen=True)
class Field:
    """Displacement field on a grid: vectors in LPS mm, array in ITK index order (i, j, k, 3)."""

    header: ImageHeader
    vectors: np.ndarray

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Trilinear interpolation at LPS points (zero outside the grid), as ITK does."""
        idx = self.header.physical_to_index(points).T
        return np.stack(
            [
                map_coordinates(self.vectors[..., c], idx, order=1, mode="constant", cval=0.0)
                for c in range(3)
            ],
            axis=1,
        )

    def write(self, path: Path) -> Path:
        """Write as an ANTs displacement-field NIfTI (what ``1Warp.nii.gz`` holds)."""
        import ants

        img = ants.from_numpy(
            self.vectors.astype(np.float32), has_components=True, **self.header.ants_kwargs()
        )
        ants.image_write(img, str(path))
        return path


def smooth_field(
    rng: np.random.Generator,
    header: ImageHeader,
    amplitude_mm: float,
    width_mm: float,
    n_bumps: int = 6,
    taper_mm: float = 1.0,
) -> Field:
    """Sum of Gaussian bumps with random vectors, tapered to zero at the grid border."""
    n = np.asarray(header.size)
    grid = np.stack(np.meshgrid(*[np.arange(k) for k in n], indexing="ij"), axis=-1)
    pts = header.index_to_physical(grid.reshape(-1, 3)).reshape(*n, 3)
    inner_lo = header.index_to_physical(np.zeros(3))[0]
    inner_hi = header.index_to_physical(n - 1)[0]
    lo, hi = np.minimum(inner_lo, inner_hi), np.maximum(inner_lo, inner_hi)
    vectors = np.zeros((*n, 3))
    if amplitude_mm > 0:
        centers = rng.uniform(lo + taper_mm, hi - taper_mm, (n_bumps, 3))
        amps = rng.normal(size=(n_bumps, 3))
        amps *= amplitude_mm / np.linalg.norm(amps, axis=1, keepdims=True)
        for c, a in zip(centers, amps, strict=True):
            w = np.exp(-np.sum((pts - c) ** 2, axis=-1) / (2 * width_mm**2))
            vectors += w[..., None] * a
        # smooth taper: 0 at the border, 1 beyond taper_mm inside it
        d = np.minimum(pts - lo, hi - pts) / taper_mm
        taper = np.prod(np.sin(np.clip(d, 0, 1) * np.pi / 2) ** 2, axis=-1)
        vectors *= taper[..., None]
    return Field(header, vectors)


def invert_field(field: Field, max_iterations: int = 100, tol_mm: float = 1e-12) -> Field:
    """Numerical inverse: ``v(y) = -u(y + v(y))`` on the same grid (fixed-point iteration)."""
    if not np.any(field.vectors):
        return Field(field.header, np.zeros_like(field.vectors))
    n = np.asarray(field.header.size)
    grid = np.stack(np.meshgrid(*[np.arange(k) for k in n], indexing="ij"), axis=-1)
    y = field.header.index_to_physical(grid.reshape(-1, 3))
    v = -field(y)
    for _ in range(max_iterations):
        v_next = -field(y + v)
        converged = np.max(np.abs(v_next - v)) < tol_mm
        v = v_next
        if converged:
            break
    return Field(field.header, v.reshape(*n, 3))


@dataclass(frozen=True)
class SyntheticRegistration:
    """A synthetic registration of moving onto fixed, written as ANTs files."""

    affine: Affine
    warp: Field  # defined on the fixed grid; fixed-point x -> x + u(x)
    inverse_warp: Field

    def fixed_to_moving(self, points: np.ndarray) -> np.ndarray:
        """Exact (w.r.t. the stored 1Warp values) map of fixed-image points into moving."""
        pts = np.atleast_2d(points)
        return self.affine(pts + self.warp(pts))

    def write(self, prefix: Path) -> tuple[Path, Path, Path]:
        """``<prefix>0GenericAffine.mat``, ``<prefix>1Warp.nii.gz``, ``<prefix>1InverseWarp``."""
        prefix.parent.mkdir(parents=True, exist_ok=True)
        return (
            self.affine.write(Path(f"{prefix}0GenericAffine.mat")),
            self.warp.write(Path(f"{prefix}1Warp.nii.gz")),
            self.inverse_warp.write(Path(f"{prefix}1InverseWarp.nii.gz")),
        )


def box_header(
    lo: np.ndarray, hi: np.ndarray, spacing_mm: float, code_dir: np.ndarray
) -> ImageHeader:
    """A grid with direction ``code_dir`` whose voxel centres cover the LPS box [lo, hi]."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    d = np.asarray(code_dir, float)
    # extent along each index axis = extent along the world axis it points to
    world = np.argmax(np.abs(d), axis=0)
    size = np.ceil((hi - lo)[world] / spacing_mm).astype(int) + 1
    # origin: the corner reached at index 0 along every axis
    start = np.where(d.sum(axis=1) > 0, lo, hi)
    return ImageHeader(start, np.full(3, spacing_mm), d, tuple(size))
