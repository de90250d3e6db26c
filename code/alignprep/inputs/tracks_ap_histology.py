"""AP_histology (Peters lab MATLAB toolbox) probe tracks: ``probe_ccf.mat`` and the newer
``AP_histology_processing.mat``, MAT v7 (scipy) or v7.3 (HDF5, h5py).

Both files store MATLAB 1-based subscripts into the Allen CCF 10 um volume the toolbox loads
(``template_volume_10um.npy``, (AP, DV, ML), no flip), one row per point as [AP, DV, ML]:

* ``probe_ccf.mat``: ``probe_ccf(k).points`` (n x 3), the user's clicks on probe ``k``;
* ``AP_histology_processing.mat``: ``AP_histology_processing.annotation(k).vertices_ccf(s)``,
  fields ``ap``, ``ml``, ``dv`` per image ``s``, concatenated in image order.

F7 um = (subscript - 1) x 10, reordered to (ML, AP, DV). ``histology_track_id`` is the 1-based
probe (annotation) number as AP_histology numbers them (``2``, ``probe2``, ``probe 2``) or, in a
processing file, an annotation label. See ``docs/inputs/ap_histology.md``.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io
from scipy.io.matlab import MatlabFunction, MatlabObject, MatlabOpaque

from ..errors import InputError
from .ccf_tracks import CcfTrack, TrackHints, as_points, check_atlas

log = logging.getLogger(__name__)

TOOL = "ap_histology"
VOXEL_UM = 10.0
#: Axis of each column of AP_histology's coordinate triplets (its "native CCF order").
FILE_AXES: tuple[str, str, str] = ("AP", "DV", "ML")
#: The subscript of the first voxel: MATLAB indexes from 1.
MATLAB_BASE = 1.0
F7_AXES = ("ML", "AP", "DV")
PROBE_VARIABLE = "probe_ccf"
PROCESSING_VARIABLE = "AP_histology_processing"
ATLASES = ("allen_mouse_10um",)
_NUMBER = re.compile(r"^(?:probe[\s_-]*)?(\d+)$", re.IGNORECASE)
_NUMERIC_CLASSES = {
    "double", "single", "logical", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64",
}  # fmt: skip


def read(path: Path, track: str, hints: TrackHints) -> CcfTrack:
    """One probe of an AP_histology file, in CCF um (F7).

    Parameters
    ----------
    path
        ``probe_ccf.mat`` or ``AP_histology_processing.mat`` (MAT v7 or v7.3).
    track
        ``histology_track_id``: the 1-based probe number (``2``, ``probe2``) or, in a processing
        file, an annotation label.
    hints
        ``atlas`` must be empty or ``allen_mouse_10um``: the toolbox only uses the 10 um CCF.

    Returns
    -------
    CcfTrack
        The probe's points in file order, ``quantum_um`` = 10.

    Raises
    ------
    InputError
        Not an AP_histology file, a missing field, a bad selection or bad points.
    """
    path = Path(path)
    check_atlas(
        hints, ATLASES[0], "AP_histology always stores subscripts of the Allen CCF 10 um volume",
        path, track,
    )  # fmt: skip
    variables = _load(path, track)
    warnings: tuple[str, ...] = ()
    if PROBE_VARIABLE in variables:
        subscripts, what = _probe_ccf_points(variables[PROBE_VARIABLE], path, track)
    elif PROCESSING_VARIABLE in variables:
        subscripts, what, warnings = _processing_points(variables[PROCESSING_VARIABLE], path, track)
    else:
        raise InputError(
            f"no variable {PROBE_VARIABLE!r} or {PROCESSING_VARIABLE!r} (found "
            f"{sorted(variables)}); expected AP_histology's probe_ccf.mat or "
            "AP_histology_processing.mat",
            file=path,
            layer=track,
        )
    points = as_points(subscripts, what, path, track)
    ccf_um = subscripts_to_ccf_um(points)
    log.debug("%s %s: %d points from %s", path, track, len(ccf_um), what)
    return CcfTrack(path, track, ccf_um, TOOL, warnings, quantum_um=VOXEL_UM)


def subscripts_to_ccf_um(subscripts: np.ndarray) -> np.ndarray:
    """AP_histology (AP, DV, ML) 1-based 10 um subscripts -> F7 (ML, AP, DV) um."""
    columns = [FILE_AXES.index(axis) for axis in F7_AXES]
    return (np.asarray(subscripts, float)[:, columns] - MATLAB_BASE) * VOXEL_UM


def _select(track: str, count: int, labels: list[str | None], path: Path, what: str) -> int:
    """The 0-based index of ``track`` among ``count`` probes (see the module docstring)."""
    text = str(track).strip()
    by_label = [k for k, label in enumerate(labels) if label is not None and label.strip() == text]
    match = _NUMBER.match(text)
    number = int(match.group(1)) if match else None
    expected = f"expected 1..{count} (1-based, as AP_histology numbers them) or probe<N>"
    if labels:
        expected += f", or one of the labels {[label for label in labels if label is not None]}"
    if match and len(match.group(1)) > 1 and match.group(1).startswith("0"):
        raise InputError(
            f"{text!r} has a leading zero, like IBL's 0-based probe00 folders; the file holds "
            f"{count} {what}; {expected}",
            file=path,
            layer=track,
        )
    if len(by_label) > 1:
        raise InputError(
            f"{len(by_label)} {what} are labelled {text!r}; {expected}", file=path, layer=track
        )
    if by_label:
        if number is not None and number - 1 != by_label[0]:
            raise InputError(
                f"{text!r} is the label of {what} number {by_label[0] + 1} but also reads as "
                f"number {number}: ambiguous; use the number {by_label[0] + 1}",
                file=path,
                layer=track,
            )
        return by_label[0]
    if number is None or not 1 <= number <= count:
        found = "is not a probe number" if number is None else "is out of range"
        raise InputError(
            f"{text!r} {found}: the file holds {count} {what}; {expected}", file=path, layer=track
        )
    return number - 1


def _field(record: dict[str, Any], name: str, path: Path, track: str, where: str) -> Any:
    if name not in record:
        raise InputError(
            f"{where} has no field {name!r} (fields: {sorted(record)}); expected AP_histology's "
            f"layout (docs/inputs/ap_histology.md)",
            file=path,
            layer=track,
            key=name,
        )
    return record[name]


def _structs(value: Any, path: Path, track: str, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise InputError(
            f"{where} is not a MATLAB struct (found {type(value).__name__}); expected "
            "AP_histology's layout",
            file=path,
            layer=track,
        )
    return value


def _numbers(value: Any, path: Path, track: str, where: str) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiub":
        raise InputError(
            f"{where} is not a numeric array (found {type(value).__name__}); expected numbers",
            file=path,
            layer=track,
        )
    return value.astype(float)


def _probe_ccf_points(value: Any, path: Path, track: str) -> tuple[np.ndarray, str]:
    probes = _structs(value, path, track, PROBE_VARIABLE)
    k = _select(track, len(probes), [], path, "probes")
    where = f"probe_ccf({k + 1})"
    points = _numbers(_field(probes[k], "points", path, track, where), path, track, where)
    points = points.reshape(0, 3) if points.size == 0 else points
    return points, f"{where}.points [AP, DV, ML]"


def _processing_points(
    value: Any, path: Path, track: str
) -> tuple[np.ndarray, str, tuple[str, ...]]:
    processing = _structs(value, path, track, PROCESSING_VARIABLE)
    if len(processing) != 1:
        raise InputError(
            f"{PROCESSING_VARIABLE} holds {len(processing)} structs; expected one", file=path
        )
    where = PROCESSING_VARIABLE
    annotations = _structs(
        _field(processing[0], "annotation", path, track, where), path, track, f"{where}.annotation"
    )
    labels = [a.get("label") if isinstance(a.get("label"), str) else None for a in annotations]
    k = _select(track, len(annotations), labels, path, "annotations")
    where = f"{where}.annotation({k + 1})"
    named = _NUMBER.match((labels[k] or "").strip())
    warnings: tuple[str, ...] = ()
    if named and int(named.group(1)) != k + 1:  # e.g. after deleting an earlier annotation
        warnings = (f"{where} is labelled {labels[k]!r}: the label names another number",)
    if "vertices_ccf" not in annotations[k]:
        raise InputError(
            f"{where} has no field 'vertices_ccf' (fields: {sorted(annotations[k])}): saved by "
            "an AP_histology version that kept histology pixels only; expected vertices_ccf "
            "(re-save the annotations with a current AP_histology)",
            file=path,
            layer=track,
            key="vertices_ccf",
        )
    slices = _structs(annotations[k]["vertices_ccf"], path, track, f"{where}.vertices_ccf")
    rows = []
    for s, record in enumerate(slices, start=1):
        part = f"{where}.vertices_ccf({s})"
        axes = {
            axis: _numbers(_field(record, axis, path, track, part), path, track, f"{part}.{axis}")
            for axis in ("ap", "dv", "ml")
        }
        sizes = {axis: values.size for axis, values in axes.items()}
        if len(set(sizes.values())) != 1:
            raise InputError(
                f"{part} has {sizes} values; expected as many ap, dv and ml values",
                file=path,
                layer=track,
            )
        rows.append(np.column_stack([axes[a].ravel(order="F") for a in ("ap", "dv", "ml")]))
    points = np.concatenate(rows) if rows else np.zeros((0, 3))
    return points, f"{where}.vertices_ccf (ap, dv, ml)", warnings


# ----------------------------------------------------------------------------- .mat decoding
# Neutral form of both readers: struct -> list of dicts (MATLAB linear order), cell -> list,
# char -> str, numeric -> ndarray in MATLAB's shape, MATLAB objects (tables...) -> None.


def _load(path: Path, track: str) -> dict[str, Any]:
    """The file's variables in the neutral form (v7.3 through h5py, older through scipy)."""
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as file:
            return {name: _from_h5(file, file[name]) for name in file if not name.startswith("#")}
    try:
        raw = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=True, mat_dtype=False)
    except (
        ValueError,
        TypeError,
        IndexError,
        NotImplementedError,
        scipy.io.matlab.MatReadError,
    ) as exc:
        raise InputError(
            f"not a readable MATLAB .mat file ({exc}); expected AP_histology's probe_ccf.mat or "
            "AP_histology_processing.mat (MAT v7 or v7.3)",
            file=path,
            layer=track,
        ) from None
    return {name: _from_scipy(value) for name, value in raw.items() if not name.startswith("__")}


