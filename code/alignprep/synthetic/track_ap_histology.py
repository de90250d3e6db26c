"""AP_histology probe files written from CCF um truth, in the toolbox's own on-disk layout.

Two files, each as MATLAB's ``save`` writes it, in v7 (MAT v5, ``scipy.io.savemat``) or v7.3
(HDF5, ``h5py``; MATLAB's attributes, references and transposed storage, 512-byte header):

* ``probe_ccf.mat``: variable ``probe_ccf``, an (n_probes x 1) struct array with ``points``
  (n x 3, [AP, DV, ML]), ``trajectory_areas`` and ``trajectory_coords`` (2 x 3, [AP, DV, ML]),
  as ``AP_get_probe_histology.m`` / ``annotate_neuropixels.m`` save it;
* ``AP_histology_processing.mat``: variable ``AP_histology_processing`` (scalar struct) whose
  ``annotation`` is a (1 x n) struct array of ``label``, ``vertices_histology`` (n_images x 1 cell)
  and ``vertices_ccf`` (n_images x 1 struct array of column vectors ``ap``, ``ml``, ``dv``), as
  ``annotator.m`` + ``annotation2ccf.m`` save it.

Every coordinate is a MATLAB 1-based subscript into the Allen 10 um volume (AP, DV, ML):
``value = ccf_um / 10 + 1`` per axis (docs/inputs/ap_histology.md). This module derives that from
the toolbox's source independently of the reader. ``trajectory_areas`` is a MATLAB ``table`` in
the real files (an opaque MCOS object); v7.3 gets an opaque-object stub, v5 a numeric stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import scipy.io

VOXEL_UM = 10.0
PROBE_CCF_FILE = "probe_ccf.mat"
PROCESSING_FILE = "AP_histology_processing.mat"
VERSIONS = ("7", "7.3")


def ccf_um_to_ap_histology(ccf_um: np.ndarray) -> np.ndarray:
    """F7 (ML, AP, DV) um -> AP_histology [AP, DV, ML] 1-based 10 um subscripts."""
    ml, ap, dv = np.asarray(ccf_um, float).T
    return np.column_stack([ap, dv, ml]) / VOXEL_UM + 1.0


@dataclass(frozen=True)
class Opaque:
    """A MATLAB object saved as MCOS (e.g. a ``table``): readable only by MATLAB."""

    matlab_class: str


class StructArray:
    """A MATLAB struct array: records (dicts with the same keys) and a MATLAB shape."""

    def __init__(self, records: Sequence[dict[str, Any]], shape: tuple[int, int]) -> None:
        self.records = list(records)
        self.shape = shape
        self.fields = list(records[0]) if records else []


def _cell(values: Sequence[Any], shape: tuple[int, int]) -> np.ndarray:
    out = np.empty(shape, dtype=object)
    for k, value in enumerate(values):
        out[np.unravel_index(k, shape, order="F")] = value
    return out


def _trajectory_coords(points: np.ndarray) -> np.ndarray:
    """[first; last] rounded subscripts along the points' main axis (what the tool stores)."""
    centre = points.mean(axis=0)
    direction = np.linalg.svd(points - centre, full_matrices=False)[2][0]
    direction = direction if direction[1] >= 0 else -direction  # downward in DV
    along = (points - centre) @ direction
    return np.round(centre + np.array([along.min(), along.max()])[:, None] * direction)


def probe_ccf_struct(tracks_ccf_um: Sequence[np.ndarray], opaque: bool) -> StructArray:
    """``probe_ccf`` of the tracks: points sorted by DV as the toolbox sorts them."""
    records = []
    for ccf_um in tracks_ccf_um:
        points = ccf_um_to_ap_histology(ccf_um)
        points = points[np.argsort(points[:, 1], kind="stable")]
        areas: Any = Opaque("table") if opaque else np.arange(1.0, 4.0)[:, None]
        records.append(
            {
                "points": points,
                "trajectory_areas": areas,
                "trajectory_coords": _trajectory_coords(points),
            }
        )
    return StructArray(records, (len(records), 1))


