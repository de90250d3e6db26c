"""Array resampling on axis-aligned grids: anti-aliased downsampling and reorientation."""

from __future__ import annotations

import warnings

import numpy as np
from nibabel.orientations import apply_orientation
from scipy import ndimage


def output_size(
    size: tuple[int, int, int], spacing_mm: np.ndarray, out_mm: float
) -> tuple[int, ...]:
    """``round(n * s / s_out)`` per axis (outputs.md §2)."""
    return tuple(round(float(n * s / out_mm)) for n, s in zip(size, spacing_mm, strict=True))


def antialias_resample(
    volume: np.ndarray, spacing_mm: np.ndarray, out_mm: float, size_out: tuple[int, ...]
) -> np.ndarray:
    """Gaussian anti-alias (sigma = out/2 on coarsened axes) then linear resampling, float32.

    Output index 0 coincides with input index 0 on every axis: ``idx_in = idx_out * out / s``.
    Samples past the last input voxel take the edge value.
    """
    spacing = np.asarray(spacing_mm, dtype=float)
    data = np.array(volume, dtype=np.float32)  # one float32 working copy, filtered in place
    sigma_vox = np.where(out_mm > spacing * (1 + 1e-9), (out_mm / 2) / spacing, 0.0)
    if np.any(sigma_vox > 0):
        ndimage.gaussian_filter(data, sigma=sigma_vox, mode="nearest", truncate=3.0, output=data)
    scale = out_mm / spacing
    with warnings.catch_warnings():  # a 1-D matrix means "diagonal" (scipy notes a 0.18 change)
        warnings.filterwarnings("ignore", "The behavior of affine_transform", UserWarning)
        return ndimage.affine_transform(
            data,
            scale,
            offset=0.0,
            output_shape=tuple(size_out),
            order=1,
            mode="nearest",
            prefilter=False,
            output=np.float32,
        )


def to_dtype(volume: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip into an integer dtype's range (no wrap-around); floats are cast."""
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(volume), info.min, info.max).astype(dtype)
    return volume.astype(dtype)


def reorient_array(volume_ijk: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """Apply a nibabel orientation transform (from :func:`frames.reorient`) to an ITK array.

    Returns a view when possible (axis permutation and flips copy nothing).
    """
    return apply_orientation(volume_ijk, transform)
