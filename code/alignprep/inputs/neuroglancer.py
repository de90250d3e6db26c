"""Neuroglancer states: image layers -> SmartSPIM asset; annotation layers -> probe-track points.

Contract: ``inputs.md`` sections 3 and 3b, ``coordinates.md`` section 1 (F0 -> F1).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import numpy as np

from alignprep.errors import InputError
from alignprep.reads import note_file, note_listing

logger = logging.getLogger("alignprep.inputs.neuroglancer")

ASSET_MARKER = "image_tile_fusing"
SPATIAL_ZYX = ("z", "y", "x")
# Exact decimal factors, so 1.8e-6 m is exactly 1.8 um. "\u00b5m": micro sign, "\u03bcm": mu.
_UM_PER_UNIT = {u: Decimal(f) for u, f in [("m", "1e6"), ("mm", "1e3"), ("nm", "1e-3")]}
_UM_PER_UNIT.update({u: Decimal(1) for u in ("um", "\u00b5m", "\u03bcm")})
_SCHEME = r"[A-Za-z][A-Za-z0-9+.\-]*://"
_ZARR_PREFIX = re.compile(rf"^zarr[23]?:/*(?={_SCHEME})")
_ZARR_SUFFIX = re.compile(r"\|zarr[23]?:/*$")
_URL = re.compile(rf"^({_SCHEME})(.*)$")
_NOT_POINT_KEYS = ("pointA", "pointB", "center")


def read_state(path: Path) -> dict:
    """Read a Neuroglancer state file; it must hold one JSON object."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found; expected a Neuroglancer state JSON file", file=path)
    try:
        state = json.loads(note_file(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON ({exc.msg}, column {exc.colno}); expected a Neuroglancer state",
            file=path,
            row=exc.lineno,
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file as UTF-8 text: {exc}", file=path) from exc
    if not isinstance(state, dict):
        what = type(state).__name__
        raise InputError(f"top-level JSON is a {what}; expected an object (a state)", file=path)
    return state


def _layers(state: dict, file: Path) -> list[dict]:
    layers = state.get("layers", [])
    if isinstance(layers, dict):  # legacy states: {"name": {...}, ...}
        layers = [{"name": k, **v} for k, v in layers.items() if isinstance(v, dict)]
    if not isinstance(layers, list):
        raise InputError("'layers' must be a list of layer objects", file=file, key="layers")
    return [layer for layer in layers if isinstance(layer, dict)]


def _source_entries(layer: dict) -> list[Any]:
    source = layer.get("source")
    if source is None:
        return []
    return list(source) if isinstance(source, list) else [source]


def _is_identity(matrix: Any) -> bool:
    """True for an identity ``n x (n+1)`` (or homogeneous square) matrix, zero translation."""
    try:
        rows = [[float(v) for v in row] for row in matrix]
    except (TypeError, ValueError):
        return False
    return all(
        v == (1.0 if i == j else 0.0) for i, row in enumerate(rows) for j, v in enumerate(row)
    )


# ----------------------------------------------------------------------------------- image layers


@dataclass(frozen=True)
class ImageSources:
    """The SmartSPIM asset that the image layers of a state point at."""

    asset_name: str
    asset_path: Path
    layer_names: tuple[str, ...]
    warnings: tuple[str, ...]


def clean_source_url(url: str) -> str:
    """Strip a leading ``zarr:`` (before another scheme), a trailing ``|zarr2:`` and ``/``."""
    url = _ZARR_SUFFIX.sub("", _ZARR_PREFIX.sub("", url.strip()))
    return url.rstrip("/") or url


def _asset_of(url: str) -> tuple[str, Path | None] | None:
    """Return (asset name, existing local asset dir or None), or None without the layout."""
    match = _URL.match(url)
    local: str | None = None
    if match and match.group(1).lower() == "file://":
        path = local = unquote(urlparse(url).path)
    elif match:
        path = match.group(2)
    else:
        path = url
        local = url if url.startswith("/") else None
    parts = [p for p in path.split("/") if p]
    if ASSET_MARKER not in parts or parts.index(ASSET_MARKER) == 0:
        return None
    name = parts[parts.index(ASSET_MARKER) - 1]
    if local is not None and Path(local).is_absolute() and Path(local).exists():
        lparts = Path(local).parts
        return name, Path(*lparts[: lparts.index(ASSET_MARKER)])
    return name, None


def image_sources(state: dict, data_root: Path, file: Path) -> ImageSources:
    """Resolve the image layers of ``state`` to the one SmartSPIM asset they display.

    Raises
    ------
    InputError
        No image layer, a source without ``<asset>/image_tile_fusing/``, or several assets.
    """
    names: list[str] = []
    resolved: list[tuple[str, str, Path | None]] = []  # (layer, asset name, local dir)
    warnings: list[str] = []
    for layer in _layers(state, file):
        if layer.get("type") != "image" or not isinstance(layer.get("name"), str):
            continue
        name = layer["name"]
        names.append(name)
        for entry in _source_entries(layer) or [None]:
            url = entry.get("url") if isinstance(entry, dict) else entry
            if not isinstance(url, str):
                msg = f"image layer source is {entry!r}; expected a URL or an object with 'url'"
                raise InputError(msg, file=file, layer=name)
            asset = _asset_of(clean_source_url(url))
            if asset is None:
                raise InputError(
                    f"image layer source {url!r} has no '<asset>/{ASSET_MARKER}/' path "
                    f"component; expected <asset>/{ASSET_MARKER}/OMEZarr/<channel>.zarr",
                    file=file,
                    layer=name,
                )
            resolved.append((name, *asset))
            transform = entry.get("transform") if isinstance(entry, dict) else None
            if isinstance(transform, dict) and not _is_identity(transform.get("matrix", [])):
                warnings.append(
                    f"image layer {name!r} has a non-identity source.transform; annotations "
                    "drawn over it inherit that offset"
                )
    if not resolved:
        msg = "no image layer (type 'image' with a 'name'); expected one showing a SmartSPIM asset"
        raise InputError(msg, file=file)
    assets = {asset for _, asset, _ in resolved}
    if len(assets) > 1:
        mapping = ", ".join(f"{layer!r} -> {asset!r}" for layer, asset, _ in resolved)
        raise InputError(
            f"image layers resolve to {len(assets)} different assets ({mapping}); "
            "expected every image layer to come from one stitched SmartSPIM asset",
            file=file,
        )
    asset_name = assets.pop()
    local_dirs = sorted({str(d) for _, _, d in resolved if d is not None})
    if len(local_dirs) > 1:
        msg = f"image layers use several local copies of the asset: {', '.join(local_dirs)}"
        raise InputError(f"{msg}; expected one", file=file)
    asset_path = Path(local_dirs[0]) if local_dirs else Path(data_root) / asset_name
    return ImageSources(asset_name, asset_path, tuple(names), tuple(warnings))


# ------------------------------------------------------------------------------ annotation files


def find_probe_file(data_root: Path, probe_file: str) -> Path:
    """Find ``data_root/*/<probe_file>.json``, exactly one directory level down.

    Raises
    ------
    InputError
        No match (the message names the pattern), or more than one (every match is listed).
    """
    data_root = Path(data_root)
    pattern = data_root / "*" / f"{probe_file}.json"
    if not probe_file or "/" in probe_file or probe_file in (".", ".."):
        msg = f"probe_file {probe_file!r} is not a plain file name; expected a basename"
        raise InputError(msg, file=pattern, key="probe_file")
    if not data_root.is_dir():
        raise InputError("data_root is not a directory", file=data_root)
    name = f"{probe_file}.json"
    note_listing(data_root, f"*/{name}")
    matches = sorted(d / name for d in data_root.iterdir() if (d / name).is_file())
    if not matches:
        hint = " (give probe_file without '.json')" if probe_file.endswith(".json") else ""
        raise InputError(
            f"no annotation file matches; expected exactly one, one folder below data_root{hint}",
            file=pattern,
            key="probe_file",
        )
    if len(matches) > 1:
        raise InputError(
            f"{len(matches)} annotation files match ({', '.join(map(str, matches))}); "
            "expected exactly one",
            file=pattern,
            key="probe_file",
        )
    return matches[0]


@dataclass(frozen=True)
class TrackPoints:
    """Points of one annotation layer, reordered by dimension name to (z, y, x)."""

    file: Path
    layer: str
    coords_zyx: np.ndarray
    scale_um_zyx: np.ndarray
    dimension_source: str
    warnings: tuple[str, ...]


def _annotation_layer(state: dict, loc: dict) -> dict:
    layers = [lay for lay in _layers(state, loc["file"]) if lay.get("type") == "annotation"]
    found = [lay for lay in layers if lay.get("name") == loc["layer"]]
    if not found:
        available = [lay.get("name") for lay in layers] or "none"
        msg = f"no annotation layer of that name; annotation layers in the file: {available}"
        raise InputError(msg, **loc)
    if len(found) > 1:
        raise InputError(f"{len(found)} annotation layers have this name; expected one", **loc)
    return found[0]


def _dimensions(state: dict, layer: dict, loc: dict) -> tuple[dict, str]:
    transforms = [
        e["transform"]
        for e in _source_entries(layer)
        if isinstance(e, dict) and isinstance(e.get("transform"), dict)
    ]
    if any("matrix" in t and not _is_identity(t["matrix"]) for t in transforms):
        raise InputError(
            "the layer has a source.transform.matrix; affine annotation transforms are not "
            "applied, expected no matrix (or the identity)",
            **loc,
            key="source.transform.matrix",
        )
    if transforms and "outputDimensions" in transforms[0]:
        dims, where = transforms[0]["outputDimensions"], "layer source.transform.outputDimensions"
    elif "dimensions" in state:
        dims, where = state["dimensions"], "global dimensions"
        logger.info("%s, layer %r: no layer transform; using the global dimensions", *loc.values())
    else:
        raise InputError(
            "no dimension names: expected the layer's source.transform.outputDimensions or the "
            "state's global 'dimensions'",
            **loc,
        )
    if not isinstance(dims, dict) or not dims:
        msg = f'{where} is {dims!r}; expected an object like {{"x": [1.8e-06, "m"], ...}}'
        raise InputError(msg, **loc)
    return dims, where


def _scale_um(entry: Any, axis: str, where: str, loc: dict) -> float:
    ok = isinstance(entry, list | tuple) and len(entry) == 2
    scale, unit = entry if ok else (None, None)
    if not (isinstance(scale, int | float) and not isinstance(scale, bool)) or not (
        math.isfinite(scale) and scale > 0
    ):
        raise InputError(f"{where} entry {axis!r} is {entry!r}; expected [scale > 0, unit]", **loc)
    if unit not in _UM_PER_UNIT:
        msg = f"{where} unit of {axis!r} is {unit!r}; expected one of {sorted(_UM_PER_UNIT)}"
        raise InputError(msg, **loc)
    return float(Decimal(str(scale)) * _UM_PER_UNIT[unit])


def _point(ann: Any, i: int, names: list[str], loc: dict) -> list[float]:
    key = f"annotations[{i}]"
    if not isinstance(ann, dict):
        raise InputError(f"annotation is {ann!r}; expected an object", **loc, key=key)
    kind = ann.get("type", "point" if "point" in ann else None)
    if kind != "point" or any(k in ann for k in _NOT_POINT_KEYS):
        raise InputError(
            f"annotation of type {kind!r} is not supported; expected point annotations "
            "(one 'point' per pick; line, box and ellipsoid annotations are not read)",
            **loc,
            key=key,
        )
    coords = ann.get("point")
    if (
        not isinstance(coords, list)
        or len(coords) != len(names)
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in coords)
        or not all(math.isfinite(c) for c in coords)
    ):
        msg = f"point is {coords!r}; expected {len(names)} finite numbers, one per dimension"
        raise InputError(f"{msg} {names}", **loc, key=key)
    return [float(c) for c in coords]


def track_points(state: dict, layer_name: str, file: Path, min_points: int = 2) -> TrackPoints:
    """Read the point annotations of layer ``layer_name`` as raw (z, y, x) coordinates.

    Annotation order is kept (entry first, deepest last); no sorting, no de-duplication.
    """
    file = Path(file)
    loc = {"file": file, "layer": layer_name}
    layer = _annotation_layer(state, loc)
    dims, where = _dimensions(state, layer, loc)
    names = list(dims)
    if any(axis not in dims for axis in SPATIAL_ZYX):
        msg = f"unknown dimension names {names} in {where}; expected x, y and z (t etc. dropped)"
        raise InputError(msg, **loc)
    scale = np.array([_scale_um(dims[a], a, where, loc) for a in SPATIAL_ZYX])
    annotations = layer.get("annotations", [])
    if not isinstance(annotations, list):
        msg = "'annotations' is not a list; expected a list of point annotations"
        raise InputError(msg, **loc, key="annotations")
    raw = [_point(a, i, names, loc) for i, a in enumerate(annotations)]
    n = len(raw)
    if n < min_points:
        msg = f"found {n} point annotation(s); at least {min_points} are needed (entry and tip)"
        raise InputError(msg, **loc)
    warnings = []
    if n < 4:
        warnings.append(
            f"layer {layer_name!r} has only {n} points; the GUIs fit the entry and exit lines "
            "to the first and last max(4, round(n/4)) picks, so at least 4 are recommended"
        )
    order = [names.index(a) for a in SPATIAL_ZYX]
    coords = np.array(raw, dtype=np.float64).reshape(n, len(names))[:, order]
    return TrackPoints(file, layer_name, coords, scale, where, tuple(warnings))


def to_level0_index(
    points: TrackPoints,
    spacing0_um_zyx: Sequence[float],
    voxel_origin: Literal["center", "corner"],
    rel_tol: float = 1e-3,
) -> np.ndarray:
    """Convert Neuroglancer coordinates to continuous level-0 indices in ITK order (x, y, z).

    ``idx_a = coord_a * scale_um_a / spacing0_um_a``, minus 0.5 when ``voxel_origin`` is
    ``"corner"`` (coordinates.md section 1).

    Raises
    ------
    InputError
        The Neuroglancer scale differs from the level-0 spacing by more than ``rel_tol`` on an
        axis: the state was almost certainly made on another image.
    """
    spacing = np.asarray(spacing0_um_zyx, dtype=np.float64)
    if spacing.shape != (3,) or not np.all(np.isfinite(spacing) & (spacing > 0)):
        raise ValueError(f"spacing0_um_zyx must be 3 positive numbers, got {spacing0_um_zyx!r}")
    if voxel_origin not in ("center", "corner"):
        raise ValueError(f"voxel_origin must be 'center' or 'corner', got {voxel_origin!r}")
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
            file=points.file,
            layer=points.layer,
        )
    idx = points.coords_zyx * ratio
    if voxel_origin == "corner":
        idx = idx - 0.5
    return np.ascontiguousarray(idx[:, ::-1], dtype=np.float64)