def processing_struct(
    tracks_ccf_um: Sequence[np.ndarray], labels: Sequence[str] | None, n_images: int
) -> dict[str, Any]:
    """``AP_histology_processing`` with one annotation per track, 2 vertices per slice."""
    labels = (
        list(labels)
        if labels is not None
        else [f"probe {k + 1}" for k in range(len(tracks_ccf_um))]
    )
    annotations = []
    for label, ccf_um in zip(labels, tracks_ccf_um, strict=True):
        points = ccf_um_to_ap_histology(ccf_um)
        chunks = np.array_split(np.arange(len(points)), int(np.ceil(len(points) / 2)))
        slices: list[dict[str, Any]] = [
            {"ap": np.zeros((0, 0)), "ml": np.zeros((0, 0)), "dv": np.zeros((0, 0))}
            for _ in range(n_images)
        ]
        histology: list[np.ndarray] = [np.zeros((0, 0)) for _ in range(n_images)]
        for image, rows in enumerate(chunks, start=1):  # image 0 left empty on purpose
            ap, dv, ml = points[rows].T
            slices[image] = {"ap": ap[:, None], "ml": ml[:, None], "dv": dv[:, None]}
            histology[image] = np.column_stack([ml, dv]) * 2.5  # any pixel coordinates
        annotations.append(
            {
                "label": label,
                "vertices_histology": _cell(histology, (n_images, 1)),
                "vertices_ccf": StructArray(slices, (n_images, 1)),
            }
        )
    histology_ccf = {
        "slice_vector": np.array([[1.0, 0.0, 0.0]]),
        "slice_points": np.column_stack(
            [np.linspace(400, 900, n_images), np.full(n_images, 400.0), np.full(n_images, 570.0)]
        ),
        "atlas2histology_tform": _cell([Opaque("affinetform2d")] * n_images, (n_images, 1)),
    }
    return {
        "image_order": np.arange(1.0, n_images + 1)[:, None],
        "histology_ccf": histology_ccf,
        "annotation": StructArray(annotations, (1, len(annotations))),
    }


def write_probe_ccf(path: Path, tracks_ccf_um: Sequence[np.ndarray], version: str = "7") -> Path:
    """``probe_ccf.mat`` holding one probe per track (probe k = track k, 1-based)."""
    return _write(
        Path(path), "probe_ccf", probe_ccf_struct(tracks_ccf_um, version == "7.3"), version
    )


def write_histology_processing(
    path: Path,
    tracks_ccf_um: Sequence[np.ndarray],
    version: str = "7",
    labels: Sequence[str] | None = None,
    n_images: int | None = None,
) -> Path:
    """``AP_histology_processing.mat`` holding one annotation per track."""
    longest = max(len(t) for t in tracks_ccf_um)
    n_images = n_images or int(np.ceil(longest / 2)) + 2
    value = processing_struct(tracks_ccf_um, labels, n_images)
    return _write(Path(path), "AP_histology_processing", value, version)


