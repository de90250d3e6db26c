"""HERBS probe files (JingyiGF/HERBS, Python/Qt): merged-probe objects saved as ``<name>.pkl``.

HERBS saves a merged probe (``Save Merged Probes`` / ``Save Current Object``) as a pickle of
``{"type": "merged probe", "name": <probe name>, "data": <probe dict>}``. The probe dict holds the
user's picks (``data``: one (n, 3) array, or since 2022-12 a list with one array per piece) and
the fitted probe (``insertion_coords_3d`` ... ``terminus_vox``), all in HERBS's internal 3-D
frame: the Allen volume (AP, DV, ML) with AP and DV reversed and transposed to (ML, AP, DV), i.e.
x toward the right, y anterior, z dorsal, in voxels of the atlas, **relative to HERBS's bregma**
(``origin_3d``). The bregma itself is not saved, but ``insertion_vox`` is
``int(insertion + bregma)``, and the bregma is a whole voxel, so it is recovered exactly.

A HERBS coordinate ``c`` lies in voxel ``int(c)`` (HERBS looks regions up that way), so voxel
``k`` spans ``[k, k + 1)`` and its centre is ``k + 0.5``. Per axis, with ``n`` voxels::

    Allen index = c - 0.5            (ML, not reversed)
    Allen index = n - c - 0.5        (AP, DV: reversed)

then F7 um = index x voxel size, reordered to (ML, AP, DV). See ``docs/inputs/herbs.md``.

A pickle can run code when loaded, so the file is read with :class:`PlainDataUnpickler`, which
admits only numpy's array, dtype and scalar reconstruction and refuses every other global.
"""

from __future__ import annotations

import builtins
import importlib
import logging
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .ccf_tracks import CcfTrack, TrackHints, as_points, check_atlas

log = logging.getLogger(__name__)

TOOL = "herbs"
PROBE_TYPE = "merged probe"
#: HERBS 3-D axis k holds Allen index axis TO_HERBS[k] (Allen order AP, DV, ML): HERBS's own
#: ``atlas_axis_info.pkl`` value ``to_HERBS`` for the Allen mouse atlas.
TO_HERBS: tuple[int, int, int] = (2, 0, 1)
#: Per Allen axis (AP, DV, ML): reversed in HERBS (``direction_change`` of the same file).
DIRECTION_CHANGE: tuple[bool, bool, bool] = (True, True, False)
#: Allen (AP, DV, ML) -> F7 (ML, AP, DV).
F7_FROM_ALLEN: tuple[int, int, int] = (2, 0, 1)
#: Centre of voxel k in HERBS's continuous coordinates (voxel k spans [k, k + 1)).
VOXEL_CENTRE = 0.5
#: Allen CCFv3 volumes HERBS downloads, by voxel size (um): shape (AP, DV, ML).
ALLEN_SHAPES: dict[float, tuple[int, int, int]] = {
    10.0: (1320, 800, 1140),
    25.0: (528, 320, 456),
    50.0: (264, 160, 228),
}
_EXPECTED_FILE = (
    "a HERBS merged-probe object file: a pickled dict {'type': 'merged probe', 'name': ..., "
    "'data': {...}} as saved by 'Save Merged Probes' or 'Save Current Object'"
)
_PICKLE_RULE = "a pickle can run code; only plain data is read"


# ------------------------------------------------------------------------- safe unpickling


def _numpy_globals() -> dict[tuple[str, str], Any]:
    """The numpy reconstruction callables, under numpy 1 (``numpy.core``) and 2 names."""
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
        numeric = importlib.import_module("numpy._core.numeric")
    except ImportError:  # numpy < 2
        multiarray = importlib.import_module("numpy.core.multiarray")
        numeric = importlib.import_module("numpy.core.numeric")
    table: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for package in ("numpy.core", "numpy._core"):
        table[(f"{package}.multiarray", "_reconstruct")] = multiarray._reconstruct
        table[(f"{package}.multiarray", "scalar")] = multiarray.scalar
        table[(f"{package}.numeric", "_frombuffer")] = numeric._frombuffer
    for name in ("complex", "set", "frozenset"):
        table[("builtins", name)] = getattr(builtins, name)
    return table


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = _numpy_globals()


