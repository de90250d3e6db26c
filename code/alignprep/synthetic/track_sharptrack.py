"""Synthetic SHARP-Track ``probe_points.mat`` files, written from CCF um truth.

The layout is the one ``AtlasTransformBrowser.m`` (cortex-lab/allenCCF) saves on key ``s``: the
struct ``pointList`` with fields ``pointList`` (cell array, one row per probe: ``{k,1}`` the (n, 3)
clicked points, ``{k,2}`` the (n, 1) histology slice numbers, ``{k,3}`` a 1 x n cell of slice
names) and ``pointHands`` (graphics handles in the tool; empty matrices here, nothing reads them).

The point values are derived here from the browser itself, independently of the reader's table:
``Navigate_Atlas_and_Register_Slices.m`` permutes the (AP, DV, ML) volume with
``permute(av, P)`` for the plane, the browser shows ``volume(slice, :, :)`` and a click stores
``[column, row, slice]`` of that permuted volume, 1-based.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import scipy.io

VOXEL_UM = 10.0
#: MATLAB ``permute`` order applied to the (AP, DV, ML) volume for each plane (1-based dims).
PLANE_PERMUTE: dict[str, tuple[int, int, int]] = {
    "coronal": (1, 2, 3),
    "sagittal": (3, 2, 1),
    "transverse": (2, 3, 1),
}
_MAT73_HEADER = "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {date} HDF5 schema 1.00 ."


def ccf_um_to_sharptrack(ccf_um: np.ndarray, plane: str) -> np.ndarray:
    """CCF um (ML, AP, DV) on the 10 um grid -> SHARP-Track point rows for ``plane``.

    Raises ValueError for points off the 10 um voxel centres (SHARP-Track stores whole voxels).
    """
    ccf_um = np.atleast_2d(np.asarray(ccf_um, dtype=float))
    index_apdvml = ccf_um[:, [1, 2, 0]] / VOXEL_UM
    if not np.allclose(index_apdvml, np.round(index_apdvml), rtol=0.0, atol=1e-6):
        raise ValueError("points are not on the 10 um grid; move them with ccf_truth.on_grid")
    one_based = np.round(index_apdvml) + 1.0
    permuted = one_based[:, [d - 1 for d in PLANE_PERMUTE[plane]]]  # (slice, row, column)
    return permuted[:, [2, 1, 0]]  # [clickX = column, clickY = row, clickZ = slice]


def point_rows(probes_ccf_um: Sequence[np.ndarray | None], plane: str) -> list[np.ndarray]:
    """Each probe's SHARP-Track rows; ``None`` or an empty array gives an unclicked probe."""
    rows = []
    for probe in probes_ccf_um:
        if probe is None or np.asarray(probe).size == 0:
            rows.append(np.zeros((0, 3)))
        else:
            rows.append(ccf_um_to_sharptrack(probe, plane))
    return rows