def _write(path: Path, name: str, value: Any, version: str) -> Path:
    if version not in VERSIONS:
        raise ValueError(f"version {version!r}; expected one of {VERSIONS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if version == "7":
        scipy.io.savemat(path, {name: _to_scipy(value)}, do_compression=True, oned_as="column")
    else:
        write_v73(path, {name: value})
    return path


# ----------------------------------------------------------------------------- MAT v5 (scipy)


def _to_scipy(value: Any) -> Any:
    if isinstance(value, StructArray):
        out = np.empty(value.shape, dtype=[(f, object) for f in value.fields])
        for k, record in enumerate(value.records):
            index = np.unravel_index(k, value.shape, order="F")
            for field in value.fields:
                out[field][index] = _to_scipy(record[field])
        return out
    if isinstance(value, dict):
        return {k: _to_scipy(v) for k, v in value.items()}
    if isinstance(value, Opaque):
        return np.zeros((0, 0))  # scipy cannot write MCOS objects
    if isinstance(value, np.ndarray) and value.dtype == object:  # a cell array
        out = np.empty(value.shape, dtype=object)
        for index in np.ndindex(value.shape):
            out[index] = _to_scipy(value[index])
        return out
    return value


# ----------------------------------------------------------------------------- MAT v7.3 (HDF5)

_REF = h5py.ref_dtype


class _Refs:
    """MATLAB's ``#refs#`` group: referenced values under short generated names."""

    def __init__(self, file: h5py.File) -> None:
        self.group = file.create_group("#refs#")
        self.count = 0
        empty = self.group.create_dataset("a", data=np.array([0, 0], dtype=np.uint64))
        _set_class(empty, "canonical empty")
        empty.attrs["MATLAB_empty"] = np.uint8(1)

    def add(self, value: Any) -> h5py.Reference:
        self.count += 1
        name, n = "", self.count
        while True:  # a, b, ..., z, A, ..., Z, ba, bb, ... (after the canonical empty "a")
            name = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"[n % 52] + name
            n //= 52
            if n == 0:
                break
        return _put(self.group, name, value, self).ref


def _set_class(obj: h5py.HLObject, matlab_class: str) -> None:
    obj.attrs.create("MATLAB_class", np.bytes_(matlab_class))


def _set_fields(group: h5py.Group, fields: Sequence[str]) -> None:
    vlen = h5py.vlen_dtype(np.dtype("S1"))
    names = np.empty(len(fields), dtype=object)
    for k, field in enumerate(fields):
        names[k] = np.array(list(field), dtype="S1")
    group.attrs.create("MATLAB_fields", names, dtype=vlen)


def _put(parent: h5py.Group, name: str, value: Any, refs: _Refs) -> h5py.HLObject:
    """Write ``value`` as MATLAB v7.3 does: dims reversed (column-major data, C-order HDF5)."""
    if isinstance(value, dict):
        group = parent.create_group(name)
        _set_class(group, "struct")
        _set_fields(group, list(value))
        for field, item in value.items():
            _put(group, field, item, refs)
        return group
    if isinstance(value, StructArray) and value.shape == (1, 1):
        return _put(parent, name, value.records[0], refs)  # MATLAB writes 1x1 structs in place
    if isinstance(value, StructArray):
        group = parent.create_group(name)
        _set_class(group, "struct")
        _set_fields(group, value.fields)
        for field in value.fields:
            stored = np.empty(value.shape[::-1], dtype=_REF)
            for k, record in enumerate(value.records):
                stored[np.unravel_index(k, value.shape[::-1])] = refs.add(record[field])
            group.create_dataset(field, data=stored, dtype=_REF)  # no MATLAB_class: struct array
        return group
    if isinstance(value, Opaque):  # an MCOS reference (the object itself lives in #subsystem#)
        data = np.array([[0xDD000000, 2, 1, 1, 1, 1]], dtype=np.uint32)
        dataset = parent.create_dataset(name, data=data)
        _set_class(dataset, value.matlab_class)
        dataset.attrs["MATLAB_object_decode"] = np.int32(3)
        return dataset
    if isinstance(value, str):
        dataset = parent.create_dataset(name, data=np.array([[ord(c)] for c in value], np.uint16))
        _set_class(dataset, "char")
        dataset.attrs["MATLAB_int_decode"] = np.int32(2)
        return dataset
    array = np.asarray(value)
    if array.dtype == object:  # a cell array
        stored = np.empty(array.shape[::-1], dtype=_REF)
        for k in range(array.size):
            index = np.unravel_index(k, array.shape, order="F")
            stored[index[::-1]] = refs.add(array[index])
        dataset = parent.create_dataset(name, data=stored, dtype=_REF)
        _set_class(dataset, "cell")
        return dataset
    if array.size == 0:
        dataset = parent.create_dataset(name, data=np.array(array.shape, dtype=np.uint64))
        _set_class(dataset, "double")
        dataset.attrs["MATLAB_empty"] = np.uint8(1)
        return dataset
    dataset = parent.create_dataset(name, data=np.atleast_2d(array.astype(float)).T)
    _set_class(dataset, "double")
    return dataset


def write_v73(path: Path, variables: dict[str, Any]) -> Path:
    """A MATLAB v7.3 MAT-file: HDF5 after a 512-byte MATLAB header (``-v7.3`` layout)."""
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as file:
        refs = _Refs(file)
        for name, value in variables.items():
            _put(file, name, value, refs)
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(0))
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 ."
    header = text.encode("ascii").ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
    with open(path, "r+b") as stream:
        stream.write(header.ljust(512, b"\x00"))
    return path
