"""A volume of the run, turned for drawing: array axes (AP, ML, DV), posterior, right, ventral +.

The image-space NRRDs are written IRP today, but a drawing must not rely on that: the volume is
reoriented by its header's physical meaning (``nibabel.orientations``), so sections always show
the animal's left on the left, anterior at the top of a horizontal section and on the left of a
sagittal one, dorsal at the top. The affine kept with it maps the turned array's index to LPS mm
(the NRRD's physical frame), so points in that frame (``track_data/spim/*.fcsv``) land on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel.orientations as nio
import numpy as np

#: (array axis -> RAS axis, direction) of the display layout: posterior, right, inferior +.
DISPLAY_ORNT = np.array([[1, -1], [0, 1], [2, -1]])

_SPACES = {  # NRRD space -> sign flips that take its vectors to LPS
    "left-posterior-superior": np.array([1.0, 1.0, 1.0]),
    "right-anterior-superior": np.array([-1.0, -1.0, 1.0]),
}


@dataclass(frozen=True)
class DisplayVolume:
    """``data[ap, ml, dv]`` and the affine from that index to LPS mm."""

    data: np.ndarray
    affine_lps_mm: np.ndarray  # 4 x 4

    @property
    def spacing_mm(self) -> np.ndarray:
        """Voxel size along (AP, ML, DV), mm."""
        return np.linalg.norm(self.affine_lps_mm[:3, :3], axis=0)

    def index_of(self, points_lps_mm: np.ndarray) -> np.ndarray:
        """Continuous (ap, ml, dv) indices of LPS-mm points, shape (n, 3)."""
        pts = np.atleast_2d(np.asarray(points_lps_mm, dtype=float))
        inv = np.linalg.inv(self.affine_lps_mm)
        return pts @ inv[:3, :3].T + inv[:3, 3]

    def point_of(self, index: np.ndarray) -> np.ndarray:
        """LPS-mm points of continuous (ap, ml, dv) indices, shape (n, 3)."""
        idx = np.atleast_2d(np.asarray(index, dtype=float))
        return idx @ self.affine_lps_mm[:3, :3].T + self.affine_lps_mm[:3, 3]


def nrrd_affine_lps_mm(header: dict) -> np.ndarray:
    """The 4 x 4 affine from a NRRD's C-order index (k, j, i) to LPS mm."""
    space = str(header.get("space", "")).lower()
    if space not in _SPACES:
        raise ValueError(f"NRRD space {space!r} is not one of {sorted(_SPACES)}")
    flip = _SPACES[space]
    directions = np.asarray(header["space directions"], dtype=float)  # rows: i, j, k vectors
    origin = np.asarray(header.get("space origin", np.zeros(3)), dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = (directions[::-1] * flip).T  # columns: the C-order axes k, j, i
    affine[:3, 3] = origin * flip
    return affine


def display_volume(data_c: np.ndarray, affine_lps_mm: np.ndarray) -> DisplayVolume:
    """Turn a C-order array with its index -> LPS-mm affine into the display layout."""
    lps_to_ras = np.diag([-1.0, -1.0, 1.0, 1.0])
    current = nio.io_orientation(lps_to_ras @ affine_lps_mm)
    transform = nio.ornt_transform(current, DISPLAY_ORNT)
    data = nio.apply_orientation(data_c, transform)
    affine = affine_lps_mm @ nio.inv_ornt_aff(transform, data_c.shape)
    return DisplayVolume(np.ascontiguousarray(data), affine)


def read_display_volume(path: Path) -> DisplayVolume:
    """A NRRD of the run, in the display layout."""
    import nrrd

    data, header = nrrd.read(str(path), index_order="C")
    return display_volume(data, nrrd_affine_lps_mm(header))
