"""Synthetic volumes: a CCF-like brain (template + lateralized labels), the LCA template and the
SmartSPIM OME-Zarr pyramid of the individual brain, all consistent with the synthetic chain."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..outputs import write_nrrd_atomic
from ..space.frames import ImageHeader

# Shells of the ellipsoidal brain, outermost first: (outer normalised radius, acronym, intensity).
# Real Allen acronyms; ProS and VISa4 have ids above 2**24, which float32 warps cannot carry.
SHELLS = (
    (1.00, "MOp1", 900),
    (0.92, "MOp2/3", 1500),
    (0.84, "MOp5", 2100),
    (0.76, "VISa4", 1800),
    (0.68, "MOp6a", 2600),
    (0.58, "CA1", 3200),
    (0.46, "ProS", 2800),
    (0.36, "DG-mo", 3600),
    (0.24, "TH", 4000),
)


def allen_ids(acronyms: list[str]) -> list[int]:
    """Positive (right hemisphere) Allen ids of acronyms, from iblatlas BrainRegions."""
    from ..space.atlas import brain_regions

    regions = brain_regions()
    out = []
    for acronym in acronyms:
        hits = [int(i) for i in regions.id[regions.acronym == acronym] if i > 0]
        if not hits:
            raise ValueError(f"{acronym!r} is not an Allen acronym in BrainRegions")
        out.append(hits[0])
    return out


def brain_volumes(
    shape_apdvml: tuple[int, int, int],
    center_um: np.ndarray,
    semi_axes_um: np.ndarray,
    midline_ml_um: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """(template uint16, signed Allen-id labels int64) on a 25 um CCF grid, arrays (AP, DV, ML).

    ``center_um`` and ``semi_axes_um`` are (ML, AP, DV) micrometres. Labels are lateralized:
    right hemisphere (ML > midline) +id, left -id, 0 outside the brain.
    """
    ap, dv, ml = (np.arange(n) * 25.0 for n in shape_apdvml)
    ap_g, dv_g, ml_g = np.meshgrid(ap, dv, ml, indexing="ij")
    r = np.sqrt(
        ((ml_g - center_um[0]) / semi_axes_um[0]) ** 2
        + ((ap_g - center_um[1]) / semi_axes_um[1]) ** 2
        + ((dv_g - center_um[2]) / semi_axes_um[2]) ** 2
    )
    ids = allen_ids([s[1] for s in SHELLS])
    labels = np.zeros(shape_apdvml, dtype=np.int64)
    template = np.zeros(shape_apdvml, dtype=np.float64)
    for (outer, _, intensity), region in zip(SHELLS, ids, strict=True):
        inside = r <= outer
        labels[inside] = region
        template[inside] = intensity
    labels[ml_g < midline_ml_um] *= -1
    template += rng.normal(0, 40, shape_apdvml) * (labels != 0)
    return np.clip(template, 0, 65535).astype(np.uint16), labels


def write_ccf_volumes(
    template: np.ndarray,
    labels: np.ndarray,
    header: ImageHeader,
    template_path: Path,
    labels_path: Path,
    unique_path: Path,
) -> np.ndarray:
    """CCF template (NIfTI via ANTs), compact labels (NRRD) and their ``unique_labels`` npz.

    Arrays are in ITK index order (i, j, k) = (AP, DV, ML) for the CCF grid. Returns
    ``unique_labels`` (compact index k -> signed Allen id; k = 0 is void).
    """
    for p in (template_path, labels_path, unique_path):
        p.parent.mkdir(parents=True, exist_ok=True)
    write_ants_image(template, header, template_path, "unsigned int")
    nonzero = np.unique(labels[labels != 0])
    unique = np.concatenate([[0], nonzero]).astype(np.int64)
    sorter = np.argsort(unique)
    compact = sorter[np.searchsorted(unique, labels, sorter=sorter)]
    write_nrrd_atomic(labels_path, compact.astype(np.uint16), header)
    np.savez(unique_path, unique_labels=unique)
    return unique


def ccf_in_order(array_pir: np.ndarray, code: str) -> tuple[np.ndarray, ImageHeader]:
    """The CCF volume ``array_pir`` (ITK order AP, DV, ML) stored with index axes along ``code``.

    Same voxels at the same physical places: a permutation of PIR keeps voxel [0,0,0] at 0; a
    flip moves the origin to the far corner, as a correct conversion would.
    """
    from ..space.atlas import ccf_header
    from ..space.frames import reorient
    from ..space.resample import reorient_array

    header, transform = reorient(ccf_header(array_pir.shape), code)
    return np.ascontiguousarray(reorient_array(array_pir, transform)), header


def write_volume_file(
    path: Path,
    array_ijk: np.ndarray,
    header: ImageHeader,
    nrrd_space: str = "left-posterior-superior",
    nifti_unit: str = "mm",
) -> Path:
    """Write ``array_ijk`` (its own ITK index order) with exactly ``header``'s geometry.

    ``.nii`` / ``.nii.gz``: nibabel, sform and qform both set (code 1, aligned), spatial unit
    ``nifti_unit`` ("mm" or "micron"). ``.nrrd``: pynrrd, gzip, in ``nrrd_space``
    (left-posterior-superior, right-anterior-superior or left-anterior-superior). The dtype is
    kept.
    """
    matrix_lps = header.direction * header.spacing  # columns = index steps, LPS mm
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        scale = {"mm": 1.0, "micron": 1e3}[nifti_unit]
        affine = np.eye(4)
        affine[:3, :3] = np.diag([-1.0, -1.0, 1.0]) @ matrix_lps * scale  # LPS -> RAS
        affine[:3, 3] = np.array([-1.0, -1.0, 1.0]) * header.origin * scale
        img = nib.Nifti1Image(np.asarray(array_ijk), affine)
        img.set_sform(affine, code=1)
        img.set_qform(affine, code=1)
        img.header.set_xyzt_units(xyz=nifti_unit)
        nib.save(img, str(path))
        return path
    import nrrd

    flip = {
        "left-posterior-superior": np.array([1.0, 1.0, 1.0]),
        "right-anterior-superior": np.array([-1.0, -1.0, 1.0]),
        "left-anterior-superior": np.array([1.0, -1.0, 1.0]),
    }[nrrd_space]
    fields = {
        "space": nrrd_space,
        "space directions": (flip[:, None] * matrix_lps).T,
        "space origin": flip * header.origin,
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    nrrd.write(str(path), np.asarray(array_ijk), fields)
    return path


def write_raw_allen_nrrd(path: Path, array_pir: np.ndarray, resolution_um: int = 25) -> Path:
    """The Allen API NRRD layout (``annotation_25.nrrd``): array (AP, DV, ML), but a header
    that says left-posterior-superior with identity directions of ``resolution_um`` (no unit)."""
    import nrrd

    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {
        "space": "left-posterior-superior",
        "space directions": np.eye(3) * resolution_um,
        "space origin": np.zeros(3),
        "kinds": ["domain", "domain", "domain"],
        "encoding": "gzip",
    }
    nrrd.write(str(path), np.asarray(array_pir), fields)
    return path


def write_ants_image(array_ijk: np.ndarray, header: ImageHeader, path: Path, pixel: str) -> Path:
    """Write an ITK-ordered array with ``header`` through ANTs (pixel: "unsigned int", "float")."""
    import ants

    img = ants.from_numpy(np.asarray(array_ijk, dtype=np.float32), **header.ants_kwargs())
    path.parent.mkdir(parents=True, exist_ok=True)
    ants.image_write(img.clone(pixel), str(path))
    return path


def write_ome_zarr(
    path: Path,
    levels: list[np.ndarray | None],
    shapes_zyx: list[tuple[int, int, int]],
    spacing0_um_zyx: np.ndarray,
    chunks: tuple[int, int, int] = (64, 64, 64),
) -> None:
    """An OME-NGFF 0.4 multiscale (t, c, z, y, x), zarr v2; ``None`` levels hold no chunks.

    A written level has every chunk file, all-zero ones included (the reader refuses a missing
    chunk, see :mod:`alignprep.inputs.zarr_arrays`).
    """
    import zarr

    with _single_threaded_blosc():
        root = zarr.open_group(str(path), mode="w")
        datasets = []
        for k, (data, shape) in enumerate(zip(levels, shapes_zyx, strict=True)):
            arr = root.create_dataset(
                str(k),
                shape=(1, 1, *shape),
                chunks=(1, 1, *chunks),
                dtype="uint16",
                fill_value=0,
                write_empty_chunks=True,  # every chunk of a written level, as SmartSPIM does
                dimension_separator="/",
            )
            if data is not None:
                arr[0, 0] = data
            scale = [1.0, 1.0, *(np.asarray(spacing0_um_zyx) * 2**k).tolist()]
            datasets.append(
                {
                    "path": str(k),
                    "coordinateTransformations": [
                        {"type": "scale", "scale": scale},
                        {"type": "translation", "translation": [0] * 5},
                    ],
                }
            )
        root.attrs["multiscales"] = [
            {
                "version": "0.4",
                "name": path.name.removesuffix(".zarr"),
                "axes": [
                    {"name": "t", "type": "time", "unit": "millisecond"},
                    {"name": "c", "type": "channel"},
                    *({"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"),
                ],
                "datasets": datasets,
            }
        ]


@contextmanager
def _single_threaded_blosc() -> Iterator[None]:
    """Threaded Blosc output bytes vary between processes; restore the global setting after."""
    from numcodecs import blosc

    before = blosc.use_threads
    blosc.use_threads = False
    try:
        yield
    finally:
        blosc.use_threads = before


def downsample2(volume: np.ndarray) -> np.ndarray:
    """2x2x2 block mean (edge-padded), as a pyramid builder does."""
    pad = [(0, n % 2) for n in volume.shape]
    v = np.pad(volume.astype(np.float64), pad, mode="edge")
    z, y, x = (n // 2 for n in v.shape)
    return v.reshape(z, 2, y, 2, x, 2).mean(axis=(1, 3, 5))


def write_json(path: Path, obj: object) -> Path:
    """Indented JSON, parents created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    return path
