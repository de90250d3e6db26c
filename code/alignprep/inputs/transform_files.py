"""Read ANTs transform files completely and check them, without ANTs (pure Python).

* ``read_itk_affine``: an ITK ``.mat`` (MATLAB v4: ``AffineTransform_{double,float}_3_3`` with 12
  parameters, then ``fixed`` with the 3-value centre; ``y = A (x - c) + t + c``). ITK's own
  reader crashes the process (SIGSEGV) on most malformed files, so its layout is checked here
  first and ITK only ever sees files that passed.
* ``scan_warp``: streams a displacement-field NIfTI (``.nii.gz``) to its end in bounded memory:
  gzip integrity (the CRC is checked at end of stream), header, a 3-component vector field
  (X, Y, Z, 1, 3), finite values, plausible magnitudes. The same single read can write the
  voxels, as little-endian float32 in the file's own order, to ``sink``, so that nothing needs to
  decompress the file again (``field_store``).
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import InputError
from ..space.frames import ImageHeader

AFFINE_KEY = re.compile(r"^(AffineTransform|MatrixOffsetTransformBase)_(double|float)_3_3$")
MAX_MAT_BYTES = 1 << 16  # an ITK affine .mat is ~200 bytes
BLOCK_BYTES = 1 << 25  # 32 MiB of decompressed voxel data per read
VECTOR_INTENTS = ("vector", "dispvect", "none")


@dataclass(frozen=True)
class TransformLimits:
    """What a plausible registration looks like (tolerances of every transform check)."""

    affine_scale_range: tuple[float, float] = (0.5, 2.0)  # singular values of A
    max_displacement_mm: float = 5.0  # |component| of a warp (a mouse brain is ~10 mm long)
    grid_tolerance_voxels: float = 1.0  # warp grid vs the fixed image's foreground
    affine_probe_tolerance_mm: float = 1e-4  # ANTs vs our parse (float32 parameters)
    # ANTs SyN inverts each half-field to a max error of 0.1 voxel (ITK
    # InvertDisplacementFieldImageFilter as called by SyN), and 1Warp / 1InverseWarp are
    # compositions of two halves: a true pair round-trips within ~0.2 voxel. 0.5 voxel at the
    # 95th percentile leaves room for interpolation; a foreign or damaged pair is off by whole
    # voxels (its displacements, typically 2-40 voxels).
    round_trip_tolerance_voxels: float = 0.5
    round_trip_quantile: float = 0.95
    n_points: int = 20000  # sample points in the fixed image's foreground
    similarity_sigmas: float = 4.0  # a similarity difference counts beyond this many SEs ...
    similarity_min_difference: float = 0.002  # ... and beyond this absolute rank correlation
    n_bootstrap: int = 200
    seed: int = 0
    worker_timeout_s: float = 3600.0


@dataclass(frozen=True)
class Problem:
    """One finding of the transform check. ``fatal`` problems stop the run."""

    file: str
    message: str
    fatal: bool = True

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"

    @classmethod
    def from_error(cls, exc: InputError, fatal: bool = True) -> Problem:
        """A problem from an InputError (its file, else its whole text)."""
        return cls(exc.file or "", exc.message if exc.file else str(exc), fatal)


# ----------------------------------------------------------------------------- affine .mat


@dataclass(frozen=True)
class ItkAffine:
    """An ITK matrix-offset transform: ``y = A (x - c) + t + c`` (LPS mm)."""

    matrix: np.ndarray
    translation: np.ndarray
    center: np.ndarray
    kind: str

    def __call__(self, points: np.ndarray) -> np.ndarray:
        pts = np.atleast_2d(points)
        return (pts - self.center) @ self.matrix.T + self.translation + self.center

    def inverse(self, points: np.ndarray) -> np.ndarray:
        """The inverse map (the ``[affine, 1]`` of ANTs)."""
        pts = np.atleast_2d(points) - self.translation - self.center
        return np.linalg.solve(self.matrix, pts.T).T + self.center


def read_itk_affine(path: Path) -> ItkAffine:
    """Parse an ITK affine ``.mat`` exactly as ITK's MATLAB v4 reader expects it.

    InputError naming the file and the expected layout for anything else (ITK crashes on those).
    """
    from scipy.io import loadmat
    from scipy.io.matlab import matfile_version

    expected = (
        "expected an ITK MATLAB v4 .mat holding AffineTransform_{double,float}_3_3 "
        "(12 x 1) then fixed (3 x 1)"
    )
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_MAT_BYTES:
            raise InputError(f"{size} bytes; {expected}", file=path)
        with path.open("rb") as fh:
            major, _ = matfile_version(fh)
        if major != 0:
            raise InputError(f"MATLAB v{5 if major == 1 else 7.3} file; {expected}", file=path)
        content = loadmat(str(path), squeeze_me=False)
    except InputError:
        raise
    except Exception as exc:  # scipy raises ValueError, MatReadError, TypeError, ... on junk
        raise InputError(f"unreadable ({exc}); {expected}", file=path) from None
    names = [k for k in content if not k.startswith("__")]
    if len(names) != 2 or not AFFINE_KEY.match(names[0]) or names[1] != "fixed":
        raise InputError(f"variables {names}; {expected}", file=path)
    params, fixed = (np.asarray(content[k]) for k in names)
    if params.shape != (12, 1) or fixed.shape != (3, 1):
        raise InputError(
            f"{names[0]} has shape {params.shape} and fixed {fixed.shape}; {expected}", file=path
        )
    values = np.concatenate([params.ravel(), fixed.ravel()]).astype(float)
    if not np.all(np.isfinite(values)):
        raise InputError(f"non-finite parameters {values.tolist()}", file=path)
    return ItkAffine(values[:9].reshape(3, 3), values[9:12], values[12:15], names[0].split("_")[0])


def affine_problems(affine: ItkAffine, path: Path, limits: TransformLimits) -> list[Problem]:
    """Invertible, plausible scale (singular values in range); a mirror is a warning."""
    singular = np.linalg.svd(affine.matrix, compute_uv=False)
    lo, hi = limits.affine_scale_range
    problems = []
    if singular.min() <= 1e-9 * max(singular.max(), 1e-300):
        problems.append(Problem(str(path), f"matrix is singular (not invertible): {_m(affine)}"))
    elif singular.min() < lo or singular.max() > hi:
        problems.append(
            Problem(
                str(path),
                f"implausible scale: singular values {np.round(singular, 4).tolist()} outside "
                f"[{lo:g}, {hi:g}] (an LS brain -> template or template -> CCF affine only "
                f"rescales mildly): {_m(affine)}",
            )
        )
    if np.linalg.det(affine.matrix) < 0:
        problems.append(
            Problem(
                str(path),
                "the affine mirrors (negative determinant): the registration compensates a "
                "flipped image axis; check the acquisition orientation (metadata.nd.json)",
                fatal=False,
            )
        )
    return problems


def _m(affine: ItkAffine) -> str:
    return f"A = {np.round(affine.matrix, 4).tolist()}"


# ----------------------------------------------------------------------------- warp NIfTI


@dataclass(frozen=True)
class WarpScan:
    """What a complete read of a displacement field established."""

    path: Path
    header: ImageHeader  # LPS, ITK index order, as nibabel reads the file
    dtype: str
    max_abs_mm: float  # largest |component| over the whole field

    @property
    def voxel_mm(self) -> float:
        """The finest grid spacing."""
        return float(self.header.spacing.min())


def scan_warp(
    path: Path,
    limits: TransformLimits,
    block_bytes: int = BLOCK_BYTES,
    sink: BinaryIO | None = None,
) -> WarpScan:
    """Stream a displacement field to its end; InputError naming the file on the first defect.

    With ``sink``, the voxel values (scaled, little-endian float32, the file's Fortran order:
    component slowest) are written to it as they are read.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            return _scan(fh, path, limits, block_bytes, sink)
    except InputError:
        raise
    except EOFError:
        raise InputError(
            "the gzip stream ends early: the file is truncated (copy it again)", file=path
        ) from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise InputError(f"corrupt gzip data ({exc}): the file is damaged", file=path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the displacement field: {exc}", file=path) from None


def _scan(
    fh: BinaryIO, path: Path, limits: TransformLimits, block_bytes: int, sink: BinaryIO | None
) -> WarpScan:
    import nibabel as nib

    head = fh.read(4)
    if len(head) < 4:
        raise InputError("empty file: expected a NIfTI displacement field", file=path)
    sizeof = {int.from_bytes(head, "little"), int.from_bytes(head, "big")}
    klass = nib.Nifti2Header if 540 in sizeof else nib.Nifti1Header
    block = head + fh.read(klass.sizeof_hdr - 4)  # read once: a gzip stream is never rewound
    consumed = len(block)
    try:
        hdr = klass.from_fileobj(io.BytesIO(block), check=True)
    except Exception as exc:  # nibabel: HeaderDataError, ValueError, ...
        raise InputError(f"not a NIfTI header ({exc})", file=path) from None
    shape = tuple(int(n) for n in hdr.get_data_shape())
    dtype = hdr.get_data_dtype()
    intent = hdr.get_intent()[0]
    if len(shape) != 5 or shape[3] != 1 or shape[4] != 3 or min(shape) < 1:
        raise InputError(
            f"shape {shape}: expected an ANTs displacement field (X, Y, Z, 1, 3), i.e. a vector "
            "image with 3 components (a scalar image cannot be a warp)",
            file=path,
        )
    if dtype.kind != "f" or intent not in VECTOR_INTENTS:
        raise InputError(
            f"data type {dtype}, intent {intent!r}: expected float vectors (intent 'vector')",
            file=path,
        )
    header = _lps_header(hdr, shape, path)
    offset = int(hdr.get_data_offset())
    if offset < consumed:
        raise InputError(f"vox_offset {offset} lies inside the header", file=path)
    fh.read(offset - consumed)
    n_vox = int(np.prod(shape[:3]))
    total = n_vox * 3 * dtype.itemsize
    slope, inter = hdr.get_slope_inter()
    max_abs = np.zeros(3)
    done = 0
    block_bytes -= block_bytes % dtype.itemsize
    while done < total:
        want = min(block_bytes, total - done)
        raw = fh.read(want)
        if len(raw) < want:  # read(n) returns less only at the end of the stream
            raise InputError(
                f"voxel data ends after {done + len(raw)} of {total} bytes: the file is truncated",
                file=path,
            )
        values = np.frombuffer(raw, dtype=dtype)  # no copy, no float64 conversion
        if slope is not None:
            values = values * slope + (inter or 0.0)
        if sink is not None:
            sink.write(values.astype("<f4", copy=False).data)
        start = done // dtype.itemsize
        if not _component_max(values, start, n_vox, max_abs):  # NaN / Inf propagate to max
            bad = ~np.isfinite(values)
            flat = start + int(np.argmax(bad))
            ijk = np.unravel_index(flat % n_vox, shape[:3], order="F")
            raise InputError(
                f"at least {int(bad.sum())} non-finite values (NaN/Inf); the first at voxel "
                f"{tuple(int(i) for i in ijk)}, component {flat // n_vox}",
                file=path,
            )
        done += want
    while fh.read(block_bytes):  # to the end of the stream: gzip verifies its CRC there
        pass
    peak = float(max_abs.max())
    check_peak(peak, limits, path)
    return WarpScan(path, header, str(dtype), peak)


def check_peak(peak_mm: float, limits: TransformLimits, path: Path) -> None:
    """InputError when the largest displacement component is implausible."""
    if peak_mm > limits.max_displacement_mm:
        raise InputError(
            f"implausible displacement: max |component| {peak_mm:.3g} mm > "
            f"{limits.max_displacement_mm:g} mm (units? a field from another tool?)",
            file=path,
        )


def _component_max(values: np.ndarray, start: int, n_vox: int, out: np.ndarray) -> bool:
    """Update the per-component max |value| of a block of the Fortran-ordered field.

    Uses min and max (no temporary array); False when the block holds a NaN or an Inf.
    """
    pos = 0
    while pos < len(values):
        comp = (start + pos) // n_vox
        end = min(len(values), (comp + 1) * n_vox - start)
        part = values[pos:end]
        lo, hi = float(part.min()), float(part.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            return False
        out[comp] = max(out[comp], -lo, hi)
        pos = end
    return True


def _lps_header(hdr, shape: tuple[int, ...], path: Path) -> ImageHeader:
    """The grid of a NIfTI header in LPS (what ITK reads), refusing an undefined position."""
    if int(hdr["qform_code"]) <= 0 and int(hdr["sform_code"]) <= 0:
        raise InputError(
            "neither qform nor sform is set: the field's position in space is undefined",
            file=path,
        )
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ hdr.get_best_affine()  # RAS -> LPS
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if not np.all(np.isfinite(affine)) or np.any(spacing <= 0):
        raise InputError(f"invalid voxel-to-world matrix {affine.tolist()}", file=path)
    return ImageHeader(affine[:3, 3], spacing, affine[:3, :3] / spacing, shape[:3])