def _slice_info(points: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Histology slice numbers (n, 1) and names for the clicked points (one slice per point)."""
    numbers = np.arange(1, len(points) + 1, dtype=float)[:, None]
    return numbers, [f"slice_{k:03d}" for k in range(1, len(points) + 1)]


def write_probe_points(
    path: Path,
    probes_ccf_um: Sequence[np.ndarray | None],
    plane: str,
    version: str = "7",
) -> Path:
    """Write ``probe_points*.mat`` for CCF um probes (probe k = row k), v7 or v7.3.

    Parameters
    ----------
    path
        Output file (SHARP-Track names it ``probe_points<suffix>.mat``).
    probes_ccf_um
        Per probe, (n, 3) CCF um on the 10 um grid, or None for a probe without points.
    plane
        ``coronal``, ``sagittal`` or ``transverse``: the column layout written.
    version
        ``"7"`` (:func:`scipy.io.savemat`, MATLAB's default) or ``"7.3"`` (HDF5, h5py).
    """
    rows = point_rows(probes_ccf_um, plane)
    return write_point_rows(path, rows, version)


def write_point_rows(path: Path, rows: Sequence[np.ndarray], version: str = "7") -> Path:
    """Write raw SHARP-Track point rows (file columns, 1-based voxels), one entry per probe."""
    path = Path(path)
    if version == "7":
        _write_v7(path, rows)
    elif version == "7.3":
        _write_v73(path, rows)
    else:
        raise ValueError(f"version {version!r}; expected '7' or '7.3'")
    return path


def _write_v7(path: Path, rows: Sequence[np.ndarray]) -> None:
    cells = np.empty((len(rows), 3), dtype=object)
    hands = np.empty((len(rows), 3), dtype=object)
    for k, points in enumerate(rows):
        points = np.asarray(points, dtype=float).reshape(-1, 3)
        numbers, names = _slice_info(points)
        names_cell = np.empty((1, len(names)), dtype=object)
        names_cell[0, :] = names
        cells[k, 0] = points
        cells[k, 1] = numbers if len(points) else np.zeros((0, 0))
        cells[k, 2] = names_cell if len(points) else np.zeros((0, 0))
        for j in range(3):
            hands[k, j] = np.zeros((0, 0))
    point_list = {"pointList": cells, "pointHands": hands}
    scipy.io.savemat(str(path), {"pointList": point_list}, do_compression=True)


class _RefWriter:
    """MATLAB v7.3 ``#refs#`` group: cell elements are datasets there, referenced."""

    def __init__(self, mat: h5py.File) -> None:
        self.group = mat.create_group("#refs#")
        empty = self.group.create_dataset("a", data=np.zeros(2, dtype=np.uint64))
        empty.attrs["MATLAB_class"] = np.bytes_("canonical empty")
        empty.attrs["MATLAB_empty"] = np.uint8(1)
        self.count = 0

    def _name(self) -> str:
        self.count += 1
        return f"r{self.count}"

    def double(self, values: np.ndarray) -> h5py.Reference:
        values = np.asarray(values, dtype=float)
        if values.size == 0:
            data = self.group.create_dataset(
                self._name(), data=np.array(values.shape, dtype=np.uint64)
            )
            data.attrs["MATLAB_empty"] = np.uint8(1)
        else:
            data = self.group.create_dataset(self._name(), data=values.T)  # MATLAB column-major
        data.attrs["MATLAB_class"] = np.bytes_("double")
        return data.ref

    def char(self, text: str) -> h5py.Reference:
        codes = np.array([[ord(c)] for c in text], dtype=np.uint16)  # 1 x len, transposed
        data = self.group.create_dataset(self._name(), data=codes)
        data.attrs["MATLAB_class"] = np.bytes_("char")
        data.attrs["MATLAB_int_decode"] = np.int32(2)
        return data.ref

    def cell(self, refs: np.ndarray) -> h5py.Reference:
        data = self.group.create_dataset(self._name(), data=refs.T, dtype=h5py.ref_dtype)
        data.attrs["MATLAB_class"] = np.bytes_("cell")
        return data.ref


def _write_v73(path: Path, rows: Sequence[np.ndarray]) -> None:
    with h5py.File(path, "w", userblock_size=512) as mat:
        refs = _RefWriter(mat)
        cells = np.empty((len(rows), 3), dtype=h5py.ref_dtype)
        hands = np.empty((len(rows), 3), dtype=h5py.ref_dtype)
        for k, points in enumerate(rows):
            points = np.asarray(points, dtype=float).reshape(-1, 3)
            numbers, names = _slice_info(points)
            cells[k, 0] = refs.double(points)
            if len(points):
                cells[k, 1] = refs.double(numbers)
                name_refs = np.empty((1, len(names)), dtype=h5py.ref_dtype)
                name_refs[0, :] = [refs.char(name) for name in names]
                cells[k, 2] = refs.cell(name_refs)
            else:
                cells[k, 1] = refs.double(np.zeros((0, 0)))
                cells[k, 2] = refs.double(np.zeros((0, 0)))
            for j in range(3):
                hands[k, j] = refs.double(np.zeros((0, 0)))
        struct = mat.create_group("pointList")
        struct.attrs["MATLAB_class"] = np.bytes_("struct")
        for field, values in (("pointList", cells), ("pointHands", hands)):
            data = struct.create_dataset(field, data=values.T, dtype=h5py.ref_dtype)
            data.attrs["MATLAB_class"] = np.bytes_("cell")
    text = _MAT73_HEADER.format(date=time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(0)))
    header = text.encode("ascii").ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02IM"
    with path.open("r+b") as handle:
        handle.write(header.ljust(512, b"\x00"))


#: The file name SHARP-Track saves without a suffix (``'probe_points' + suffix``).
FILE_NAME = "probe_points.mat"


def track_id(plane: str, probe: int) -> str:
    """The manifest ``histology_track_id`` of probe ``probe`` (1-based) clicked in ``plane``."""
    return f"{plane}_{probe}"


def write_demo(
    folder: Path, probes_ccf_um: Sequence[np.ndarray | None], plane: str = "coronal"
) -> tuple[Path, list[str]]:
    """``folder/probe_points.mat`` for a demo dataset, and the track id of each probe."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = write_probe_points(folder / FILE_NAME, probes_ccf_um, plane)
    return path, [track_id(plane, k) for k in range(1, len(probes_ccf_um) + 1)]
