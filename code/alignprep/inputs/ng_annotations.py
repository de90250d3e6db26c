"""The pick list of one Neuroglancer annotation layer: points, lines and polylines.

Neuroglancer serialises (``src/annotation/index.ts``) a point as ``{"type": "point", "point": p}``,
a line as ``{"type": "line", "pointA": a, "pointB": b}`` and a polyline (since 2025) as
``{"type": "polyline", "points": [v0, v1, ...]}``; every coordinate list has one number per
dimension of the layer. The pick list is defined as follows (docs/inputs/neuroglancer.md):

* a layer of **points**: one pick per point, in annotation order; nothing is dropped or sorted;
* a layer of **lines and polylines** (in any mix): their vertices in annotation order (a line
  gives ``pointA`` then ``pointB``; a polyline its vertices); when a segment starts exactly where
  the previous one ended, that shared vertex is kept once;
* points mixed with lines or polylines are refused (which of them are picks is ambiguous), and so
  are boxes, ellipsoids and unknown types.
"""

from __future__ import annotations

import math
from typing import Any

from ..errors import InputError

SEGMENT_TYPES = ("line", "polyline")
_NOT_POINT_KEYS = ("pointA", "pointB", "center", "points")


def _coords(value: Any, n: int, what: str, names: list[str], loc: dict, key: str) -> list[float]:
    if (
        not isinstance(value, list)
        or len(value) != n
        or not all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
        or not all(math.isfinite(c) for c in value)
    ):
        msg = f"{what} is {value!r}; expected {n} finite numbers, one per dimension"
        raise InputError(f"{msg} {names}", **loc, key=key)
    return [float(c) for c in value]


def _kind(ann: Any, loc: dict, key: str) -> str:
    if not isinstance(ann, dict):
        raise InputError(f"annotation is {ann!r}; expected an object", **loc, key=key)
    kind = ann.get("type")
    if kind is None and "point" in ann:
        kind = "point"
    kind = kind.lower() if isinstance(kind, str) else kind
    if kind == "point" and any(k in ann for k in _NOT_POINT_KEYS):
        kind = None  # a 'point' that also carries another shape's keys
    if kind not in ("point", *SEGMENT_TYPES):
        raise InputError(
            f"annotation of type {ann.get('type')!r} is not supported; expected point "
            "annotations ('point'), or lines ('pointA', 'pointB') and polylines ('points'); "
            "boxes and ellipsoids are not read",
            **loc,
            key=key,
        )
    return kind


def pick_vertices(annotations: Any, names: list[str], loc: dict) -> tuple[list[list[float]], str]:
    """The picks of a layer's ``annotations`` (stored coordinates) and the layer's kind.

    The kind is ``"point"`` or ``"segment"`` (lines and polylines).
    """
    if not isinstance(annotations, list):
        msg = "'annotations' is not a list; expected a list of point, line or polyline annotations"
        raise InputError(msg, **loc, key="annotations")
    n = len(names)
    kinds = [_kind(a, loc, f"annotations[{i}]") for i, a in enumerate(annotations)]
    if "point" in kinds and any(k in SEGMENT_TYPES for k in kinds):
        first_point = kinds.index("point")
        first_segment = next(i for i, k in enumerate(kinds) if k in SEGMENT_TYPES)
        raise InputError(
            f"the layer mixes point annotations (first: annotations[{first_point}]) with "
            f"lines or polylines (first: annotations[{first_segment}]); expected only points "
            "(one pick each) or only lines and polylines (their vertices, in order)",
            **loc,
        )
    picks: list[list[float]] = []
    for i, (ann, kind) in enumerate(zip(annotations, kinds, strict=True)):
        key = f"annotations[{i}]"
        if kind == "point":
            picks.append(_coords(ann.get("point"), n, "point", names, loc, key))
            continue
        if kind == "line":
            vertices = [
                _coords(ann.get(k), n, k, names, loc, f"{key}.{k}") for k in ("pointA", "pointB")
            ]
        else:
            raw = ann.get("points")
            if not isinstance(raw, list) or len(raw) < 2:
                msg = f"polyline 'points' is {raw!r}; expected a list of at least 2 vertices"
                raise InputError(msg, **loc, key=key)
            vertices = [
                _coords(v, n, f"vertex {j}", names, loc, f"{key}.points[{j}]")
                for j, v in enumerate(raw)
            ]
        if picks and vertices[0] == picks[-1]:
            vertices = vertices[1:]  # continues the previous segment: shared vertex once
        picks.extend(vertices)
    return picks, ("segment" if any(k in SEGMENT_TYPES for k in kinds) else "point")