class PlainDataUnpickler(pickle.Unpickler):
    """An unpickler for plain data: numbers, strings, lists, tuples, dicts and numpy arrays.

    Every global a pickle names goes through :meth:`find_class`; anything outside
    :data:`ALLOWED_GLOBALS` is refused *before* it is imported or called.
    """

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        """The allowed object for ``module.name``; InputError for anything else."""
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            hint = ""
            if module.startswith(("PyQt5", "PyQt6", "pyqtgraph")):
                hint = (
                    " (a HERBS project file holds Qt objects; save the probe itself with "
                    "'Save Merged Probes' or 'Save Current Object')"
                )
            raise InputError(
                f"the pickle names {module}.{name}, which is refused: {_PICKLE_RULE} (numpy "
                f"arrays, numbers, strings, lists, tuples, dicts){hint}; expected {_EXPECTED_FILE}",
                file=self.path,
            )
        return found

    def persistent_load(self, pid: Any) -> Any:
        """Persistent ids reference outside objects: refused."""
        raise InputError(
            f"the pickle uses a persistent id, which is refused: {_PICKLE_RULE}", file=self.path
        )


def load_plain_pickle(path: Path) -> Any:
    """The content of a pickle file holding only plain data (InputError otherwise)."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return PlainDataUnpickler(handle, path).load()
    except InputError:
        raise
    except Exception as exc:  # damaged or not a pickle: many exception types
        raise InputError(
            f"not a readable pickle ({type(exc).__name__}: {exc}); expected {_EXPECTED_FILE}",
            file=path,
        ) from None


# ------------------------------------------------------------------------------ selection


def _probes(content: Any, path: Path, track: str) -> list[tuple[str, dict]]:
    """(name, probe dict) of every merged probe in an object file or a (plain) project file."""
    if isinstance(content, dict) and {"type", "data", "name"} <= set(content):
        kind = str(content["type"])
        if kind != PROBE_TYPE:
            extra = ""
            if "piece" in kind:
                extra = (
                    " (an unmerged piece: its picks are relative to a bregma the file does not "
                    "record; merge the pieces in HERBS first)"
                )
            raise InputError(
                f"object type {kind!r}{extra}; expected type {PROBE_TYPE!r}", file=path, layer=track
            )
        return [(str(content["name"]), content["data"])]
    objects = content.get("object_data") if isinstance(content, dict) else None
    if isinstance(objects, dict) and {"obj_name", "obj_type", "obj_data"} <= set(objects):
        kinds, names, datas = objects["obj_type"], objects["obj_name"], objects["obj_data"]
        return [
            (str(n), d) for k, n, d in zip(kinds, names, datas, strict=False) if k == PROBE_TYPE
        ]
    found = sorted(map(str, content)) if isinstance(content, dict) else type(content).__name__
    raise InputError(f"the pickle holds {found}; expected {_EXPECTED_FILE}", file=path, layer=track)


def _norm(text: str) -> str:
    return " ".join(str(text).split()).lower()


def select_probe(probes: list[tuple[str, dict]], track: str, path: Path) -> tuple[str, dict]:
    """The probe ``track`` names: its name (any case/spacing) or its 1-based position."""
    names = [name for name, _ in probes]
    expected = (
        f"the probe name {names[0]!r} or 1"
        if len(probes) == 1
        else f"a probe name ({', '.join(map(repr, names))}) or a number from 1 to {len(probes)}"
    )
    if not probes:
        raise InputError(
            f"the file holds no merged probe; expected {_EXPECTED_FILE}", file=path, layer=track
        )
    by_name = [k for k, name in enumerate(names) if _norm(name) == _norm(track)]
    by_index = int(track) - 1 if re.fullmatch(r"\s*\d+\s*", track or "") else None
    if by_index is not None and not 0 <= by_index < len(probes):
        by_index = None
    if len(by_name) > 1 or (by_name and by_index is not None and by_name[0] != by_index):
        raise InputError(
            f"histology_track_id {track!r} names more than one probe; expected {expected}",
            file=path,
            layer=track,
            key="histology_track_id",
        )
    chosen = by_name[0] if by_name else by_index
    if chosen is None:
        raise InputError(
            f"histology_track_id {track!r} is not a probe of this file; expected {expected}",
            file=path,
            layer=track,
            key="histology_track_id",
        )
    return probes[chosen]


# ----------------------------------------------------------------------------- geometry


def _vector(probe: dict, key: str, path: Path, track: str) -> np.ndarray:
    try:
        value = np.asarray(probe[key], dtype=float).reshape(3)
    except (KeyError, TypeError, ValueError):
        raise InputError(
            f"probe key {key!r} is missing or not 3 numbers (keys found: "
            f"{sorted(map(str, probe))}); expected a HERBS merged-probe dict",
            file=path,
            layer=track,
            key=key,
        ) from None
    if not np.isfinite(value).all():
        raise InputError(f"probe key {key!r} is not finite", file=path, layer=track, key=key)
    return value


def _fit_key(probe: dict, end: str) -> str:
    """HERBS <= 2022-11 kept the raw fit in ``<end>_coords_3d``, the corrected one in ``new_``."""
    return f"new_{end}_coords_3d" if f"new_{end}_coords_3d" in probe else f"{end}_coords_3d"


def herbs_bregma_vox(probe: dict, path: Path, track: str) -> np.ndarray:
    """HERBS's bregma (``origin_3d``), whole HERBS voxels, from ``insertion_vox`` and the fit."""
    start = _vector(probe, _fit_key(probe, "insertion"), path, track)
    start_vox = _vector(probe, "insertion_vox", path, track)
    if "new_insertion_coords_3d" in probe:  # 2022-06..10: insertion_vox = start + bregma
        bregma = np.round(start_vox - start)
        whole = np.allclose(start_vox - start, bregma, rtol=0, atol=1e-6)
    else:  # since 2022-11: insertion_vox = int(start + bregma)
        bregma = start_vox - np.floor(start)
        bregma = bregma + (start_vox - np.floor(start + bregma))  # float rounding at an edge
        whole = np.array_equal(start_vox, np.round(start_vox))
    if not whole:
        raise InputError(
            f"insertion_vox {start_vox.tolist()} and {_fit_key(probe, 'insertion')} "
            f"{start.tolist()} do not differ by a whole-voxel bregma; expected a file HERBS wrote",
            file=path,
            layer=track,
        )
    end = _vector(probe, _fit_key(probe, "terminus"), path, track)
    end_vox = _vector(probe, "terminus_vox", path, track)
    if not np.array_equal(np.floor(end + bregma), end_vox):
        raise InputError(
            f"terminus_vox {end_vox.tolist()} is not int(terminus + bregma {bregma.tolist()}); "
            "expected the voxel and bregma-relative coordinates of one HERBS fit",
            file=path,
            layer=track,
        )
    return bregma


