"""The probe insertion of a picked track, as iblatlas ``Insertion.from_track`` defines it.

``Insertion.from_track`` fits a line to the picks (SVD), projects the deepest pick onto it (the
tip), intersects the line with the top surface of a brain atlas's label volume (the entry) and
stores entry, depth, theta and phi. It needs a ``BrainAtlas``; ``AllenAtlas`` downloads volumes,
so the atlas here is an ``iblatlas.atlas.BrainAtlas`` built from the run's own CCF labels, on the
IBL bregma grid (25 um, ``dims2xyz = [1, 0, 2]``, origin at bregma) that ``AllenAtlas(25)`` uses.

Speed: iblatlas computes the surface of the whole volume (about 10 s and 3 GB on the Allen 25 um
grid). Only the columns around the fitted line matter: the entry is chosen among surface voxels
within one voxel (25 um) of the line. The atlas is therefore built on the (AP, ML) columns the
line crosses inside the volume, with a 2-voxel margin, over the full DV range. The surface
differs from the full volume's only on the crop's outer ML columns (``numpy.diff`` appends void
there), which are more than one voxel from the line, so the result is the same (a test compares
it with the full volume).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from iblatlas.atlas import BrainAtlas, Insertion, Trajectory

from .atlas import BREGMA_MLAPDV_UM, CCF_SPACING_MM, brain_regions

RES_UM = CCF_SPACING_MM * 1e3
DXYZ_M = RES_UM * 1e-6 * np.array([1.0, -1.0, -1.0])  # AllenAtlas(25): x right, y anterior, z up
DIMS2XYZ = [1, 0, 2]  # label[iap, iml, idv], as AllenAtlas
MARGIN_VOXELS = 2


class _LabelsAtlas(BrainAtlas):
    """A ``BrainAtlas`` on our labels; ``res_um`` is what ``AllenAtlas`` adds and
    ``Insertion.get_brain_entry`` reads."""

    res_um = RES_UM


@dataclass(frozen=True)
class TrackInsertion:
    """An IBL insertion in micrometres and degrees (iblatlas keeps metres)."""

    entry_um: np.ndarray  # IBL bregma (x, y, z) where the fitted line enters the brain
    tip_um: np.ndarray  # the deepest pick projected onto the fitted line
    theta_deg: float  # polar angle from the dorsal axis (0 = vertical)
    phi_deg: float  # azimuth in the horizontal plane (0 = +x, right)
    depth_um: float  # entry to tip

    def to_json(self) -> dict[str, Any]:
        """JSON-ready values (um, degrees)."""
        return {
            "entry_um": np.round(self.entry_um, 3).tolist(),
            "tip_um": np.round(self.tip_um, 3).tolist(),
            "theta_deg": round(float(self.theta_deg), 6),
            "phi_deg": round(float(self.phi_deg), 6),
            "depth_um": round(float(self.depth_um), 3),
        }


def labels_atlas(
    compact_apdvml: np.ndarray, unique_labels: np.ndarray, ap: slice, ml: slice
) -> BrainAtlas:
    """A ``BrainAtlas`` of the brain mask on CCF voxels ``[ap, :, ml]`` (all voxels: full slices).

    ``compact_apdvml`` is the compact label volume in CCF index order (AP, DV, ML), its values
    looked up through ``unique_labels`` (0 = void). Only "void or not" matters for the surface.
    """
    ap0, ml0 = ap.start or 0, ml.start or 0
    void_ids = np.flatnonzero(np.asarray(unique_labels) == 0)
    brain = ~np.isin(compact_apdvml[ap, :, ml], void_ids)
    label = np.ascontiguousarray(brain.transpose(0, 2, 1), dtype=np.uint8)  # (AP, ML, DV)
    iorigin = BREGMA_MLAPDV_UM / RES_UM - np.array([ml0, ap0, 0.0])
    return _LabelsAtlas(
        label, label, DXYZ_M, brain_regions(), iorigin, dims2xyz=DIMS2XYZ, xyz2dims=DIMS2XYZ
    )


def line_columns(
    traj: Trajectory, shape_apdvml: tuple[int, int, int], margin: int = MARGIN_VOXELS
) -> tuple[slice, slice] | None:
    """(AP, ML) index slices of the columns the line crosses in the volume (None: it misses).

    The line is clipped to the volume grown by ``margin + 0.5`` voxels; the crop is that
    segment's AP and ML index range plus ``margin`` voxels, within the volume.
    """
    n_ml_ap_dv = np.array([shape_apdvml[2], shape_apdvml[0], shape_apdvml[1]], dtype=float)
    xyz0 = -BREGMA_MLAPDV_UM / RES_UM * DXYZ_M  # bregma metres of voxel [0, 0, 0]
    point = (np.asarray(traj.point) - xyz0) / DXYZ_M  # continuous (ml, ap, dv) index
    vector = np.asarray(traj.vector) / DXYZ_M
    lo, hi = np.full(3, -(margin + 0.5)), n_ml_ap_dv - 1 + margin + 0.5
    t_lo, t_hi = -np.inf, np.inf
    for k in range(3):
        if vector[k] == 0:
            if not lo[k] <= point[k] <= hi[k]:
                return None
            continue
        a, b = (lo[k] - point[k]) / vector[k], (hi[k] - point[k]) / vector[k]
        t_lo, t_hi = max(t_lo, min(a, b)), min(t_hi, max(a, b))
    if t_lo > t_hi:
        return None
    ends = point + np.outer([t_lo, t_hi], vector)
    first = np.floor(ends.min(axis=0)).astype(int) - margin
    last = np.ceil(ends.max(axis=0)).astype(int) + margin
    first, last = np.clip(first, 0, n_ml_ap_dv - 1), np.clip(last, 0, n_ml_ap_dv - 1)
    return slice(int(first[1]), int(last[1]) + 1), slice(int(first[0]), int(last[0]) + 1)


def insertion_from_track(
    picks_bregma_um: np.ndarray, compact_apdvml: np.ndarray, unique_labels: np.ndarray
) -> TrackInsertion | None:
    """``Insertion.from_track`` of the picks on the run's labels (None: the line misses the brain).

    ``picks_bregma_um`` are the picks IBL's rule keeps (any order; the deepest is found by z).
    """
    xyz_m = np.asarray(picks_bregma_um, dtype=float) * 1e-6
    columns = line_columns(Trajectory.fit(xyz_m), compact_apdvml.shape)
    if columns is None:
        return None
    atlas = labels_atlas(compact_apdvml, unique_labels, *columns)
    try:
        ins = Insertion.from_track(xyz_m, brain_atlas=atlas)
    except ValueError:  # "No intersection found with brain surface"
        return None
    return TrackInsertion(
        entry_um=np.asarray(ins.entry, dtype=float) * 1e6,
        tip_um=np.asarray(ins.tip, dtype=float) * 1e6,
        theta_deg=float(ins.theta),
        phi_deg=float(ins.phi),
        depth_um=float(ins.depth) * 1e6,
    )
