"""Synthetic HERBS merged-probe ``.pkl`` files, written from CCF um truth.

The layout is the one HERBS (JingyiGF/HERBS) pickles in ``save_merged_object`` /
``save_current_object``: ``{"type": "merged probe", "data": <probe dict>, "name": <name>}``,
protocol ``pickle.HIGHEST_PROTOCOL``. The probe dict has the keys of ``calculate_probe_info``
(``herbs/probe_utiles.py``) plus ``vis_color`` (added by ``ObjectControl.add_object``); the
``"2022"`` layout is the one of HERBS 2022-06 .. 2022-10 (``herbs/uuuuuu.py``).

The coordinates are derived from HERBS's own steps, independently of the reader's formula:
the Allen volume (AP, DV, ML) becomes HERBS's internal volume by reversing AP and DV and taking
the columns ``to_HERBS = (2, 0, 1)`` (``allen_downloader.py``; the same rule HERBS applies to
imported integer points, ``data[:, i] = size[i] - 1 - data[:, i]`` then ``data[:, to_HERBS]``);
HERBS's bregma is ``[b_ML, nAP - 1 - b_AP, nDV - 1 - b_DV]``; a continuous HERBS coordinate
``c`` is in voxel ``int(c)``, so a voxel centre is at ``k + 0.5``; the probe's coordinates are
relative to the bregma (``points3 - origin_3d`` in ``atlas_view.py``).
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: Allen volume sizes (AP, DV, ML) of HERBS's ``Extra_Data/Allen_Mouse_*um/atlas_axis_info.pkl``.
SIZES_APDVML: dict[float, tuple[int, int, int]] = {
    10.0: (1320, 800, 1140),
    25.0: (528, 320, 456),
    50.0: (264, 160, 228),
}
HERBS_TO = (2, 0, 1)
HERBS_REVERSED_APDVML = (True, True, False)
LAYOUTS = ("2023", "2022")


def herbs_bregma(voxel_um: float, bregma_apdvml_vox: Sequence[int] = (0, 0, 0)) -> np.ndarray:
    """HERBS's ``origin_3d`` for the bregma typed into its Allen processor (0 = HERBS default:
    mid-AP, top of the volume, midline)."""
    n_ap, n_dv, n_ml = SIZES_APDVML[voxel_um]
    ap, dv, ml = (int(v) for v in bregma_apdvml_vox)
    ap = ap or int(n_ap / 2)
    ml = ml or int(n_ml / 2)
    return np.array([ml, n_ap - 1 - ap, n_dv - 1 - dv])


def ccf_um_to_herbs_vox(ccf_um: np.ndarray, voxel_um: float) -> np.ndarray:
    """CCF um (ML, AP, DV) -> absolute continuous HERBS voxel coordinates (x, y, z)."""
    ccf = np.atleast_2d(np.asarray(ccf_um, dtype=float))
    index_apdvml = ccf[:, [1, 2, 0]] / voxel_um  # voxel centres at whole numbers
    sizes = SIZES_APDVML[voxel_um]
    for axis in range(3):
        if HERBS_REVERSED_APDVML[axis]:
            index_apdvml[:, axis] = sizes[axis] - 1 - index_apdvml[:, axis]
    return index_apdvml[:, list(HERBS_TO)] + 0.5


def _angles(direction: np.ndarray) -> tuple[float, float]:
    ap = float(np.degrees(np.arctan2(direction[1], -direction[2])))
    ml = float(np.degrees(np.arctan2(direction[0], -direction[2])))
    return ap, ml


def probe_dict(
    pieces_ccf_um: Sequence[np.ndarray],
    voxel_um: float = 25.0,
    bregma_apdvml_vox: Sequence[int] = (0, 0, 0),
    layout: str = "2023",
) -> dict:
    """The merged-probe dict HERBS builds for these picks (one array per piece).

    Insertion and terminus are the first and last pick (HERBS fits a line and moves the ends to
    the brain surface and the probe length; the reader only needs them to be consistent).
    """
    bregma = herbs_bregma(voxel_um, bregma_apdvml_vox)
    pieces = [ccf_um_to_herbs_vox(p, voxel_um) - bregma for p in pieces_ccf_um]
    stacked = np.vstack(pieces)
    start, end = stacked[0].copy(), stacked[-1].copy()
    direction = (end - start) / np.linalg.norm(end - start)
    ap_angle, ml_angle = _angles(direction)
    length_um = np.linalg.norm(end - start) * voxel_um  # numpy scalars, as HERBS computes them
    sites = start + np.linspace(0.0, 1.0, 8)[:, None] * (end - start)
    common = {
        "object_name": "probe",
        "probe_type_name": "Neuropixels 1.0",
        "ap_tilt": "anterior" if end[1] > start[1] else "posterior",
        "ml_tilt": "lateral" if abs(end[0]) > abs(start[0]) else "medial",
        "direction": direction,
        "probe_length": length_um,
        "dv": (start[2] - end[2]) * voxel_um,
        "ap_angle": ap_angle,
        "ml_angle": ml_angle,
        "insertion_coords": start * voxel_um,
        "terminus_coords": end * voxel_um,
        "terminus_vox": (end + bregma).astype(int),
        "sites_label": [np.full(len(sites), 672, dtype=np.int64)],
        "region_label": np.array([672.0]),
        "region_length": np.array([length_um]),
        "label_name": ["Caudoputamen"],
        "label_acronym": ["CP"],
        "label_color": np.array([[152, 214, 249]]),
        "vis_color": (255, 0, 0, 255),
    }
    if layout == "2023":  # HERBS 2022-12-15 .. 2024-02 (probe_utiles.calculate_probe_info)
        return {
            **common,
            "data": pieces,
            "pieces_names": [f"probe - piece {k}" for k in range(len(pieces))],
            "insertion_coords_3d": start,
            "terminus_coords_3d": end,
            "insertion_vox": (start + bregma).astype(int),
            "sites_loc_b": [sites],
            "sites_vox": [(sites + bregma).astype(int)],
            "region_sites": np.array([len(sites)]),
            "text_loc": np.array([length_um / 2]),
            "vis_data": [{"sites": np.arange(len(sites)) * 20.0, "label": np.ones(len(sites))}],
        }
    if layout == "2022":  # HERBS 2022-06 .. 2022-10 (uuuuuu.calculate_probe_info)
        raw_start, raw_end = start + 0.3 * direction, end - 0.3 * direction  # the raw line fit
        return {
            **common,
            "data": stacked,
            "insertion_coords_3d": raw_start,
            "terminus_coords_3d": raw_end,
            "new_insertion_coords_3d": start,
            "new_terminus_coords_3d": end,
            "insertion_vox": start + bregma,
            "sites_loc_related_to_Bregma": sites,
            "merged_labels": [[672], [672]],
            "merged_color": [[(152, 214, 249)], [(152, 214, 249)]],
            "block_count": [[len(sites)], [len(sites)]],
            "region_channels": np.array([len(sites)]),
        }
    raise ValueError(f"layout {layout!r}; expected one of {LAYOUTS}")


def dumps(obj: object, numpy_module: str = "numpy._core") -> bytes:
    """``pickle.dumps(obj, HIGHEST_PROTOCOL)``; with ``numpy_module="numpy.core"`` the numpy
    globals carry numpy 1's module names, as a file HERBS (numpy 1.x) wrote does."""
    if numpy_module == "numpy._core":
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    if numpy_module != "numpy.core":
        raise ValueError(f"numpy_module {numpy_module!r}; expected numpy._core or numpy.core")
    buffer = io.BytesIO()
    pickler = pickle._Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.framer.start_framing = lambda: None  # no frames, so names can change length
    pickler.dump(obj)
    data = buffer.getvalue()
    for new in ("multiarray", "numeric"):
        old_name, new_name = f"numpy._core.{new}".encode(), f"numpy.core.{new}".encode()
        data = data.replace(
            b"\x8c" + bytes([len(old_name)]) + old_name, b"\x8c" + bytes([len(new_name)]) + new_name
        )
    return data