def voxel_size_um(probe: dict, path: Path, track: str) -> float:
    """The atlas voxel size: ``insertion_coords`` (um) / ``insertion_coords_3d`` (voxels)."""
    ratios = []
    for end in ("insertion", "terminus"):
        vox = _vector(probe, _fit_key(probe, end), path, track)
        if np.linalg.norm(vox) > 1.0:
            ratios.append(
                np.linalg.norm(_vector(probe, f"{end}_coords", path, track)) / np.linalg.norm(vox)
            )
    for size in ALLEN_SHAPES:
        if ratios and all(abs(r - size) < 1e-3 * size for r in ratios):
            return size
    raise InputError(
        f"micrometres / voxels = {[round(float(r), 4) for r in ratios]}; expected one HERBS Allen "
        f"atlas voxel size ({', '.join(f'{s:g}' for s in ALLEN_SHAPES)} um)",
        file=path,
        layer=track,
    )


def herbs_vox_to_ccf_um(vox: np.ndarray, voxel_um: float) -> np.ndarray:
    """Absolute HERBS voxel coordinates (x, y, z) -> CCF um (ML, AP, DV), voxel centres at k."""
    vox = np.atleast_2d(np.asarray(vox, dtype=float))
    shape = ALLEN_SHAPES[voxel_um]
    allen = np.empty_like(vox)
    for herbs_axis, allen_axis in enumerate(TO_HERBS):
        c = vox[:, herbs_axis]
        reversed_ = DIRECTION_CHANGE[allen_axis]
        allen[:, allen_axis] = (
            shape[allen_axis] - c - VOXEL_CENTRE if reversed_ else c - VOXEL_CENTRE
        )
    return allen[:, list(F7_FROM_ALLEN)] * voxel_um


