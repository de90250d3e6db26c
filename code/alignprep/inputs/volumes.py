"""3-D volumes stored as NIfTI or NRRD, read by what their headers say (LPS millimetres).

A stored file's index order is arbitrary; its physical meaning is in its header:
* NIfTI: the sform or qform (nibabel, RAS+) in the file's spatial unit (mm, micron, meter; an
  unset unit is mm, as ITK reads it);
* NRRD: ``space`` (an anatomical space: LPS, RAS or LAS), ``space directions``, ``space origin``
  (absent = 0, as ITK reads it) and optional ``space units``.
Both become an :class:`ImageHeader` in the file's own index order (ITK (i, j, k) = the
nibabel / pynrrd array order) with LPS millimetres. A header that does not state its frame
unambiguously is refused with an InputError naming the file and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..reads import note_file, note_header
from ..space.frames import ImageHeader

NIFTI_SUFFIXES = (".nii", ".nii.gz")
NRRD_SUFFIXES = (".nrrd", ".nhdr")

# NRRD anatomical spaces -> sign of each world axis that turns it into LPS.
NRRD_SPACE_TO_LPS = {
    "left-posterior-superior": (1.0, 1.0, 1.0),
    "right-anterior-superior": (-1.0, -1.0, 1.0),
    "left-anterior-superior": (1.0, -1.0, 1.0),
}
NRRD_SPACE_ALIASES = {
    "lps": "left-posterior-superior",
    "ras": "right-anterior-superior",
    "las": "left-anterior-superior",
}
# Length units (NRRD ``space units``, NIfTI ``xyz_units``) -> millimetres.
LENGTH_UNIT_MM = {
    "mm": 1.0,
    "millimeter": 1.0,
    "millimeters": 1.0,
    "um": 1e-3,
    "µm": 1e-3,
    "micron": 1e-3,
    "microns": 1e-3,
    "micrometer": 1e-3,
    "micrometers": 1e-3,
    "m": 1e3,
    "meter": 1e3,
    "meters": 1e3,
    "unknown": 1.0,  # NIfTI code 0: ITK reads millimetres
}
# sform vs qform: same frame when every entry agrees this closely (mm; float32 storage).
SFORM_QFORM_ATOL_MM = 1e-4


def volume_format(path: Path) -> str:
    """``"nifti"`` or ``"nrrd"`` from the file name; InputError otherwise."""
    name = Path(path).name.lower()
    if name.endswith(NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(NRRD_SUFFIXES):
        return "nrrd"
    raise InputError(
        f"unknown volume format: expected a NIfTI ({', '.join(NIFTI_SUFFIXES)}) or NRRD "
        f"({', '.join(NRRD_SUFFIXES)}) file",
        file=path,
    )


def read_header(path: Path, what: str, scalar: bool = True) -> ImageHeader:
    """Physical header of a stored volume (its own index order, LPS mm), voxels not read.

    ``scalar=False`` also accepts NIfTI vector images (e.g. ANTs displacement fields), whose
    header is that of the first three (spatial) axes.
    """
    path = note_header(_require(path, what))
    if volume_format(path) == "nifti":
        img = _load_nifti(path, what)
        return _nifti_header(img, path, what, scalar)
    return _nrrd_header(_read_nrrd_header(path, what), path, what)


def read_volume(path: Path, what: str) -> tuple[np.ndarray, ImageHeader]:
    """Voxels in the file's index order (ITK (i, j, k)) and the physical header."""
    path = note_file(_require(path, what))
    if volume_format(path) == "nifti":
        img = _load_nifti(path, what)
        header = _nifti_header(img, path, what, scalar=True)
        try:
            data = np.asanyarray(img.dataobj)
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"cannot read the voxels of the {what}: {exc}", file=path) from None
        return data.reshape(header.size), header
    import nrrd

    header = _nrrd_header(_read_nrrd_header(path, what), path, what)
    try:
        data, _ = nrrd.read(str(path))  # index order (i, j, k)
    except (nrrd.NRRDError, OSError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read the voxels of the {what}: {exc}", file=path) from None
    return data.reshape(header.size), header


def _require(path: Path, what: str) -> Path:
    if not Path(path).is_file():
        raise InputError(f"{what} not found", file=path)
    return Path(path)


# --- NIfTI -----------------------------------------------------------------------------------


def _load_nifti(path: Path, what: str) -> Any:
    import nibabel as nib

    try:
        return nib.load(str(path))
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as exc:
        raise InputError(f"cannot read the {what} as NIfTI: {exc}", file=path) from None


def _nifti_header(img: Any, path: Path, what: str, scalar: bool) -> ImageHeader:
    """LPS mm header from the sform / qform (refused when neither is set or they disagree)."""
    hdr = img.header
    shape = tuple(int(n) for n in img.shape)
    if len(shape) < 3 or (scalar and any(n != 1 for n in shape[3:])):
        raise InputError(f"the {what} has shape {shape}: expected a 3-D scalar volume", file=path)
    sform, _ = hdr.get_sform(coded=True)
    qform, _ = hdr.get_qform(coded=True)
    if sform is None and qform is None:
        raise InputError(
            f"the {what} sets neither an sform nor a qform (both codes 0), so it does not state "
            "where its voxels are; expected a NIfTI whose sform or qform gives the physical frame",
            file=path,
        )
    if (
        sform is not None
        and qform is not None
        and not np.allclose(sform, qform, rtol=0, atol=SFORM_QFORM_ATOL_MM)
    ):
        raise InputError(
            f"the {what}'s sform {np.round(sform[:3], 6).tolist()} and qform "
            f"{np.round(qform[:3], 6).tolist()} disagree: readers differ on which one they use "
            "(nibabel takes the sform, ITK/ANTs may take the qform); expected one frame",
            file=path,
        )
    affine = np.asarray(sform if sform is not None else qform, dtype=float)
    unit = str(hdr.get_xyzt_units()[0]).lower()
    if unit not in LENGTH_UNIT_MM:
        raise InputError(
            f"the {what} has spatial unit {unit!r}: expected mm, micron or meter", file=path
        )
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # RAS -> LPS
    matrix = affine[:3, :3] * LENGTH_UNIT_MM[unit]
    return _header(affine[:3, 3] * LENGTH_UNIT_MM[unit], matrix, shape[:3], path, what)


# --- NRRD ------------------------------------------------------------------------------------


def _read_nrrd_header(path: Path, what: str) -> dict[str, Any]:
    import nrrd

    try:
        return dict(nrrd.read_header(str(path)))
    except (nrrd.NRRDError, OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the {what}'s NRRD header: {exc}", file=path) from None


def nrrd_space(fields: dict[str, Any], path: Path, what: str) -> str:
    """The NRRD's anatomical ``space`` (long form); a missing or non-anatomical one is refused."""
    if "space" not in fields:
        raise InputError(
            f"the {what}'s NRRD header has no 'space' field, so the anatomical directions of its "
            "axes are not stated (ITK would silently assume left-posterior-superior); expected "
            "'space: left-posterior-superior' (or RAS / LAS) with 'space directions'",
            file=path,
        )
    space = str(fields["space"]).strip().lower()
    space = NRRD_SPACE_ALIASES.get(space, space)
    if space not in NRRD_SPACE_TO_LPS:
        raise InputError(
            f"the {what}'s NRRD space is {fields['space']!r}: expected an anatomical 3-D space "
            f"({', '.join(NRRD_SPACE_TO_LPS)})",
            file=path,
        )
    return space


def _nrrd_header(fields: dict[str, Any], path: Path, what: str) -> ImageHeader:
    """LPS mm header from ``space``, ``space directions``, ``space origin``, ``space units``."""
    if int(fields.get("dimension", 0)) != 3:
        raise InputError(
            f"the {what} has NRRD dimension {fields.get('dimension')}: expected a 3-D scalar "
            "volume",
            file=path,
        )
    space = nrrd_space(fields, path, what)
    directions = fields.get("space directions")
    if directions is None:
        raise InputError(
            f"the {what}'s NRRD header has no 'space directions': the size and direction of its "
            "voxels are not stated; expected one 3-vector per axis",
            file=path,
        )
    rows = np.asarray(directions, dtype=float)
    if rows.shape != (3, 3) or not np.all(np.isfinite(rows)):
        raise InputError(
            f"the {what}'s space directions {np.asarray(directions).tolist()}: expected three "
            "spatial 3-vectors (no 'none' axis)",
            file=path,
        )
    origin = np.asarray(fields.get("space origin", np.zeros(3)), dtype=float).reshape(-1)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        raise InputError(
            f"the {what}'s space origin {origin.tolist()}: expected three numbers", file=path
        )
    unit_mm = np.ones(3)
    units = fields.get("space units")
    if units is not None:
        names = [str(u).strip().strip('"').lower() for u in units]
        bad = [u for u in names if u not in LENGTH_UNIT_MM or u == "unknown"]
        if len(names) != 3 or bad:
            raise InputError(
                f"the {what}'s space units {names}: expected three length units (mm, um, m)",
                file=path,
            )
        unit_mm = np.array([LENGTH_UNIT_MM[u] for u in names])
    flip = np.asarray(NRRD_SPACE_TO_LPS[space])
    # space directions are rows (one per index axis) in world coordinates; units per world axis
    matrix = (rows * unit_mm).T * flip[:, None]
    sizes = tuple(int(n) for n in fields["sizes"])
    return _header(origin * unit_mm * flip, matrix, sizes, path, what)


def _header(
    origin_mm: np.ndarray, matrix: np.ndarray, size: tuple[int, ...], path: Path, what: str
) -> ImageHeader:
    """ImageHeader from an origin and a matrix whose columns are the index steps (LPS mm)."""
    spacing = np.linalg.norm(matrix, axis=0)
    if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
        raise InputError(
            f"the {what}'s voxel spacing {spacing.tolist()} mm: expected positive sizes",
            file=path,
        )
    return ImageHeader(origin_mm, spacing, matrix / spacing, size)
