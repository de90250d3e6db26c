"""The SmartSPIM registration-frame ("pipeline frame", F3) convention and the frame decision.

The stored ``ls_to_template_SyN_*`` registrations of SmartSPIM pipeline assets were computed on
the registration level with a physical header produced by an undocumented convention
(coordinates.md §3). Applying them to native (F2) positions is silently wrong by ~10 mm, so the
header is reproduced here. Constants are those of aind-zarr-utils 0.18.0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from packaging.version import InvalidVersion, Version

from .frames import ImageHeader, level_origin

REGISTRATION_LEVEL = 3
"""The pyramid level the pipeline registered (the peer's rule, also its default)."""

ANCHOR_LPS_MM = np.array([-1.5114, -1.5, 1.5])
"""Centre of the RAS-corner voxel of the registration level, LPS mm (step B)."""

FORCED_SPACING_MM = {"LR": 0.0144, "AP": 0.0144, "SI": 0.016}
"""Registration-level spacing per world axis when step A applies."""

_V_OVERLAYS = Version("0.0.18")
_V_FORCED_END = Version("0.0.32")
_V_VERIFIED_END = Version("0.0.34")

Frame = Literal["pipeline", "native"]


def parse_import_version(text: str) -> Version:
    """PEP 440 version of the zarr-import step (``processing.json``)."""
    try:
        return Version(str(text).strip().lstrip("v"))
    except InvalidVersion:
        raise ValueError(f"zarr-import code_version {text!r} is not a PEP 440 version") from None


@dataclass(frozen=True)
class PipelineFrame:
    """Level-0 F3 header plus what was applied, for logs and provenance."""

    header0: ImageHeader
    steps: tuple[str, ...]
    import_version: str
    warnings: tuple[str, ...] = ()

    def header_at(self, level: int, size: tuple[int, int, int]) -> ImageHeader:
        """F3 header of pyramid level ``level`` (factor 2 per level), e.g. the histology level."""
        s0 = self.header0.spacing
        s_l = s0 * 2**level
        origin = level_origin(self.header0.origin, self.header0.direction, s0, s_l)
        return ImageHeader(origin, s_l, self.header0.direction, size)


def pipeline_frame(
    native_reg: ImageHeader, size0: tuple[int, int, int], import_version: str
) -> PipelineFrame:
    """Build the level-0 pipeline-frame header from the registration level's native header.

    Parameters
    ----------
    native_reg
        F2 header of the registration level (level 3): its size, spacing (mm) and direction.
    size0
        Level-0 size (ITK order); the F3 header describes level-0 indices.
    import_version
        ``processing.json`` "Image importing" ``code_version``.
    """
    version = parse_import_version(import_version)
    direction = native_reg.direction
    spacing_r = native_reg.spacing.copy()
    steps: list[str] = []
    warnings: list[str] = []
    if version < _V_OVERLAYS:
        # No overlays: F3 = F2 at level 0.
        s0 = spacing_r / 2**REGISTRATION_LEVEL
        header0 = ImageHeader(np.zeros(3), s0, direction, size0)
        return PipelineFrame(header0, ("none (import < 0.0.18)",), str(version))
    if version < _V_FORCED_END:
        world_axis = np.argmax(np.abs(direction), axis=0)  # LPS axis of each index axis
        forced = np.array([FORCED_SPACING_MM[("LR", "AP", "SI")[a]] for a in world_axis])
        spacing_r = forced
        steps.append("A: forced registration-level spacing 14.4/14.4/16 um")
    if version > _V_VERIFIED_END:
        warnings.append(
            f"zarr-import version {version} is newer than 0.0.34; the pipeline-frame corner "
            "anchor is still applied (as the reference implementation does), unverified"
        )
    # Step B: the RAS-corner voxel centre of the registration level sits at the anchor.
    toward_ras = (direction[0] < -0.5) | (direction[1] < -0.5) | (direction[2] > 0.5)
    corner = np.where(toward_ras, np.asarray(native_reg.size) - 1, 0)
    origin_r = ANCHOR_LPS_MM - direction @ (spacing_r * corner)
    steps.append("B: RAS-corner anchor at LPS (-1.5114, -1.5, 1.5) mm")
    # Step C: back to level 0.
    spacing_p0 = spacing_r / 2**REGISTRATION_LEVEL
    origin_p0 = origin_r + direction @ ((spacing_p0 - spacing_r) / 2)
    steps.append("C: level 3 -> level 0")
    header0 = ImageHeader(origin_p0, spacing_p0, direction, size0)
    return PipelineFrame(header0, tuple(steps), str(version), tuple(warnings))


def bbox_lps(header: ImageHeader) -> np.ndarray:
    """Voxel-centre bounding box, ``[[Lmin, Lmax], [Pmin, Pmax], [Smin, Smax]]`` in mm."""
    corners = header.corners_physical()
    return np.stack([corners.min(axis=0), corners.max(axis=0)], axis=1)


@dataclass(frozen=True)
class FrameDecision:
    """Which frame the stored registration expects, and why."""

    frame: Frame
    reason: str
    distance_mm: dict[str, float] | None = None


def decide_frame(
    sidecar: dict[str, Any] | None,
    native0: ImageHeader,
    pipeline0: ImageHeader,
    sidecar_name: str = "sidecar",
) -> FrameDecision:
    """The sidecar rule of coordinates.md §3.3 (no sidecar -> pipeline frame)."""
    if sidecar is None:
        return FrameDecision("pipeline", "no transform sidecar: pipeline registration (F3)")
    domain = sidecar.get("moving_domain")
    if not isinstance(domain, dict) or "bbox" not in domain:
        raise ValueError(f"{sidecar_name}: no moving_domain.bbox; cannot decide the frame")
    box = domain["bbox"]
    try:
        want = np.array([[float(v) for v in box[a]] for a in ("L", "P", "S")])
    except (KeyError, TypeError, ValueError):
        raise ValueError(
            f"{sidecar_name}: moving_domain.bbox must have L, P, S as [min, max] in mm"
        ) from None
    distance = {
        "native": float(np.max(np.abs(bbox_lps(native0) - want))),
        "pipeline": float(np.max(np.abs(bbox_lps(pipeline0) - want))),
    }
    frame: Frame = min(distance, key=distance.get)  # type: ignore[arg-type]
    limit = max(1.0, 4 * float(np.max(native0.spacing)) * 2**REGISTRATION_LEVEL)
    if distance[frame] > limit:
        raise ValueError(
            f"{sidecar_name}: moving_domain.bbox is {distance[frame]:.3f} mm from the nearest "
            f"frame ({frame}); allowed {limit:.3f} mm. The registration does not match this image."
        )
    return FrameDecision(frame, f"sidecar bbox nearest to the {frame} frame", distance)
