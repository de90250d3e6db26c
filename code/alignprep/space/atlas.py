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

from .frames import ImageHeader, direction_from_code

BREGMA_MLAPDV_UM = np.asarray(ALLEN_CCF_LANDMARKS_MLAPDV_UM["bregma"], dtype=float)
CCF_CODE = "PIR"
"""ITK code of the Allen CCF 25 um volumes: index axes point P (AP), I (DV), R (ML)."""
CCF_SPACING_MM = 0.025

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


def check_ccf_header(header: ImageHeader, what: str, atol_mm: float = 1e-6) -> list[str]:
    """Problems with a CCF 25 um volume's header (empty when it matches the assumption)."""
    problems = []
    if not np.allclose(header.origin, 0.0, atol=atol_mm):
        problems.append(f"{what}: origin {header.origin.tolist()} mm, expected (0, 0, 0)")
    if not np.allclose(header.spacing, CCF_SPACING_MM, atol=atol_mm):
        problems.append(f"{what}: spacing {header.spacing.tolist()} mm, expected 0.025")
    if not np.allclose(header.direction, direction_from_code(CCF_CODE), atol=1e-6):
        problems.append(f"{what}: direction is not {CCF_CODE} (AP, DV, ML index axes)")
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
