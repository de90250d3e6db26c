"""Reference volumes (CCF template, compact labels, LCA template) and template -> CCF transforms.

CCF volumes may be stored in any index order whose physical geometry is the CCF's; they are
checked from their headers and reoriented to the canonical PIR layout on load, so everything
downstream sees one geometry (docs/inputs/references.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PipelineConfig
from ..errors import InputError
from ..logs import get_logger
from ..reads import note_file
from ..space.atlas import CCF_CODE, CCF_EXPECTED, ccf_header, check_ccf_header
from ..space.frames import ImageHeader, reorient
from ..space.resample import reorient_array
from ..space.transforms import Registration
from .locate import read_json_object
from .volumes import read_header, read_volume

log = get_logger("inputs.references")

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
        directory = config.input_path(override, "template_to_ccf_asset")
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
    """Physical LPS header of a NIfTI file in its stored index order, voxels not read.

    Vector images (ANTs displacement fields) give the header of their three spatial axes.
    """
    return read_header(require_file(path, "NIfTI volume"), "NIfTI volume", scalar=False)


def unique_labels(config: PipelineConfig) -> np.ndarray:
    """Compact label index -> signed Allen id (``unique_labels`` of the lookup ``.npz``).

    Every entry must be an id of iblatlas ``BrainRegions`` (lateralized: left = -id, 0 = void);
    otherwise the label volumes would carry ids no atlas knows, silently.
    """
    from ..space.atlas import brain_regions

    path = note_file(require_file(config.references.ccf_labels_unique_values, "label lookup"))
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

    compact: np.ndarray  # (AP, DV, ML) compact indices, canonical PIR whatever the stored order
    unique_labels: np.ndarray  # compact index -> signed Allen id
    header: ImageHeader

    @classmethod
    def load(cls, config: PipelineConfig) -> CcfLabels:
        """Read the compact labels and their lookup; assert the CCF frame assumption."""
        path = config.references.ccf_labels_compact
        compact, header = read_ccf_volume(path, "CCF compact labels")  # canonical PIR
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
    """The CCF template's canonical (PIR) header, after checking its physical geometry."""
    return ccf_volume_header(config.references.ccf_template, "CCF template")


# --- CCF volumes in any index order ----------------------------------------------------------


def ccf_volume_header(path: Path, what: str) -> ImageHeader:
    """Canonical PIR header of a stored CCF 25 um volume; InputError unless it is the CCF.

    Read from the header only. Every axis-aligned permutation of PIR is the CCF (coordinates.md
    §6); anything else (flipped or oblique axes, origin, spacing, the raw Allen NRRD) is refused.
    """
    stored = read_header(path, what)
    _require_ccf_geometry(stored, path, what)
    canonical, _ = reorient(stored, CCF_CODE)
    return ccf_header(canonical.size)


def read_ccf_volume(path: Path, what: str) -> tuple[np.ndarray, ImageHeader]:
    """A stored CCF 25 um volume reoriented to the canonical PIR layout, and its exact header.

    The array is in ITK order (AP, DV, ML) whatever the stored index order; the header is
    :func:`alignprep.space.atlas.ccf_header` (origin 0, 0.025 mm, PIR) exactly.
    """
    data, stored = read_volume(path, what)
    _require_ccf_geometry(stored, path, what)
    canonical, transform = reorient(stored, CCF_CODE)
    if stored.code != CCF_CODE:
        log.info("%s %s: stored %s %s, reoriented to PIR", what, path, stored.code, stored.size)
    # Fortran order = the ITK (i, j, k) memory layout: a plain copy when writing it back
    return np.asfortranarray(reorient_array(data, transform)), ccf_header(canonical.size)


# Resolutions of the Allen API NRRDs (annotation_<res>.nrrd): their header spacing, in um.
ALLEN_RESOLUTIONS_UM = (10.0, 25.0, 50.0, 100.0)


def _require_ccf_geometry(stored: ImageHeader, path: Path, what: str) -> None:
    """InputError naming the file, what its header says and the expected CCF layout."""
    spacing = float(stored.spacing[0])
    looks_raw_allen = (
        np.allclose(stored.direction, np.eye(3), atol=1e-9)
        and np.allclose(stored.spacing, spacing, rtol=1e-9)
        and any(np.isclose(spacing, r) for r in ALLEN_RESOLUTIONS_UM)
    )
    if looks_raw_allen:
        raise InputError(
            f"{what}: the header says the index axes point left, posterior, superior (identity "
            f"space directions) with {spacing:g} mm voxels: this is the raw Allen CCF NRRD "
            f"(annotation_{spacing:g}.nrrd / average_template_{spacing:g}.nrrd from the Allen "
            "API), whose array axes are really AP, DV, ML (toward P, I, R) in micrometres. Taken "
            "at face value it is a mirrored frame 1000x too large. Expected a 25 um CCF volume "
            f"whose header states the CCF geometry ({CCF_EXPECTED}, in mm), e.g. the Allen NIfTI "
            "average_template_25.nii.gz or the lateralized compact labels NRRD; to use this file, "
            "rewrite its header as space: left-posterior-superior, space directions "
            "(0,0.025,0) (0,0,-0.025) (-0.025,0,0), space origin (0,0,0)",
            file=path,
        )
    problems = check_ccf_header(stored, "")
    if problems:
        raise InputError(f"{what} is not the CCF 25 um frame: {'; '.join(problems)}", file=path)


# --- LCA template ----------------------------------------------------------------------------

LCA_SPACING_MM = 0.025


def check_lca_template(path: Path) -> ImageHeader:
    """Physical header of the SmartSPIM LCA template (stored order): 25 um, axis-aligned.

    The LCA template is the fixed image of the LS -> template registration; no external standard
    fixes its origin or index order, so any axis-aligned order is accepted (its voxels are never
    read) and what is checked is that its header states a 25 um axis-aligned 3-D frame.
    """
    header = read_header(path, "LCA template")
    problems = []
    try:
        code = header.code
    except ValueError:
        problems.append(
            f"index axes are oblique (direction {np.round(header.direction, 6).tolist()})"
        )
        code = "oblique"
    if not np.allclose(header.spacing, LCA_SPACING_MM, rtol=0, atol=1e-6):
        problems.append(f"spacing {np.round(header.spacing * 1e3, 6).tolist()} um")
    if problems:
        raise InputError(
            f"the LCA template's header: {'; '.join(problems)}; expected the SmartSPIM LCA "
            f"template at {LCA_SPACING_MM * 1e3:g} um on every axis, axis-aligned in any index "
            "order",
            file=path,
        )
    log.debug("LCA template %s: %s, %s", path, code, header.size)
    return header
