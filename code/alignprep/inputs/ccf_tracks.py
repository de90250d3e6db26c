"""Probe tracks traced by other tools, already in the Allen CCF: one type, one registry.

Each supported tool has its own module (``tracks_<format>.py``) with a ``read(path, track,
hints) -> CcfTrack`` function that turns the tool's file into the pipeline's CCF micrometres
(F7 in ``docs/coordinates.md``: ML toward the animal's right, AP posterior, DV ventral, from the
centre of the Allen volume's corner voxel; i.e. Allen array index x resolution, no flip). The
rest of the pipeline only sees :class:`CcfTrack`; the plausibility checks of
:mod:`alignprep.inputs.track_checks` run on every one of them, whatever the format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..reads import note_file
from .locate import one_file_below

#: ``annotation_format`` values of the manifest -> the module that reads them. ``neuroglancer``
#: (alias ``json``) is the light-sheet path (:mod:`alignprep.inputs.neuroglancer`).
FORMATS: dict[str, str] = {
    "brainglobe": "tracks_brainglobe",
    "ap_histology": "tracks_ap_histology",
    "sharptrack": "tracks_sharptrack",
    "herbs": "tracks_herbs",
    "ccf_csv": "tracks_ccf_csv",
}
NEUROGLANCER = "neuroglancer"
FORMAT_ALIASES = {"json": NEUROGLANCER}
ALL_FORMATS = (NEUROGLANCER, *FORMATS)


@dataclass(frozen=True)
class TrackHints:
    """What the manifest row says beyond the file: the atlas the tool used (``atlas`` column,
    e.g. ``allen_mouse_25um``), when the file does not say it itself."""

    atlas: str | None = None


@dataclass(frozen=True)
class CcfTrack:
    """One probe track from a tracing tool, in CCF um (F7), in the file's point order.

    ``quantum_um`` is the format's own quantisation (a voxel size when the tool stores voxel
    indices; 0 when it stores micrometres).
    """

    file: Path
    track: str
    ccf_um: np.ndarray  # (n, 3): ML right+, AP posterior+, DV ventral+
    tool: str
    warnings: tuple[str, ...] = ()
    quantum_um: float = 0.0


Reader = Callable[[Path, str, TrackHints], CcfTrack]


def normalise_format(text: str) -> str:
    """The canonical format name of a manifest cell ("" -> neuroglancer); ValueError if unknown."""
    fmt = (text or NEUROGLANCER).strip().lower()
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    if fmt not in ALL_FORMATS:
        raise ValueError(
            f"annotation_format {text!r} is not supported; expected one of {', '.join(ALL_FORMATS)}"
            " (json = neuroglancer)"
        )
    return fmt


def reader(fmt: str) -> Reader:
    """The ``read`` function of a CCF format."""
    return import_module(f"{__package__}.{FORMATS[fmt]}").read  # type: ignore[no-any-return]


def find_track_file(data_root: Path, probe_file: str, mouse_id: str) -> Path:
    """``data_root/*/<probe_file>`` (the exact file name), one folder below the data root.

    Tools write fixed names (``probe_ccf.mat``), so when several folders hold the name, the one
    whose folder name contains the mouse id is taken; anything else ambiguous is refused.
    """
    hint = " (give the file name with its extension)"
    found = one_file_below(data_root, probe_file, probe_file, "track file", hint, mouse_id)
    return note_file(found)


def as_points(values: object, what: str, file: Path, track: str) -> np.ndarray:
    """``values`` as a finite (n >= 2, 3) float array, or an InputError saying what was found."""
    try:
        points = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} are not numbers ({exc})", file=file, layer=track) from None
    if points.ndim != 2 or points.shape[1] != 3:
        raise InputError(
            f"{what} have shape {points.shape}; expected (n, 3)", file=file, layer=track
        )
    if len(points) < 2:
        raise InputError(
            f"{what}: {len(points)} point(s); at least 2 are needed (entry and tip)",
            file=file,
            layer=track,
        )
    if not np.isfinite(points).all():
        raise InputError(f"{what} hold NaN or infinite values", file=file, layer=track)
    return points


def check_atlas(hints: TrackHints, expected: str, why: str, file: Path, track: str) -> None:
    """Refuse a manifest ``atlas`` cell other than blank or ``expected`` (the atlas the file's
    numbers are in, for the reason ``why``)."""
    atlas = (hints.atlas or "").strip().lower()
    if atlas and atlas != expected:
        raise InputError(
            f"the manifest's atlas is {hints.atlas!r}, but {why}; expected atlas {expected!r} "
            "or blank",
            file=file,
            layer=track,
            key="atlas",
        )
