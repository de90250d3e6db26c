"""Broken copies of transform and label files, one function per fault family (tests, demos).

Each function damages files of a built dataset in place (work on a copy) and returns the paths it
changed, so a test can assert that the error names them. Seeded where randomness is involved.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from .geometry import Affine


def truncate(path: Path, keep_fraction: float = 0.5) -> Path:
    """Cut a file short (an interrupted copy)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])
    return path


def swap(a: Path, b: Path) -> tuple[Path, Path]:
    """Exchange the contents of two files (e.g. a registration's Warp and InverseWarp)."""
    tmp = a.with_name(a.name + ".swap")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    return a, b


def random_bytes(path: Path, seed: int = 0, size: int | None = None) -> Path:
    """Overwrite a file with random bytes of the same (or a given) size."""
    n = size if size is not None else path.stat().st_size
    path.write_bytes(np.random.default_rng(seed).bytes(n))
    return path


def _edit_nifti(path: Path, edit) -> Path:
    import nibabel as nib

    img = nib.load(str(path))
    data = np.asanyarray(img.dataobj).copy()
    header = img.header.copy()
    data, affine = edit(data, img.affine.copy())
    out = nib.Nifti1Image(data, affine, header)
    out.set_qform(affine, int(header["qform_code"]) or 1)
    out.set_sform(affine, int(header["sform_code"]) or 1)
    nib.save(out, str(path))
    return path


def shift_grid(path: Path, shift_mm: tuple[float, float, float] = (3.0, 0.0, 0.0)) -> Path:
    """Move a NIfTI's grid in space (a field computed on another fixed image: foreign grid)."""

    def edit(data, affine):
        affine[:3, 3] += np.asarray(shift_mm, float) * [-1, -1, 1]  # LPS shift, RAS header
        return data, affine

    return _edit_nifti(path, edit)


def put_nan(path: Path, voxel_ijk: tuple[int, int, int], component: int = 0) -> Path:
    """One NaN in a displacement field at a known voxel and component."""

    def edit(data, affine):
        data[(*voxel_ijk, 0, component)] = np.nan
        return data, affine

    return _edit_nifti(path, edit)


def scale_field(path: Path, factor: float) -> Path:
    """Multiply every displacement (e.g. by 1000: a field written in micrometres)."""

    def edit(data, affine):
        return (data * factor).astype(data.dtype), affine

    return _edit_nifti(path, edit)


def scalar_copy(source: Path, target: Path) -> Path:
    """Replace a warp with a scalar image (e.g. a template saved under the warp's name)."""
    target.write_bytes(source.read_bytes())
    return target


def recompress_with_bad_crc(path: Path) -> Path:
    """Keep the NIfTI bytes but corrupt the gzip CRC-32 trailer (damaged in transit)."""
    raw = gzip.decompress(path.read_bytes())
    packed = bytearray(gzip.compress(raw, mtime=0))
    packed[-8] ^= 0xFF  # first byte of the CRC-32
    path.write_bytes(bytes(packed))
    return path


def write_affine(path: Path, matrix: np.ndarray, center=(0.0, 0.0, 0.0), shift=(0.0, 0.0, 0.0)):
    """An ITK affine .mat with the given matrix (singular, implausibly scaled, mirrored...)."""
    return Affine(np.asarray(matrix, float), np.asarray(center, float), np.asarray(shift)).write(
        path
    )


def matlab_v5_copy(path: Path) -> Path:
    """The same affine parameters saved as MATLAB v5 (ITK reads only v4; it crashes on v5)."""
    from scipy.io import loadmat, savemat

    content = {k: v for k, v in loadmat(str(path)).items() if not k.startswith("__")}
    savemat(str(path), content, format="5")
    return path


def lookup_with(path: Path, values: dict[int, int]) -> Path:
    """Set entries of ``unique_labels`` (compact index -> id), e.g. to a non-Allen id."""
    lut = np.load(path)["unique_labels"].copy()
    for k, v in values.items():
        lut[k] = v
    np.savez(path, unique_labels=lut)
    return path


def shorten_lookup(path: Path, n_removed: int = 2) -> Path:
    """Drop the last entries of ``unique_labels`` (a lookup of another, smaller volume)."""
    lut = np.load(path)["unique_labels"]
    np.savez(path, unique_labels=lut[:-n_removed])
    return path
