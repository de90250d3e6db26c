"""ANTs transform chains: the files, their order and their invert flags, in one place.

Semantics (coordinates.md §5, checked in tests/unit/test_transforms.py):
* ``ants.apply_transforms_to_points`` maps points through the list in list order (element 0
  first);
* ``ants.apply_transforms(fixed=A, moving=B, L)`` samples B at L(p) for each grid point p of A,
  so the same list maps A-points to B-points (the capsule evaluates both rules itself, on the
  decoded fields: :mod:`.fields`, :mod:`.sampling`; the tests compare them with ANTs);
* a registration of moving M onto fixed F maps F-points to M-points with [1Warp, 0GenericAffine]
  and M-points to F-points with [0GenericAffine (inverted), 1InverseWarp].
Points are LPS millimetres in the frame the registration was computed in; no sign flips.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

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


def sha256(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file (recorded for every transform used)."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()
