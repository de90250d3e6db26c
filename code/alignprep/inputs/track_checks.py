"""Plausibility checks of a probe track in the CCF, before anything is written.

The classic mistakes of converting a tracing tool's file by hand leave a signature: points outside
the CCF volume, a track longer than any probe, coordinates that fit the brain only in another
unit (mm read as um) or another voxel size (10 um voxels read as 25 um), a hemisphere that
disagrees with what the experimenter wrote down. Each check names the file, the track and the
likely cause; none guesses a correction.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from ..space import atlas

MIN_TRACK_MM, MAX_TRACK_MM = 0.5, 12.0
#: Within this distance of the midline (bregma ML) a hemisphere cannot be told reliably.
MIDLINE_MARGIN_UM = 100.0
#: Other readings of the same numbers that would explain points outside the volume.
RESCALES = (
    (1000.0, "millimetres read as micrometres (x 1000 puts them inside the brain)"),
    (10.0 / 25.0, "10 um voxels read as 25 um voxels (x 10/25 puts them inside)"),
    (25.0 / 10.0, "25 um voxels read as 10 um voxels (x 25/10 puts them inside)"),
    (1e-3, "nanometres or a unit 1000x too small (x 1/1000 puts them inside)"),
)


def inside_ccf(ccf_um: np.ndarray, margin_um: float = 0.0) -> np.ndarray:
    """Per point: inside the Allen CCFv3 volume (voxel edges, CCF um), with a margin."""
    half_voxel_um = atlas.CCF_SPACING_MM * 500.0
    low = -half_voxel_um - margin_um
    high = atlas.CCF_EXTENT_UM - half_voxel_um + margin_um
    return np.all((ccf_um >= low) & (ccf_um <= high), axis=1)


def span_mm(ccf_um: np.ndarray) -> float:
    """The track's extent along its main direction (first principal axis), in mm."""
    centred = ccf_um - ccf_um.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    return float(np.ptp(centred @ axis)) * 1e-3


def plausible(ccf_um: np.ndarray) -> bool:
    """Inside the CCF volume and as long as a probe can be."""
    return bool(inside_ccf(ccf_um).all()) and MIN_TRACK_MM <= span_mm(ccf_um) <= MAX_TRACK_MM


def likely_causes(ccf_um: np.ndarray) -> list[str]:
    """Other readings of the numbers under which the track would be plausible."""
    causes = [why for factor, why in RESCALES if plausible(ccf_um * factor)]
    ibl = atlas.bregma_um_to_ccf_um(ccf_um)  # bregma um (x, y, z) given as CCF um
    if plausible(ibl):
        causes.append("IBL bregma coordinates (x, y, z) given where CCF um were expected")
    return causes


def hemisphere_of(bregma_um: np.ndarray) -> str | None:
    """``"left"`` / ``"right"`` of the track's deepest half (bregma x), None near the midline."""
    pts = np.atleast_2d(bregma_um)
    deep = pts[np.argsort(pts[:, 2])[: max(1, len(pts) // 2)]]  # the lower (more ventral) half
    x_um = float(np.median(deep[:, 0]))
    if abs(x_um) < MIDLINE_MARGIN_UM:
        return None
    return "right" if x_um > 0 else "left"


def check_track(
    ccf_um: np.ndarray, file: Path, track: str, hemisphere: str | None
) -> tuple[np.ndarray, list[str]]:
    """The track's IBL bregma um and its warnings; InputError for an implausible track.

    ``hemisphere`` is the manifest's ``hemisphere`` cell (None: not given).
    """
    where = {"file": file, "layer": track}
    outside = ~inside_ccf(ccf_um)
    causes = [] if plausible(ccf_um) else likely_causes(ccf_um)
    hint = f"; possibly {' or '.join(causes)}" if causes else ""
    if outside.any():
        raise InputError(
            f"points {np.flatnonzero(outside).tolist()} (0-based) lie outside the Allen CCF "
            f"volume (0..{atlas.CCF_EXTENT_UM.tolist()} um, ML/AP/DV){hint}",
            **where,
        )
    length_mm = span_mm(ccf_um)
    if not MIN_TRACK_MM <= length_mm <= MAX_TRACK_MM:
        raise InputError(
            f"the track spans {length_mm:.3f} mm, outside [{MIN_TRACK_MM}, {MAX_TRACK_MM}] mm "
            f"(no probe is longer; check units and voxel size){hint}",
            **where,
        )
    bregma_um = atlas.ccf_um_to_bregma_um(ccf_um)
    warnings = check_hemisphere(bregma_um, file, track, hemisphere)
    return bregma_um, warnings


def check_hemisphere(
    bregma_um: np.ndarray, file: Path, track: str, hemisphere: str | None
) -> list[str]:
    """Raise when the track's hemisphere disagrees with ``hemisphere``; warnings otherwise."""
    found = hemisphere_of(bregma_um)
    if hemisphere is None:
        return []
    if found is None:
        return [
            f"the track runs within {MIDLINE_MARGIN_UM:g} um of the midline: its hemisphere "
            f"cannot be checked against the manifest's {hemisphere!r}"
        ]
    if found != hemisphere:
        x_mm = float(np.median(bregma_um[:, 0])) * 1e-3
        raise InputError(
            f"the track lies in the {found} hemisphere (median bregma x {x_mm:+.2f} mm; x > 0 "
            f"is the animal's right) but the manifest's hemisphere says {hemisphere!r}: a "
            "mirrored ML axis in the conversion, or the wrong row",
            file=file,
            layer=track,
            key="hemisphere",
        )
    return []