def _picks(probe: dict, path: Path, track: str) -> np.ndarray | None:
    """The user's picks (``data``: an array, or a list of per-piece arrays); None if absent."""
    data = probe.get("data")
    if data is None or (isinstance(data, list | tuple) and not data):
        return None
    pieces = data if isinstance(data, list | tuple) else [data]
    try:
        arrays = [np.asarray(piece, dtype=float).reshape(-1, 3) for piece in pieces]
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"picks ('data') are not (n, 3) numbers ({exc}); expected one (n, 3) array or a list "
            "of them (one per piece)",
            file=path,
            layer=track,
            key="data",
        ) from None
    return np.concatenate(arrays) if arrays else None


def read(path: Path, track: str, hints: TrackHints) -> CcfTrack:
    """One probe of a HERBS merged-probe ``.pkl``, in CCF um (F7).

    Parameters
    ----------
    path
        The pickle HERBS saved (``<probe name>.pkl``); read with :class:`PlainDataUnpickler`.
    track
        The probe's name as HERBS shows it (e.g. ``probe 0``, any case) or its 1-based number
        among the merged probes of the file (``1`` for an object file, which holds one probe).
    hints
        ``atlas`` must be blank or ``allen_mouse_<voxel size>um`` matching the file.

    Returns
    -------
    CcfTrack
        The user's picks (all pieces, in file order), or insertion -> terminus when the file has
        no picks, in CCF um (ML right, AP posterior, DV ventral); continuous (quantum 0).

    Raises
    ------
    InputError
        A refused pickle global, not a merged-probe file, unknown probe, inconsistent or
        non-Allen coordinates, atlas mismatch.
    """
    path = Path(path)
    content = load_plain_pickle(path)
    name, probe = select_probe(_probes(content, path, track), track, path)
    if not isinstance(probe, dict):
        raise InputError(
            f"probe {name!r}: 'data' is a {type(probe).__name__}; expected the merged-probe dict",
            file=path,
            layer=track,
        )
    voxel_um = voxel_size_um(probe, path, track)
    check_atlas(
        hints, f"allen_mouse_{voxel_um:g}um",
        f"the file's micrometres / voxels give {voxel_um:g} um voxels", path, track,
    )  # fmt: skip
    bregma = herbs_bregma_vox(probe, path, track)
    picks = _picks(probe, path, track)
    if picks is not None and len(picks) >= 2:
        what, relative = f"probe {name!r} picks ('data')", picks
    else:
        ends = [
            _vector(probe, _fit_key(probe, end), path, track) for end in ("insertion", "terminus")
        ]
        what, relative = f"probe {name!r} insertion -> terminus", np.array(ends)
    points = as_points(relative, what, path, track) + bregma
    ccf_um = herbs_vox_to_ccf_um(points, voxel_um)
    extent = np.array(ALLEN_SHAPES[voxel_um])[list(F7_FROM_ALLEN)] * voxel_um
    if (ccf_um < -voxel_um).any() or (ccf_um > extent).any():
        raise InputError(
            f"{what} fall outside the {voxel_um:g} um Allen volume (CCF um "
            f"{np.round(ccf_um.min(0)).tolist()} .. {np.round(ccf_um.max(0)).tolist()}); "
            "expected a probe traced on HERBS's Allen mouse volume atlas (not a slice atlas)",
            file=path,
            layer=track,
        )
    log.info(
        "%s: HERBS probe %r, %s, %d points, %g um voxels, HERBS bregma voxel %s -> CCF um",
        path,
        name,
        what.split(" ", 2)[-1],
        len(points),
        voxel_um,
        bregma.astype(int).tolist(),
    )
    return CcfTrack(path, track, ccf_um, TOOL, (), quantum_um=0.0)