def _from_scipy(value: Any) -> Any:
    if isinstance(value, (MatlabOpaque, MatlabObject, MatlabFunction)):
        return None
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.names:  # struct array
        return [
            {name: _from_scipy(record[name]) for name in value.dtype.names}
            for record in value.ravel(order="F")
        ]
    if value.dtype.kind == "U":
        return "".join(value.ravel(order="F"))
    if value.dtype == object:  # cell array
        return [_from_scipy(item) for item in value.ravel(order="F")]
    return value


def _attr(obj: h5py.HLObject, name: str) -> str | None:
    value = obj.attrs.get(name)
    return None if value is None else np.asarray(value).item().decode("ascii", "replace")


def _fields(group: h5py.Group) -> list[str]:
    names = group.attrs.get("MATLAB_fields")
    if names is None:
        return list(group)
    return [b"".join(np.asarray(n).tolist()).decode("ascii") for n in names]


def _from_h5(file: h5py.File, obj: h5py.HLObject) -> Any:
    """MATLAB v7.3 storage -> neutral form: HDF5 dims are MATLAB's reversed (C order = linear)."""
    matlab_class = _attr(obj, "MATLAB_class")
    if isinstance(obj, h5py.Group):
        if matlab_class != "struct":
            return None
        fields = [name for name in _fields(obj) if name in obj]
        members = [obj[name] for name in fields]
        is_array = bool(members) and all(
            isinstance(m, h5py.Dataset)
            and m.dtype == h5py.ref_dtype
            and "MATLAB_class" not in m.attrs
            for m in members
        )
        if not is_array:
            return [{name: _from_h5(file, obj[name]) for name in fields}]
        refs = {name: obj[name][()].ravel() for name in fields}
        count = refs[fields[0]].size
        return [
            {name: _from_h5(file, file[refs[name][k]]) for name in fields} for k in range(count)
        ]
    if obj.attrs.get("MATLAB_empty", 0):  # the dataset holds the dims, not data
        if matlab_class == "char":
            return ""
        if matlab_class in ("cell", "struct"):
            return []
        return np.zeros(tuple(int(n) for n in np.asarray(obj[()]).ravel()))
    if matlab_class == "char":
        return "".join(chr(c) for c in np.asarray(obj[()]).ravel())
    if matlab_class == "cell":
        return [_from_h5(file, file[ref]) for ref in obj[()].ravel()]
    if matlab_class not in _NUMERIC_CLASSES or "MATLAB_object_decode" in obj.attrs:
        return None
    data = np.asarray(obj[()])
    return None if data.dtype.names else data.T
