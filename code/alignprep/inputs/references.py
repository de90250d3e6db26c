"""Reference volumes (CCF template, compact labels, LCA template) and template -> CCF transforms."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PipelineConfig
from ..errors import InputError
from ..space.atlas import check_ccf_header
from ..space.frames import ImageHeader
from ..space.transforms import Registration
from .locate import read_json_object

T2C_PIPELINE_PREFIX = "syn_"
T2C_OVERRIDE_PREFIX = "template_to_ccf_"
T2C_SIDECARS = ("template_to_ccf_transform_information.json", "transform_information.json")


@dataclass(frozen=True)
class TemplateToCcf:
    """The template -> CCF registration in use, and where it came from."""

    registration: Registration
    directory: Path
    is_override: bool
    sidecar: dict[str, Any] | None


def template_to_ccf(config: PipelineConfig, override: str | None = None) -> TemplateToCcf:
    """``<data_root>/spim_template_to_ccf/syn_*`` or a manifest ``template_to_ccf_asset``."""
    if override:
        directory = config.input_path(override)
        reg = Registration.from_prefix(directory / T2C_OVERRIDE_PREFIX)
        sidecar_path = next(
            (directory / n for n in T2C_SIDECARS if (directory / n).is_file()), None
        )
        if sidecar_path is None:
            raise InputError(
                "a template_to_ccf_asset override needs a transform sidecar "
                f"({' or '.join(T2C_SIDECARS)})",
                file=directory,
            )
        return TemplateToCcf(reg, directory, True, read_json_object(sidecar_path))
    directory = config.references.template_to_ccf_dir
    return TemplateToCcf(
        Registration.from_prefix(directory / T2C_PIPELINE_PREFIX), directory, False, None
    )


def require_file(path: Path, what: str) -> Path:
    """``path`` if it is a file, else InputError naming it and what it is for."""
    if not Path(path).is_file():
        raise InputError(f"{what} not found", file=path)
    return Path(path)


def nifti_header(path: Path) -> ImageHeader:
    """LPS header of a NIfTI file, read without its voxels (nibabel keeps RAS; we flip)."""
    import nibabel as nib

    try:
        img = nib.load(str(require_file(path, "NIfTI volume")))
    except (OSError, nib.filebasedimages.ImageFileError) as exc:
        raise InputError(f"cannot read NIfTI header: {exc}", file=path) from None
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ img.affine  # RAS -> LPS
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    return ImageHeader(affine[:3, 3], spacing, affine[:3, :3] / spacing, img.shape[:3])


def nrrd_volume(path: Path) -> tuple[np.ndarray, ImageHeader]:
    """A NRRD volume in ITK index order (i, j, k) and its LPS header."""
    import nrrd

    try:
        data, hdr = nrrd.read(str(require_file(path, "NRRD volume")))  # index order (i, j, k)
    except nrrd.NRRDError as exc:
        raise InputError(f"cannot read NRRD: {exc}", file=path) from None
    space = str(hdr.get("space", "left-posterior-superior")).lower()
    flip = {"left-posterior-superior": [1, 1, 1], "right-anterior-superior": [-1, -1, 1]}
    if space not in flip:
        raise InputError(f"NRRD space {space!r}: expected LPS or RAS", file=path)
    axes = np.asarray(hdr["space directions"], dtype=float).T * np.array(flip[space])[:, None]
    spacing = np.linalg.norm(axes, axis=0)
    origin = np.asarray(hdr.get("space origin", np.zeros(3)), float) * flip[space]
    return data, ImageHeader(origin, spacing, axes / spacing, data.shape)


def unique_labels(config: PipelineConfig) -> np.ndarray:
    """Compact label index -> signed Allen id (``unique_labels`` of the lookup ``.npz``).

    Every entry must be an id of iblatlas ``BrainRegions`` (lateralized: left = -id, 0 = void);
    otherwise the label volumes would carry ids no atlas knows, silently.
    """
    from ..space.atlas import brain_regions

    path = require_file(config.references.ccf_labels_unique_values, "label lookup")
    try:
        raw = np.load(path)["unique_labels"]
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise InputError(f"cannot read unique_labels: {exc}", file=path) from None
    values = np.asarray(raw)
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "iuf":
        raise InputError(
            f"unique_labels has shape {values.shape}, dtype {values.dtype}: expected a 1-D "
            "array of signed Allen ids",
            file=path,
            key="unique_labels",
        )
    ids = values.astype(np.int64)
    if values.dtype.kind == "f" and not np.array_equal(ids, values):
        bad = np.flatnonzero(ids != values)
        raise InputError(
            f"unique_labels holds non-integer values {_few(bad, values)}: expected Allen ids",
            file=path,
            key="unique_labels",
        )
    unknown = np.flatnonzero(~np.isin(ids, brain_regions().id))
    if unknown.size:
        raise InputError(
            f"{unknown.size} entries are not Allen structure ids (iblatlas BrainRegions, "
            f"lateralized: left = -id, 0 = void): {_few(unknown, ids)}",
            file=path,
            key="unique_labels",
        )
    return ids


def _few(indices: np.ndarray, values: np.ndarray, n: int = 5) -> str:
    """``index k -> value`` for the first few offending entries."""
    shown = ", ".join(f"[{int(k)}] = {values[k]}" for k in indices[:n])
    return shown + (f", ... ({len(indices)} in all)" if len(indices) > n else "")


@dataclass(frozen=True)
class CcfLabels:
    """Lateralized Allen ids on the CCF 25 um grid, looked up at CCF points."""

    compact: np.ndarray  # (AP, DV, ML) compact indices
    unique_labels: np.ndarray  # compact index -> signed Allen id
    header: ImageHeader

    @classmethod
    def load(cls, config: PipelineConfig) -> CcfLabels:
        """Read the compact labels and their lookup; assert the CCF frame assumption."""
        path = config.references.ccf_labels_compact
        compact, header = nrrd_volume(path)
        problems = check_ccf_header(header, str(path))
        if problems:
            raise InputError("; ".join(problems), file=path)
        unique = unique_labels(config)
        lut_path = config.references.ccf_labels_unique_values
        if compact.min() < 0 or compact.max() >= len(unique):
            missing = np.unique(compact[(compact < 0) | (compact >= len(unique))])
            shown = ", ".join(str(int(v)) for v in missing[:5])
            more = f", ... ({missing.size} in all)" if missing.size > 5 else ""
            raise InputError(
                f"the volume uses compact labels {shown}{more} that have no entry in "
                f"{lut_path} ({len(unique)} entries: indices 0..{len(unique) - 1}); the lookup "
                "does not belong to this volume",
                file=path,
            )
        return cls(compact, unique, header)

    def ids_at(self, ccf_lps_mm: np.ndarray) -> np.ndarray:
        """Signed Allen id at each point (nearest voxel; 0 outside the grid)."""
        idx = np.rint(self.header.physical_to_index(ccf_lps_mm)).astype(int)
        inside = np.all((idx >= 0) & (idx < np.asarray(self.header.size)), axis=1)
        out = np.zeros(len(idx), dtype=np.int64)
        i, j, k = idx[inside].T
        out[inside] = self.unique_labels[self.compact[i, j, k]]
        return out


def check_ccf_template(config: PipelineConfig) -> ImageHeader:
    """The CCF template's header must match the frame the bregma conversion assumes."""
    path = config.references.ccf_template
    header = nifti_header(path)
    problems = check_ccf_header(header, str(path))
    if problems:
        raise InputError("; ".join(problems), file=path)
    return header
