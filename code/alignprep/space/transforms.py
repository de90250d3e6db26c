"""ANTs transform chains: the files, their order and their invert flags, in one place.

Semantics (coordinates.md §5, checked in tests/unit/test_transforms.py):
* ``ants.apply_transforms_to_points`` maps points through the list in list order (element 0
  first);
* ``ants.apply_transforms(fixed=A, moving=B, L)`` samples B at L(p) for each grid point p of A,
  so the same list maps A-points to B-points;
* a registration of moving M onto fixed F maps F-points to M-points with [1Warp, 0GenericAffine]
  and M-points to F-points with [0GenericAffine (inverted), 1InverseWarp].
Points are LPS millimetres in the frame the registration was computed in; no sign flips.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..reads import note_file


@dataclass(frozen=True)
class Registration:
    """The files of one ANTs SyN registration of moving onto fixed."""

    affine: Path  # <prefix>0GenericAffine.mat
    inverse_warp: Path  # <prefix>1InverseWarp.nii.gz
    warp: Path | None = None  # <prefix>1Warp.nii.gz (image chain / QC only)

    @classmethod
    def from_prefix(cls, prefix: Path, require_warp: bool = False) -> Registration:
        """``<prefix>0GenericAffine.mat`` etc.; InputError naming every missing file."""
        reg = cls(
            Path(f"{prefix}0GenericAffine.mat"),
            Path(f"{prefix}1InverseWarp.nii.gz"),
            Path(f"{prefix}1Warp.nii.gz"),
        )
        for path in (reg.affine, reg.inverse_warp, reg.warp):
            note_file(path)  # read by ANTs; whether the warp exists decides the QC volumes
        missing = [p for p in (reg.affine, reg.inverse_warp) if not p.is_file()]
        if require_warp and reg.warp and not reg.warp.is_file():
            missing.append(reg.warp)
        if missing:
            raise InputError(
                "ANTs registration files not found: " + ", ".join(str(p) for p in missing),
                file=prefix.parent,
            )
        if reg.warp is not None and not reg.warp.is_file():
            reg = cls(reg.affine, reg.inverse_warp, None)
        return reg

    def files(self) -> tuple[Path, ...]:
        """Every existing file of the registration."""
        return tuple(p for p in (self.affine, self.inverse_warp, self.warp) if p is not None)


@dataclass(frozen=True)
class Chain:
    """An ordered transform list and its ``whichtoinvert`` flags."""

    files: tuple[Path, ...]
    invert: tuple[bool, ...]

    def __post_init__(self) -> None:
        if len(self.files) != len(self.invert):
            raise ValueError("a chain needs one invert flag per file")

    def __add__(self, other: Chain) -> Chain:
        return Chain(self.files + other.files, self.invert + other.invert)


def moving_to_fixed_points(reg: Registration) -> Chain:
    """Chain mapping moving-image points to fixed-image points: ``[Aff^-1, InverseWarp]``."""
    return Chain((reg.affine, reg.inverse_warp), (True, False))


def fixed_to_moving_points(reg: Registration) -> Chain:
    """Chain mapping fixed-image points to moving-image points: ``[Warp, Aff]``."""
    if reg.warp is None:
        raise InputError("the forward warp (1Warp.nii.gz) is required", file=reg.affine.parent)
    return Chain((reg.warp, reg.affine), (False, False))


def individual_to_template(ls_to_template: Registration) -> Chain:
    """Points: individual brain (registration frame) -> LCA template (F5)."""
    return moving_to_fixed_points(ls_to_template)


def individual_to_ccf(ls_to_template: Registration, template_to_ccf: Registration) -> Chain:
    """Points individual -> CCF, ``[ls_Aff, ls_InvWarp, t2c_Aff, t2c_InvWarp]`` ``[T,F,T,F]``.

    The same list resamples CCF volumes onto an individual-image grid (fixed = image grid).
    """
    return moving_to_fixed_points(ls_to_template) + moving_to_fixed_points(template_to_ccf)


def ccf_to_individual(ls_to_template: Registration, template_to_ccf: Registration) -> Chain:
    """Points CCF -> individual, ``[t2c_Warp, t2c_Aff, ls_Warp, ls_Aff]`` (all forward).

    The same list resamples individual images onto the CCF grid (fixed = CCF).
    """
    return fixed_to_moving_points(template_to_ccf) + fixed_to_moving_points(ls_to_template)


def apply_to_points(chain: Chain, points_lps_mm: np.ndarray) -> np.ndarray:
    """Map (n, 3) LPS mm points through ``chain`` with ``ants.apply_transforms_to_points``."""
    import ants
    import pandas as pd

    pts = np.atleast_2d(np.asarray(points_lps_mm, dtype=float))
    frame = pd.DataFrame(pts, columns=["x", "y", "z"])
    out = ants.apply_transforms_to_points(
        3, frame, [str(p) for p in chain.files], whichtoinvert=list(chain.invert)
    )
    return out[["x", "y", "z"]].to_numpy(dtype=float)


def sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file (recorded for every transform used)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()


def apply_to_volume_files(
    reference: Path, moving: Path, chain: Chain, interpolator: str, output: Path
) -> Path:
    """Resample the ``moving`` image file onto ``reference``'s grid through ``chain``.

    Runs ANTs's ``antsApplyTransforms`` on files in single precision: ANTs then holds the
    reference, the moving image and the output once each (float32). ``ants.apply_transforms`` on
    in-memory images keeps several working copies of both (double precision by default), about
    3x the memory at real scale. The output pixel type is float32, so no value is narrowed.
    """
    args = [
        "-d",
        "3",
        "-i",
        str(moving),
        "-r",
        str(reference),
        "-o",
        str(output),
        "-n",
        interpolator,
        "--float",
        "1",
        "-z",
        "1",
        "-v",
        "0",
        "-f",
        "0",
    ]
    for path, invert in zip(chain.files, chain.invert, strict=True):
        args += ["-t", f"[{path},1]" if invert else str(path)]
    if ants_tool("antsApplyTransforms")(args) != 0:
        raise RuntimeError(f"antsApplyTransforms failed: {moving} onto {reference}")
    return output


ANTS_LIB = "ants.lib"  # antspyx's compiled module: every ANTs command-line tool as a function


def ants_tool(name: str) -> Callable[[list[str]], int]:
    """One of ANTs's command-line tools (``antsApplyTransforms`` ...) from antspyx's own library.

    ``import ants`` runs the whole package (statsmodels, scipy.stats, matplotlib): 1.4-3.7 s of
    CPU in every process that warps a volume, for a tool that needs only the compiled module.
    This loads that module alone and registers it under its own name, so a later ``import ants``
    in the same process finds and reuses it (never a second copy of the extension).
    """
    lib = sys.modules.get(ANTS_LIB)
    if lib is None:
        package = importlib.util.find_spec("ants")
        if package is None or not package.submodule_search_locations:
            raise RuntimeError("antspyx is not installed")
        found = sorted(Path(package.submodule_search_locations[0]).glob("lib.*.so"))
        if not found:
            raise RuntimeError(f"antspyx's compiled library is missing from {package.origin}")
        spec = importlib.util.spec_from_file_location(ANTS_LIB, found[0])
        assert spec is not None and spec.loader is not None
        lib = importlib.util.module_from_spec(spec)
        sys.modules[ANTS_LIB] = lib
        try:
            spec.loader.exec_module(lib)
        except BaseException:
            del sys.modules[ANTS_LIB]
            raise
    return getattr(lib, name)
