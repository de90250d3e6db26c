"""Image headers, index <-> physical conversions and orientation codes (ITK / LPS conventions).

Conventions (coordinates.md §0-§2, §4):
* index order is ITK (i, j, k) = reverse of the numpy/zarr axis order;
* physical space is LPS in millimetres; ``p = origin + D @ (spacing * idx)``;
* the columns of the direction matrix ``D`` are the index axes in LPS;
* an orientation code has one letter per index axis: the anatomical direction in which that index
  **increases** (ITK / SimpleITK ``DICOMOrientImageFilter`` semantics; ``LPS`` = identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from nibabel import orientations

from ..errors import InputError

# (start, end) labels of the LPS world axes for nibabel.orientations: the second label of each
# pair is the positive direction of that world axis.
LPS_LABELS = (("R", "L"), ("A", "P"), ("I", "S"))
_PAIRS = ({"L", "R"}, {"A", "P"}, {"S", "I"})


def validate_code(code: str) -> str:
    """Upper-case ``code`` and check it has one letter of each of {L,R}, {A,P}, {S,I}."""
    code = code.upper()
    if len(code) != 3 or any(sum(c in pair for c in code) != 1 for pair in _PAIRS):
        raise ValueError(
            f"orientation code {code!r}: expected 3 letters, one from each of L/R, A/P, S/I"
        )
    return code


def direction_from_code(code: str) -> np.ndarray:
    """Direction matrix (columns = index axes in LPS) of an ITK orientation code."""
    ornt = orientations.axcodes2ornt(tuple(validate_code(code)), labels=LPS_LABELS)
    direction = np.zeros((3, 3))
    for index_axis, (world_axis, sign) in enumerate(ornt):
        direction[int(world_axis), index_axis] = sign
    return direction


def code_from_direction(direction: np.ndarray, atol: float = 1e-6) -> str:
    """ITK orientation code of an axis-aligned direction matrix (oblique -> ValueError)."""
    d = np.asarray(direction, dtype=float)
    signs = np.round(d)
    a = np.abs(signs)
    permutation = np.all(a.sum(axis=0) == 1) and np.all(a.sum(axis=1) == 1)
    if not np.allclose(d, signs, atol=atol) or not permutation:
        raise ValueError(f"direction is not axis-aligned (oblique): {d.tolist()}")
    affine = np.eye(4)
    affine[:3, :3] = signs
    return "".join(orientations.aff2axcodes(affine, labels=LPS_LABELS))


@dataclass(frozen=True)
class ImageHeader:
    """Physical geometry of a 3-D image: LPS millimetres, ITK index order."""

    origin: np.ndarray  # (3,) physical position of the centre of voxel [0, 0, 0], mm
    spacing: np.ndarray  # (3,) mm, ITK order
    direction: np.ndarray  # (3, 3) columns = index axes in LPS
    size: tuple[int, int, int]  # ITK order

    def __post_init__(self) -> None:
        object.__setattr__(self, "origin", np.asarray(self.origin, dtype=float).reshape(3))
        object.__setattr__(self, "spacing", np.asarray(self.spacing, dtype=float).reshape(3))
        object.__setattr__(self, "direction", np.asarray(self.direction, dtype=float))
        object.__setattr__(self, "size", tuple(int(n) for n in self.size))
        if self.direction.shape != (3, 3):
            raise ValueError(f"direction must be 3x3, got {self.direction.shape}")
        if np.any(self.spacing <= 0):
            raise ValueError(f"spacing must be positive, got {self.spacing.tolist()}")

    @property
    def code(self) -> str:
        """ITK orientation code of the direction."""
        return code_from_direction(self.direction)

    @property
    def shape_zyx(self) -> tuple[int, int, int]:
        """The numpy (C-order) shape of the voxel array."""
        return self.size[::-1]  # type: ignore[return-value]

    def index_to_physical(self, index: np.ndarray) -> np.ndarray:
        """(n, 3) continuous ITK index -> (n, 3) LPS mm."""
        idx = np.atleast_2d(np.asarray(index, dtype=float))
        return self.origin + (idx * self.spacing) @ self.direction.T

    def physical_to_index(self, points: np.ndarray) -> np.ndarray:
        """(n, 3) LPS mm -> (n, 3) continuous ITK index."""
        pts = np.atleast_2d(np.asarray(points, dtype=float))
        return np.linalg.solve(self.direction, (pts - self.origin).T).T / self.spacing

    def corners_physical(self) -> np.ndarray:
        """The 8 voxel-centre corners of the grid, LPS mm."""
        n = np.asarray(self.size) - 1
        corners = np.array([[i, j, k] for i in (0, n[0]) for j in (0, n[1]) for k in (0, n[2])])
        return self.index_to_physical(corners)

    def contains_index(self, index: np.ndarray, margin: float = 0.5) -> np.ndarray:
        """Whether continuous indices lie inside the grid (voxel boxes, ``margin`` voxels)."""
        idx = np.atleast_2d(index)
        return np.all((idx >= -margin) & (idx <= np.asarray(self.size) - 1 + margin), axis=1)

    def to_json(self) -> dict[str, Any]:
        """``{"origin", "spacing", "direction" (row-major 9), "size_ijk"}``."""
        return {
            "origin": self.origin.tolist(),
            "spacing": self.spacing.tolist(),
            "direction": self.direction.reshape(9).tolist(),
            "size_ijk": list(self.size),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> ImageHeader:
        """Inverse of :meth:`to_json`."""
        return cls(
            np.asarray(obj["origin"]),
            np.asarray(obj["spacing"]),
            np.asarray(obj["direction"]).reshape(3, 3),
            tuple(obj["size_ijk"]),
        )

    @classmethod
    def from_ants(cls, image: Any) -> ImageHeader:
        """Header of an ``ants.ANTsImage`` (ANTs reports everything in ITK order)."""
        return cls(
            np.asarray(image.origin), np.asarray(image.spacing), image.direction, image.shape
        )

    def ants_kwargs(self) -> dict[str, Any]:
        """``origin``, ``spacing``, ``direction`` keyword arguments for ``ants.from_numpy``."""
        return {
            "origin": tuple(self.origin.tolist()),
            "spacing": tuple(self.spacing.tolist()),
            "direction": self.direction.copy(),
        }


def level_origin(
    origin0: np.ndarray, direction: np.ndarray, spacing0: np.ndarray, spacing_l: np.ndarray
) -> np.ndarray:
    """Origin of a pyramid level: ``o_L = o_0 + D (s_L - s_0) / 2`` (coordinates.md §2).

    A level-L voxel averages the level-0 voxels beneath it, so its centre sits half a coarse
    voxel minus half a fine voxel past the level-0 centre.
    """
    return np.asarray(origin0, float) + np.asarray(direction, float) @ (
        (np.asarray(spacing_l, float) - np.asarray(spacing0, float)) / 2
    )


def level_index(index0: np.ndarray, spacing0: np.ndarray, spacing_l: np.ndarray) -> np.ndarray:
    """Level-0 continuous index -> level-L continuous index (same tissue point)."""
    return (np.asarray(index0, float) + 0.5) * np.asarray(spacing0) / np.asarray(spacing_l) - 0.5


def native_header(
    code: str,
    spacing_mm: np.ndarray,
    size: tuple[int, int, int],
    spacing0_mm: np.ndarray | None = None,
) -> ImageHeader:
    """F2 header of a pyramid level: level-0 voxel [0,0,0] centre at the physical origin.

    ``spacing0_mm`` is the level-0 spacing (defaults to ``spacing_mm``, i.e. level 0 itself).
    """
    direction = direction_from_code(code)
    s0 = spacing_mm if spacing0_mm is None else spacing0_mm
    return ImageHeader(
        level_origin(np.zeros(3), direction, s0, spacing_mm), spacing_mm, direction, size
    )


def lps_mm_to_ras_um(points_lps_mm: np.ndarray) -> np.ndarray:
    """F2 -> F4: image-space RAS micrometres, ``1000 * (-X, -Y, Z)``."""
    return np.atleast_2d(points_lps_mm) * np.array([-1000.0, -1000.0, 1000.0])


def ras_um_to_lps_mm(points_ras_um: np.ndarray) -> np.ndarray:
    """F4 -> F2, the inverse of :func:`lps_mm_to_ras_um`."""
    return np.atleast_2d(points_ras_um) * np.array([-1e-3, -1e-3, 1e-3])


def require_axis_aligned(header: ImageHeader, what: str) -> str:
    """The orientation code of ``header``, or an InputError naming ``what`` when oblique."""
    try:
        return header.code
    except ValueError as exc:
        raise InputError(str(exc), file=what) from None


def reorient(header: ImageHeader, code: str) -> tuple[ImageHeader, np.ndarray]:
    """Header of the same grid with index axes along ``code``, and the nibabel transform.

    Apply the returned orientation to an ITK-ordered (i, j, k) array with
    ``nibabel.orientations.apply_orientation``. Physical points do not move.
    """
    start = orientations.axcodes2ornt(tuple(header.code), labels=LPS_LABELS)
    end = orientations.axcodes2ornt(tuple(validate_code(code)), labels=LPS_LABELS)
    transform = orientations.ornt_transform(start, end)
    size = np.asarray(header.size)
    new_size, new_spacing = np.zeros(3, int), np.zeros(3)
    corner = np.zeros(3)
    for old_axis, (new_axis, flip) in enumerate(transform):
        new_size[int(new_axis)] = size[old_axis]
        new_spacing[int(new_axis)] = header.spacing[old_axis]
        corner[old_axis] = size[old_axis] - 1 if flip < 0 else 0
    origin = header.index_to_physical(corner)[0]
    new = ImageHeader(origin, new_spacing, direction_from_code(code), tuple(new_size))
    return new, transform
