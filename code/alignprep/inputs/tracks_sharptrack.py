"""SHARP-Track probe point files (cortex-lab/allenCCF, Shamash et al. 2018): ``probe_points*.mat``.

SHARP-Track's atlas browser (``AtlasTransformBrowser.m`` / ``allenAtlasBrowser.m``, key ``s``)
saves one MATLAB variable, the struct ``pointList`` with fields ``pointList`` and ``pointHands``.
``pointList.pointList`` is a cell array with one row per probe (numbered 1, 2, ... as the tool
numbers them); cell ``{k, 1}`` is an (n, 3) double matrix of clicked points. Each point is
``[clickX, clickY, clickZ]``: column, row and slice number of the atlas slice on screen, i.e.
**1-based** indices of the 10 um Allen volume ``annotation_volume_10um_by_index.npy`` (AP, DV,
ML; the Allen ``annotation_10.nrrd`` order, not flipped) **after** the browser permuted it for the
slicing plane. The column order therefore depends on the plane, and the plane is *not* in the
file: it is a script parameter (``plane = 'coronal'`` in ``Navigate_Atlas_and_Register_Slices.m``
and again in ``Display_Probe_Track.m``). So the manifest must say it, in ``histology_track_id``:
``<plane>_<probe number>``, e.g. ``coronal_2`` (see ``docs/inputs/sharptrack.md``).

Per plane, the file columns that hold AP, DV and ML (``Display_Probe_Track.m`` reorders
``[3 2 1]``, ``[1 2 3]`` and ``[1 3 2]`` to AP, DV, ML):

========== =================== ==================
plane      file row            CCF um (ML, AP, DV)
========== =================== ==================
coronal    (ML, DV, AP)        10 (c1-1, c3-1, c2-1)
sagittal   (AP, DV, ML)        10 (c3-1, c1-1, c2-1)
transverse (AP, ML, DV)        10 (c2-1, c1-1, c3-1)
========== =================== ==================

SHARP-Track's own bregma (``allenCCFbregma`` = [540, 0, 570]) is never used: CCF um come from
the raw voxel values; the IBL bregma is applied later by :mod:`alignprep.space.atlas`.
Files saved as v5/v7 are read with :func:`scipy.io.loadmat`, v7.3 (HDF5, MATLAB's
``-v7.3`` or its default-format preference) with :mod:`h5py`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from ..errors import InputError
from .ccf_tracks import CcfTrack, TrackHints, as_points, check_atlas

log = logging.getLogger("alignprep.inputs.tracks_sharptrack")

TOOL = "sharptrack"
VOXEL_UM = 10.0
#: The 10 um Allen volume SHARP-Track indexes (AP, DV, ML), in voxels.
VOLUME_SHAPE_APDVML = (1320, 800, 1140)
#: The only atlas SHARP-Track works in (resolution hard-coded, ``atlasRes = 0.010``).
ATLAS = "allen_mouse_10um"
#: Per slicing plane: the 0-based file columns holding AP, DV and ML (Display_Probe_Track.m).
PLANE_COLUMNS_APDVML: dict[str, tuple[int, int, int]] = {
    "coronal": (2, 1, 0),
    "sagittal": (0, 1, 2),
    "transverse": (0, 2, 1),
}
TRACK_ID_EXAMPLE = "coronal_2"
_TRACK_RE = re.compile(r"^\s*([A-Za-z]+)_(\d+)\s*$")
_EXPECTED_FILE = (
    "a SHARP-Track probe_points*.mat (the struct 'pointList' with the cell array field "
    "'pointList' that AtlasTransformBrowser saves on key 's')"
)


def parse_track_id(track: str, path: Path) -> tuple[str, int]:
    """``"<plane>_<probe>"`` -> (plane, 1-based probe number); InputError otherwise.

    The plane is one of ``coronal``, ``sagittal``, ``transverse`` (any case); it is required
    because SHARP-Track does not record it in the file, and it is never guessed.
    """
    planes = ", ".join(PLANE_COLUMNS_APDVML)
    match = _TRACK_RE.match(track or "")
    if match is None:
        raise InputError(
            f"histology_track_id {track!r} does not name a slicing plane and a probe; expected "
            f"'<plane>_<probe number>' with plane one of {planes} (e.g. {TRACK_ID_EXAMPLE!r}): "
            "SHARP-Track does not save the plane in the file, so it must be given",
            file=path,
            layer=track,
            key="histology_track_id",
        )
    plane, number = match.group(1).lower(), int(match.group(2))
    if plane not in PLANE_COLUMNS_APDVML:
        raise InputError(
            f"slicing plane {match.group(1)!r} is not one of SHARP-Track's planes; expected one "
            f"of {planes} (the 'plane' set in Navigate_Atlas_and_Register_Slices.m)",
            file=path,
            layer=track,
            key="histology_track_id",
        )
    if number < 1:
        raise InputError(
            f"probe number {number}: SHARP-Track numbers probes from 1; expected "
            f"'<plane>_<probe number>' (e.g. {TRACK_ID_EXAMPLE!r})",
            file=path,
            layer=track,
            key="histology_track_id",
        )
    return plane, number


def sharptrack_to_ccf_um(values: np.ndarray, plane: str) -> np.ndarray:
    """SHARP-Track point rows of ``plane`` -> CCF um (ML, AP, DV), voxel 0 at 0.

    ``(value - 1) * 10``: the values are MATLAB 1-based indices of the 10 um Allen volume.
    """
    ap, dv, ml = PLANE_COLUMNS_APDVML[plane]
    index_1based = np.asarray(values, dtype=float)[:, [ml, ap, dv]]
    return (index_1based - 1.0) * VOXEL_UM


# ------------------------------------------------------------------------------ MAT reading


def _mat_version(path: Path, track: str) -> int:
    """The MAT-file major version (0: v4, 1: v5/v6/v7, 2: v7.3 HDF5); InputError if not MAT."""
    try:
        major, _minor = scipy.io.matlab.matfile_version(str(path))
    except (ValueError, OSError, TypeError, IndexError, scipy.io.matlab.MatReadError) as exc:
        raise InputError(
            f"not a readable MATLAB MAT-file ({exc}); expected {_EXPECTED_FILE}",
            file=path,
            layer=track,
        ) from None
    return int(major)


def _cells_v5(path: Path, track: str) -> list[np.ndarray]:
    """Column 1 of ``pointList.pointList`` from a v5/v7 file, one array per probe."""
    try:
        content = scipy.io.loadmat(str(path), variable_names=["pointList"])
    except Exception as exc:  # scipy raises many types on damaged files
        raise InputError(
            f"MAT-file could not be read ({type(exc).__name__}: {exc}); expected {_EXPECTED_FILE}",
            file=path,
            layer=track,
        ) from None
    struct = content.get("pointList")
    names = getattr(getattr(struct, "dtype", None), "names", None) or ()
    if struct is None or "pointList" not in names or struct.size != 1:
        found = sorted(f"{name} ({kind})" for name, _shape, kind in scipy.io.whosmat(str(path)))
        raise InputError(
            f"no struct variable 'pointList' with a field 'pointList' (variables found: "
            f"{found}); expected {_EXPECTED_FILE}",
            file=path,
            layer=track,
        )
    cells = struct["pointList"].flat[0]
    if not isinstance(cells, np.ndarray) or cells.dtype != object or cells.ndim != 2:
        raise InputError(
            f"pointList.pointList is not a 2-D cell array (found {type(cells).__name__} "
            f"{getattr(cells, 'shape', '')}); expected {_EXPECTED_FILE}",
            file=path,
            layer=track,
        )
    return [np.asarray(cell) for cell in cells[:, 0]]


def _h5_class(node: h5py.HLObject) -> str:
    value = node.attrs.get("MATLAB_class", b"")
    return value.decode() if isinstance(value, bytes) else str(value)


def _cells_v73(path: Path, track: str) -> list[np.ndarray]:
    """Column 1 of ``pointList.pointList`` from a v7.3 (HDF5) file, one array per probe.

    MATLAB stores arrays transposed (HDF5 row-major) and cells as object references.
    """
    try:
        with h5py.File(path, "r") as mat:
            group = mat.get("pointList")
            if not isinstance(group, h5py.Group) or "pointList" not in group:
                raise InputError(
                    f"no struct variable 'pointList' with a field 'pointList' (variables found: "
                    f"{sorted(k for k in mat if not k.startswith('#'))}); expected "
                    f"{_EXPECTED_FILE}",
                    file=path,
                    layer=track,
                )
            cell = group["pointList"]
            if not isinstance(cell, h5py.Dataset) or _h5_class(cell) != "cell" or cell.ndim != 2:
                raise InputError(
                    f"pointList.pointList is not a 2-D cell array (MATLAB_class "
                    f"{_h5_class(cell)!r}); expected {_EXPECTED_FILE}",
                    file=path,
                    layer=track,
                )
            refs = cell[()].T  # back to MATLAB's (probes, 3)
            probes = []
            for ref in refs[:, 0]:
                data = mat[ref]
                if not isinstance(data, h5py.Dataset):  # a struct or object, not a matrix
                    probes.append(np.asarray(_h5_class(data) or "group"))
                elif data.attrs.get("MATLAB_empty", 0):
                    probes.append(np.empty((0, 3)))
                else:
                    probes.append(np.asarray(data[()]).T)
            return probes
    except OSError as exc:
        raise InputError(
            f"v7.3 (HDF5) MAT-file could not be read ({exc}); expected {_EXPECTED_FILE}",
            file=path,
            layer=track,
        ) from None


def probe_point_arrays(path: Path, track: str = "") -> tuple[list[np.ndarray], str]:
    """Every probe's raw point matrix (file columns, 1-based voxels) and the MAT version."""
    version = _mat_version(path, track)
    if version == 1:
        return _cells_v5(path, track), "v5/v7"
    if version == 2:
        return _cells_v73(path, track), "v7.3"
    raise InputError(
        f"MAT-file version {version} (v4) cannot hold a struct; expected {_EXPECTED_FILE}",
        file=path,
        layer=track,
    )


