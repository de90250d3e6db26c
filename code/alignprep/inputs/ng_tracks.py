"""Annotation layers -> probe-track coordinates -> level-0 voxel indices (F0 -> F1).

Contract: ``inputs.md`` section 3b, ``coordinates.md`` section 1, docs/inputs/neuroglancer.md.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InputError
from .ng_annotations import pick_vertices
from .ng_state import LOCAL_ANNOTATIONS, entry_url, source_entries, state_layers
from .ng_transform import (
    IDENTITY,
    SPATIAL_ZYX,
    Placement,
    SourceTransform,
    dimensions_from_json,
    spatial_um,
)

logger = logging.getLogger("alignprep.inputs.neuroglancer")


@dataclass(frozen=True)
class TrackPoints:
    """Picks of one annotation layer in display coordinates, reordered by name to (z, y, x).

    ``coords_zyx * scale_um_zyx`` is the physical position (um) in the state's global space:
    the layer's own source transform, if any, is already applied. ``kind`` is ``"point"`` or
    ``"segment"`` (lines and polylines).
    """

    file: Path
    layer: str
    coords_zyx: np.ndarray
    scale_um_zyx: np.ndarray
    dimension_source: str
    warnings: tuple[str, ...]
    kind: str = "point"


def _annotation_layer(state: dict, loc: dict) -> dict:
    layers = [lay for lay in state_layers(state, loc["file"]) if lay.get("type") == "annotation"]
    found = [lay for lay in layers if lay.get("name") == loc["layer"]]
    if not found:
        available = [lay.get("name") for lay in layers] or "none"
        msg = f"no annotation layer of that name; annotation layers in the file: {available}"
        raise InputError(msg, **loc)
    if len(found) > 1:
        raise InputError(f"{len(found)} annotation layers have this name; expected one", **loc)
    return found[0]


def _local_transform(layer: dict, loc: dict) -> SourceTransform | None:
    """The transform of the layer's ``local://annotations`` source (None: none written).

    A layer without ``source`` is a legacy local annotation layer.
    """
    entries = source_entries(layer)
    if not entries:
        return None
    local = [e for e in entries if entry_url(e) == LOCAL_ANNOTATIONS]
    if len(local) != 1:
        urls = [entry_url(e) for e in entries]
        raise InputError(
            f"the layer's sources are {urls}; expected exactly one {LOCAL_ANNOTATIONS!r} "
            "source, which holds the layer's 'annotations'",
            **loc,
            key="source",
        )
    entry = local[0]
    if isinstance(entry, dict) and entry.get("transform") is not None:
        return SourceTransform.from_json(entry["transform"], loc)
    return None


def track_points(state: dict, layer_name: str, file: Path, min_points: int = 2) -> TrackPoints:
    """Read the picks of annotation layer ``layer_name`` as display (z, y, x) coordinates.

    Picks keep annotation order (entry first, deepest last): points one each; lines and
    polylines their vertices (see :mod:`alignprep.inputs.ng_annotations`). The layer's own
    ``source.transform`` (matrix, ``inputDimensions``) is applied.
    """
    file = Path(file)
    loc = {"file": file, "layer": layer_name}
    layer = _annotation_layer(state, loc)
    transform = _local_transform(layer, loc)
    if transform is not None:
        dims, where = transform.output, "layer source.transform.outputDimensions"
    elif "dimensions" in state:
        where = "global dimensions"
        dims = dimensions_from_json(state["dimensions"], where, loc)
        logger.info(
            "%s, layer %r: no layer transform; using the global dimensions", file, layer_name
        )
    else:
        raise InputError(
            "no dimension names: expected the layer's source.transform.outputDimensions or the "
            "state's global 'dimensions'",
            **loc,
        )
    names = [d.name for d in dims]
    scale = spatial_um(dims, where, loc)
    raw, kind = pick_vertices(layer.get("annotations", []), names, loc)
    n = len(raw)
    if n < min_points:
        what = "point annotation(s)" if kind == "point" else "line/polyline vertices"
        msg = f"found {n} {what}; at least {min_points} are needed (entry and tip)"
        raise InputError(msg, **loc)
    warnings = []
    if n < 4:
        warnings.append(
            f"layer {layer_name!r} has only {n} points; the GUIs fit the entry and exit lines "
            "to the first and last max(4, round(n/4)) picks, so at least 4 are recommended"
        )
    coords = np.array(raw, dtype=np.float64).reshape(n, len(names))
    if transform is not None:
        coords = transform.display_coordinates(coords, loc)
    order = [names.index(a) for a in SPATIAL_ZYX]
    return TrackPoints(file, layer_name, coords[:, order], scale, where, tuple(warnings), kind)


def to_level0_index(
    points: TrackPoints,
    spacing0_um_zyx: Sequence[float],
    voxel_origin: Literal["center", "corner"],
    rel_tol: float = 1e-3,
    placement: Placement = IDENTITY,
) -> np.ndarray:
    """Convert Neuroglancer coordinates to continuous level-0 indices in ITK order (x, y, z).

    ``idx_a = coord_a * scale_um_a / spacing0_um_a - t_a * out_um_a / spacing0_um_a``, where
    ``t`` is the translation of the image layer the picks were drawn over (``placement``), minus
    0.5 when ``voxel_origin`` is ``"corner"`` (coordinates.md section 1).

    Raises
    ------
    InputError
        The Neuroglancer scale differs from the level-0 spacing by more than ``rel_tol`` on an
        axis (the state was almost certainly made on another image), or the image layer
        overrides the source voxel size.
    """
    spacing = np.asarray(spacing0_um_zyx, dtype=np.float64)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise ValueError(f"spacing0_um_zyx must be 3 positive numbers, got {spacing0_um_zyx!r}")
    if voxel_origin not in ("center", "corner"):
        raise ValueError(f"voxel_origin must be 'center' or 'corner', got {voxel_origin!r}")
    if placement.problem:
        raise ValueError(f"placement has a problem: {placement.problem}")
    loc = {"file": points.file, "layer": points.layer}
    ratio = points.scale_um_zyx / spacing
    bad = [
        f"{axis}: Neuroglancer scale {float(s):.6g} um vs OME-Zarr level-0 spacing "
        f"{float(sp):.6g} um"
        for axis, s, sp, r in zip(SPATIAL_ZYX, points.scale_um_zyx, spacing, ratio, strict=True)
        if abs(r - 1.0) > rel_tol
    ]
    if bad:
        raise InputError(
            f"Neuroglancer scale differs from the image's level-0 spacing ({'; '.join(bad)}); "
            f"expected equal within a relative {rel_tol:g}. The state was probably made on "
            "another image",
            **loc,
        )
    if placement.in_um_zyx is not None:
        in_ratio = np.asarray(placement.in_um_zyx) / spacing
        if np.any(np.abs(in_ratio - 1.0) > rel_tol):
            raise InputError(
                f"the image layer the picks were drawn over overrides the source voxel size "
                f"(inputDimensions z, y, x = {list(placement.in_um_zyx)} um vs level-0 spacing "
                f"{spacing.tolist()} um), so it is displayed rescaled; expected no "
                "inputDimensions, or the image's own voxel size",
                **loc,
            )
    idx = points.coords_zyx * ratio
    if any(placement.translation_zyx):
        idx = idx - np.asarray(placement.translation_zyx) * (
            np.asarray(placement.out_um_zyx) / spacing
        )
    if voxel_origin == "corner":
        idx = idx - 0.5
    return np.ascontiguousarray(idx[:, ::-1], dtype=np.float64)