def write_probe_file(
    path: Path,
    pieces_ccf_um: Sequence[np.ndarray],
    name: str = "probe",
    voxel_um: float = 25.0,
    bregma_apdvml_vox: Sequence[int] = (0, 0, 0),
    layout: str = "2023",
    numpy_module: str = "numpy._core",
) -> Path:
    """``path`` = the object file HERBS saves for one merged probe (``<name>.pkl``)."""
    content = {
        "type": "merged probe",
        "data": probe_dict(pieces_ccf_um, voxel_um, bregma_apdvml_vox, layout),
        "name": name,
    }
    path = Path(path)
    path.write_bytes(dumps(content, numpy_module))
    return path


def write_plain_project(
    path: Path, probes: Sequence[tuple[str, Sequence[np.ndarray]]], voxel_um: float = 25.0
) -> Path:
    """A project-shaped file (``object_data`` of ``save_project_called``) holding only plain data:
    the merged probes and one unmerged virus piece. HERBS's own projects also hold Qt colours."""
    names = [name for name, _ in probes] + ["virus"]
    types = ["merged probe"] * len(probes) + ["virus piece"]
    datas: list[object] = [probe_dict(p, voxel_um) for _, p in probes] + [np.zeros((3, 3))]
    object_data = {
        "obj_name": names,
        "obj_type": types,
        "obj_data": datas,
        "obj_size": [2] * len(names),
        "obj_opacity": [100] * len(names),
        "obj_comp_mode": ["plus"] * len(names),
        "current_obj_index": 0,
    }
    path = Path(path)
    path.write_bytes(dumps({"atlas_path": "", "num_windows": 2, "object_data": object_data}))
    return path


def write_demo(
    folder: Path, probes: Sequence[tuple[str, np.ndarray]]
) -> tuple[list[Path], list[str]]:
    """One HERBS object file per probe (``<name>.pkl``) and the track id of each (its name)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_probe_file(folder / f"{name}.pkl", [pts], name) for name, pts in probes]
    return paths, [name for name, _ in probes]