# ---------------------------------------------------------------------------------- reader


def _check_range(values: np.ndarray, plane: str, path: Path, track: str) -> None:
    """Refuse values outside the 1-based volume (with a voxel of slack for screen rounding)."""
    columns = PLANE_COLUMNS_APDVML[plane]
    for axis, column, size in zip(("AP", "DV", "ML"), columns, VOLUME_SHAPE_APDVML, strict=True):
        low, high = float(values[:, column].min()), float(values[:, column].max())
        if low < 0.0 or high > size + 1:
            raise InputError(
                f"read as {plane}, file column {column + 1} is {axis} but spans "
                f"[{low:g}, {high:g}]; expected 1-based 10 um voxel indices within [1, {size}] "
                "(the wrong slicing plane in histology_track_id, or not SHARP-Track values)",
                file=path,
                layer=track,
            )


def read(path: Path, track: str, hints: TrackHints) -> CcfTrack:
    """One probe of a SHARP-Track ``probe_points*.mat``, in CCF um (F7).

    Parameters
    ----------
    path
        The ``probe_points<suffix>.mat`` file (MAT v5/v7 or v7.3).
    track
        ``"<plane>_<probe number>"``: the slicing plane the points were clicked in
        (``coronal``, ``sagittal`` or ``transverse``) and the 1-based probe number (the row of
        ``pointList.pointList``, as SHARP-Track numbers probes).
    hints
        ``atlas`` must be blank or ``allen_mouse_10um``.

    Returns
    -------
    CcfTrack
        The probe's points in file order, CCF um (ML right, AP posterior, DV ventral), with a
        quantum of 10 um.

    Raises
    ------
    InputError
        Plane missing or unknown, probe number out of range, empty probe, not a SHARP-Track
        file, values outside the 10 um volume.
    """
    path = Path(path)
    plane, number = parse_track_id(track, path)
    check_atlas(
        hints, ATLAS, "SHARP-Track points are voxels of the 10 um Allen volume "
        "(annotation_volume_10um_by_index.npy)", path, track,
    )  # fmt: skip
    probes, version = probe_point_arrays(path, track)
    if not 1 <= number <= len(probes):
        raise InputError(
            f"probe {number} requested but the file holds {len(probes)} probe(s); expected a "
            f"probe number from 1 to {len(probes)} (rows of pointList.pointList)",
            file=path,
            layer=track,
            key="histology_track_id",
        )
    raw = probes[number - 1]
    if raw.size == 0:
        raise InputError(
            f"probe {number} of {len(probes)} has no points (a probe added with 'n' but never "
            "clicked); expected at least 2 clicked points",
            file=path,
            layer=track,
        )
    values = as_points(
        raw, f"probe {number} points (pointList.pointList{{{number},1}})", path, track
    )
    _check_range(values, plane, path, track)
    warnings: list[str] = []
    if not np.allclose(values, np.round(values), rtol=0.0, atol=1e-6):
        warnings.append(
            f"{path}: probe {number}: values are not whole voxel indices (SHARP-Track saves "
            "rounded clicks); the file may have been edited"
        )
    ccf_um = sharptrack_to_ccf_um(values, plane)
    log.info(
        "%s: SHARP-Track %s file, probe %d of %d, %d points, %s plane -> CCF um",
        path,
        version,
        number,
        len(probes),
        len(values),
        plane,
    )
    return CcfTrack(path, track, ccf_um, TOOL, tuple(warnings), quantum_um=VOXEL_UM)
