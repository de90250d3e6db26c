"""CCF <-> IBL bregma coordinates and Allen region ids, with iblatlas's own constants and classes.

Frames (coordinates.md §6): F6 CCF physical LPS mm; F7 CCF micrometres (ML right, AP posterior,
DV ventral) from the corner voxel centre; F8 IBL bregma micrometres (x = ML right+, y = AP
anterior+, z = DV dorsal+). ``iblatlas.atlas.AllenAtlas`` is never constructed here: it downloads
volumes. The conversion is iblatlas's ``BrainCoordinates`` on a 1 um grid anchored at bregma,
which is exactly what ``AllenAtlas.ccf2xyz`` does at any resolution.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from iblatlas.atlas import ALLEN_CCF_LANDMARKS_MLAPDV_UM, BrainCoordinates

from .frames import ImageHeader, code_from_direction, direction_from_code

BREGMA_MLAPDV_UM = np.asarray(ALLEN_CCF_LANDMARKS_MLAPDV_UM["bregma"], dtype=float)
CCF_CODE = "PIR"
"""ITK code of the Allen CCF 25 um volumes: index axes point P (AP), I (DV), R (ML)."""
CCF_SPACING_MM = 0.025
#: Extent of the Allen CCFv3 volume in CCF um (ML, AP, DV): 456 x 528 x 320 voxels of 25 um.
CCF_EXTENT_UM = np.array([11400.0, 13200.0, 8000.0])

# Allen-25 volume extent in IBL bregma micrometres (the IBL GUI fails outside it).
ALLEN25_BREGMA_BOX_UM = np.array([[-5739.0, 5636.0], [-7775.0, 5400.0], [-7643.0, 332.0]])


@cache
def _bregma_grid() -> BrainCoordinates:
    """1 um grid with index = CCF micrometres (ML, AP, DV) and x, y, z = bregma metres."""
    dxyz = 1e-6 * np.array([1.0, -1.0, -1.0])
    xyz0 = -BREGMA_MLAPDV_UM * dxyz
    return BrainCoordinates(nxyz=np.array([11400, 13200, 8000]), xyz0=xyz0, dxyz=dxyz)


def ccf_lps_mm_to_ccf_um(points_lps_mm: np.ndarray) -> np.ndarray:
    """F6 -> F7: ``ML = -1000 X``, ``AP = 1000 Y``, ``DV = -1000 Z``."""
    return np.atleast_2d(points_lps_mm) * np.array([-1000.0, 1000.0, -1000.0])


def ccf_um_to_ccf_lps_mm(ccf_mlapdv_um: np.ndarray) -> np.ndarray:
    """F7 -> F6, the inverse of :func:`ccf_lps_mm_to_ccf_um`."""
    return np.atleast_2d(ccf_mlapdv_um) * np.array([-1e-3, 1e-3, -1e-3])


def ccf_um_to_bregma_um(ccf_mlapdv_um: np.ndarray) -> np.ndarray:
    """F7 -> F8 through iblatlas ``BrainCoordinates`` (metres) then micrometres."""
    return _bregma_grid().i2xyz(np.atleast_2d(ccf_mlapdv_um).astype(float)) * 1e6


def bregma_um_to_ccf_um(xyz_um: np.ndarray) -> np.ndarray:
    """F8 -> F7, the inverse of :func:`ccf_um_to_bregma_um`."""
    grid = _bregma_grid()
    return grid.xyz2i(np.atleast_2d(xyz_um).astype(float) * 1e-6, round=False, mode="wrap")


def ccf_lps_mm_to_bregma_um(points_lps_mm: np.ndarray) -> np.ndarray:
    """F6 -> F8."""
    return ccf_um_to_bregma_um(ccf_lps_mm_to_ccf_um(points_lps_mm))


def in_allen25_box(xyz_um: np.ndarray) -> np.ndarray:
    """Whether bregma points lie inside the Allen-25 volume (per point)."""
    pts = np.atleast_2d(xyz_um)
    box = ALLEN25_BREGMA_BOX_UM
    return np.all((pts >= box[:, 0]) & (pts <= box[:, 1]), axis=1)


def ccf_header(shape_apdvml: tuple[int, int, int]) -> ImageHeader:
    """The CCF physical frame assumed by the conversion: voxel 0 at 0, PIR, 25 um."""
    return ImageHeader(
        np.zeros(3), np.full(3, CCF_SPACING_MM), direction_from_code(CCF_CODE), shape_apdvml
    )


# The CCF axis each anatomical letter belongs to, and the letter a CCF index axis must point to.
CCF_AXIS_OF_LETTER = {"P": "AP", "A": "AP", "I": "DV", "S": "DV", "R": "ML", "L": "ML"}
REVERSE = {"P": "A", "A": "P", "I": "S", "S": "I", "R": "L", "L": "R"}
CCF_EXPECTED = "index axes toward P (AP), I (DV) and R (ML) in any order, 25 um, voxel 0 at 0"


def ccf_axes(code: str) -> str:
    """The CCF axis names of an orientation code, e.g. ``"RPI"`` -> ``"(ML, AP, DV)"``."""
    return "(" + ", ".join(CCF_AXIS_OF_LETTER[c] for c in code) + ")"


def check_ccf_header(header: ImageHeader, what: str, atol_mm: float = 1e-6) -> list[str]:
    """Problems with a CCF 25 um volume's physical geometry (empty when it is the CCF's).

    Any index order is the CCF when each index axis increases toward P, I or R (every
    axis-aligned permutation of PIR), voxel [0,0,0] is centred at 0 (then it is the same corner
    voxel in every order) and the spacing is 25 um. A flipped or oblique axis, another origin or
    another spacing is a different physical frame.
    """
    prefix = f"{what}: " if what else ""
    problems = []
    try:
        code = code_from_direction(header.direction)
    except ValueError:
        code = None
        problems.append(
            f"{prefix}index axes are oblique (direction "
            f"{np.round(header.direction, 6).tolist()}); expected {CCF_EXPECTED}"
        )
    if code is not None and sorted(code) != sorted(CCF_CODE):
        flipped = [
            f"index axis {k} points {c}, the reverse of the CCF's {REVERSE[c]} "
            f"({CCF_AXIS_OF_LETTER[c]})"
            for k, c in enumerate(code)
            if c not in CCF_CODE
        ]
        problems.append(
            f"{prefix}orientation {code} {ccf_axes(code)}: {'; '.join(flipped)} (a flipped axis); "
            f"expected {CCF_EXPECTED} (e.g. PIR, the Allen NIfTI order, or RPI)"
        )
    if not np.allclose(header.spacing, CCF_SPACING_MM, rtol=0, atol=atol_mm):
        problems.append(
            f"{prefix}spacing {np.round(header.spacing * 1e3, 6).tolist()} um; expected "
            f"{CCF_SPACING_MM * 1e3:g} um on every axis (CCFv3 25 um)"
        )
    if not np.allclose(header.origin, 0.0, rtol=0, atol=atol_mm):
        offset_vox = float(np.linalg.norm(header.origin) / CCF_SPACING_MM)
        problems.append(
            f"{prefix}origin {np.round(header.origin, 6).tolist()} mm ({offset_vox:.3g} voxels "
            "from 0); expected voxel [0,0,0] centred at (0, 0, 0) mm"
        )
    return problems


@cache
def brain_regions():  # -> iblatlas.regions.BrainRegions
    """``iblatlas.regions.BrainRegions`` (ships offline), loaded once."""
    from iblatlas.regions import BrainRegions

    return BrainRegions()


def region_acronyms(ids: np.ndarray) -> list[str]:
    """Acronyms of signed Allen ids ("void" for 0); unknown ids -> ValueError."""
    regions = brain_regions()
    ids = np.asarray(ids).astype(np.int64).ravel()
    index = {int(i): k for k, i in enumerate(regions.id)}
    unknown = sorted({int(i) for i in ids if int(i) not in index})
    if unknown:
        raise ValueError(f"ids not in iblatlas BrainRegions: {unknown[:10]}")
    return [str(regions.acronym[index[int(i)]]) for i in ids]
