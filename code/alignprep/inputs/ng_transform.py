"""Neuroglancer coordinate transforms of layer sources (``layers[*].source.transform``).

Semantics (Neuroglancer ``coordinate_transform.ts`` and ``docs/concepts/coordinate_spaces.rst``):
``matrix`` has one row per output dimension (``outputDimensions`` order) and one column per
source dimension plus a last translation column. The linear part maps physical source lengths
to physical output lengths; the translation is in units of the output dimension's scale. So a
source coordinate ``p`` is displayed at the physical position
``P_r = sum_c M[r][c] * s_in[c] * p[c] + t[r] * s_out[r]``, where ``s_in`` are the scales of
``inputDimensions`` (when given) or, for a ``local://annotations`` source, of
``outputDimensions``. Dimensions are matched by name; only ``x``, ``y``, ``z`` are spatial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np

from ..errors import InputError

SPATIAL_ZYX = ("z", "y", "x")
# Exact decimal factors, so 1.8e-6 m is exactly 1.8 um. "\u00b5m": micro sign, "\u03bcm": mu.
UM_PER_UNIT = {u: Decimal(f) for u, f in [("m", "1e6"), ("mm", "1e3"), ("nm", "1e-3")]}
UM_PER_UNIT.update({u: Decimal(1) for u in ("um", "\u00b5m", "\u03bcm")})
_EXACT = 1e-12  # tolerance for "this coefficient is 0 / 1" in a written matrix


@dataclass(frozen=True)
class Dimension:
    """One named dimension: ``[scale, unit]``; ``um`` is one coordinate unit in um (or None)."""

    name: str
    scale: float
    unit: str
    um: float | None


def dimensions_from_json(obj: Any, where: str, loc: dict) -> tuple[Dimension, ...]:
    """Parse ``{"x": [1.8e-06, "m"], ...}`` (order kept).

    ``x``, ``y`` and ``z`` must be ``[scale > 0, unit]``; another dimension may be anything
    Neuroglancer allows (e.g. a coordinate array): it is kept without a scale.
    """
    if not isinstance(obj, dict) or not obj:
        msg = f'{where} is {obj!r}; expected an object like {{"x": [1.8e-06, "m"], ...}}'
        raise InputError(msg, **loc)
    dims = []
    for name, entry in obj.items():
        ok = isinstance(entry, list | tuple) and len(entry) == 2
        scale, unit = entry if ok else (None, None)
        if not (isinstance(scale, int | float) and not isinstance(scale, bool)) or not (
            math.isfinite(scale) and scale > 0 and isinstance(unit, str)
        ):
            if name not in SPATIAL_ZYX:
                dims.append(Dimension(str(name), math.nan, "", None))
                continue
            msg = f"{where} entry {name!r} is {entry!r}; expected [scale > 0, unit]"
            raise InputError(msg, **loc)
        try:
            um = float(Decimal(str(scale)) * UM_PER_UNIT[unit]) if unit in UM_PER_UNIT else None
        except InvalidOperation:  # pragma: no cover - str(float) is always a valid Decimal
            um = None
        dims.append(Dimension(str(name), float(scale), unit, um))
    return tuple(dims)


def spatial_um(dims: tuple[Dimension, ...], where: str, loc: dict) -> np.ndarray:
    """The um per coordinate unit of z, y, x; InputError when one is missing or not a length."""
    by_name = {d.name: d for d in dims}
    names = [d.name for d in dims]
    if any(axis not in by_name for axis in SPATIAL_ZYX):
        msg = f"unknown dimension names {names} in {where}; expected x, y and z (t etc. dropped)"
        raise InputError(msg, **loc)
    for axis in SPATIAL_ZYX:
        if by_name[axis].um is None:
            msg = (
                f"{where} unit of {axis!r} is {by_name[axis].unit!r}; "
                f"expected one of {sorted(UM_PER_UNIT)}"
            )
            raise InputError(msg, **loc)
    return np.array([by_name[a].um for a in SPATIAL_ZYX], dtype=np.float64)


@dataclass(frozen=True)
class SourceTransform:
    """A parsed ``source.transform``; ``matrix`` is None when the JSON has none (identity)."""

    output: tuple[Dimension, ...]
    input: tuple[Dimension, ...] | None
    matrix: np.ndarray | None

    @property
    def rank(self) -> int:
        """Number of output (= source) dimensions."""
        return len(self.output)

    @classmethod
    def from_json(cls, obj: Any, loc: dict, key: str = "source.transform") -> SourceTransform:
        """Parse a transform object; InputError names ``key`` and what was expected."""
        if not isinstance(obj, dict) or "outputDimensions" not in obj:
            msg = f"{key} is {obj!r}; expected an object with 'outputDimensions'"
            raise InputError(msg, **loc, key=key)
        output = dimensions_from_json(obj["outputDimensions"], f"{key}.outputDimensions", loc)
        rank = len(output)
        inputs = None
        if obj.get("inputDimensions") is not None:
            where = f"{key}.inputDimensions"
            inputs = dimensions_from_json(obj["inputDimensions"], where, loc)
            if len(inputs) != rank:
                msg = f"{where} has {len(inputs)} dimensions; expected {rank}, as outputDimensions"
                raise InputError(msg, **loc, key=key)
        matrix = None
        if obj.get("matrix") is not None:
            try:
                matrix = np.array(obj["matrix"], dtype=np.float64)
            except (TypeError, ValueError):
                matrix = np.zeros(0)
            if matrix.shape != (rank, rank + 1) or not np.all(np.isfinite(matrix)):
                msg = (
                    f"{key}.matrix is {obj['matrix']!r}; expected {rank} rows (one per output "
                    f"dimension) of {rank + 1} finite numbers (one per source dimension, then "
                    "the translation)"
                )
                raise InputError(msg, **loc, key=f"{key}.matrix")
        return cls(output, inputs, matrix)

    def linear_and_translation(self) -> tuple[np.ndarray, np.ndarray]:
        """The ``rank x rank`` linear part and the translation (output units)."""
        if self.matrix is None:
            return np.eye(self.rank), np.zeros(self.rank)
        return self.matrix[:, :-1], self.matrix[:, -1]

    def display_coordinates(self, points: np.ndarray, loc: dict) -> np.ndarray:
        """Stored coordinates of a ``local://annotations`` source -> output-unit coordinates.

        ``q_r = sum_c M[r][c] * (s_in[c] / s_out[r]) * p[c] + t[r]``; ``points`` unchanged
        when there is neither a matrix nor ``inputDimensions``.
        """
        if self.matrix is None and self.input is None:
            return points
        linear, translation = self.linear_and_translation()
        inputs = self.input or self.output
        factor = np.zeros_like(linear)
        rows = [r for r, out in enumerate(self.output) if out.name in SPATIAL_ZYX]
        for r in rows:  # other output dimensions are dropped: their rows do not matter
            out = self.output[r]
            for c, inp in enumerate(inputs):
                if linear[r, c] == 0.0:
                    continue
                if out.um is None or inp.um is None:
                    raise InputError(
                        f"source.transform.matrix maps source dimension {inp.name!r} "
                        f"({inp.unit or 'no length unit'}) onto output dimension {out.name!r}; "
                        "expected x, y and z to come from lengths only",
                        **loc,
                        key="source.transform.matrix",
                    )
                factor[r, c] = inp.um / out.um
        display = np.array(points, dtype=np.float64, copy=True)
        display[:, rows] = points @ (linear[rows] * factor[rows]).T + translation[rows]
        return display


@dataclass(frozen=True)
class Placement:
    """Where an image layer puts its level-0 voxels along z, y, x (translation only).

    ``translation_zyx`` is in output units of ``out_um_zyx`` um each; ``in_um_zyx`` are the
    source scales written in ``inputDimensions`` (None: the image's own voxel size). ``problem``
    says why the transform is not a pure translation ("" when it is).
    """

    translation_zyx: tuple[float, float, float] = (0.0, 0.0, 0.0)
    out_um_zyx: tuple[float, float, float] = (1.0, 1.0, 1.0)
    in_um_zyx: tuple[float, float, float] | None = None
    problem: str = ""

    @property
    def offset_um_zyx(self) -> np.ndarray:
        """The translation in um."""
        return np.asarray(self.translation_zyx) * np.asarray(self.out_um_zyx)

    @property
    def is_identity(self) -> bool:
        """No translation, no rescale, no problem."""
        return not self.problem and self.in_um_zyx is None and not any(self.translation_zyx)

    def same_as(self, other: Placement, tol_um: float = 1e-9) -> bool:
        """Same physical placement (translations compared in um)."""
        if self.problem or other.problem:
            return self.problem == other.problem
        if (self.in_um_zyx is None) != (other.in_um_zyx is None):
            return False
        if self.in_um_zyx is not None and not np.allclose(
            self.in_um_zyx, other.in_um_zyx, rtol=0, atol=tol_um
        ):
            return False
        return bool(np.allclose(self.offset_um_zyx, other.offset_um_zyx, rtol=0, atol=tol_um))

    def key(self) -> list[Any]:
        """Every field, JSON-able (fingerprints)."""
        return [
            list(self.translation_zyx),
            list(self.out_um_zyx),
            None if self.in_um_zyx is None else list(self.in_um_zyx),
            self.problem,
        ]

    def describe(self) -> str:
        """Human-readable: 'identity', 'translated by ...', or the problem."""
        if self.problem:
            return self.problem
        parts = []
        if any(self.translation_zyx):
            shift = ", ".join(
                f"{a} {t:g} ({o:g} um)"
                for a, t, o in zip("zyx", self.translation_zyx, self.offset_um_zyx, strict=True)
            )
            parts.append(f"translated by {shift}")
        if self.in_um_zyx is not None:
            scales = ", ".join(f"{a} {s:g} um" for a, s in zip("zyx", self.in_um_zyx, strict=True))
            parts.append(f"source scales overridden to {scales}")
        return "; ".join(parts) or "identity"


IDENTITY = Placement()


def image_placement(transform: SourceTransform | None) -> Placement:
    """The placement of an image source; a rotation, scale, shear or axis swap is a problem.

    Without ``inputDimensions`` the source dimensions are taken to carry the output names in
    the same order (Neuroglancer's default transform names its outputs after the source's
    dimensions); with them, spatial columns are found by name.
    """
    if transform is None:
        return IDENTITY
    names = [d.name for d in transform.output]
    if any(a not in names for a in SPATIAL_ZYX):
        return Placement(problem=f"its transform has output dimensions {names}, not x, y and z")
    rows = [names.index(a) for a in SPATIAL_ZYX]
    out_um = [transform.output[r].um for r in rows]
    if any(u is None for u in out_um):
        units = [transform.output[r].unit for r in rows]
        return Placement(problem=f"its transform's z, y, x output units {units} are not lengths")
    if transform.input is None:
        cols = rows
    else:
        in_names = [d.name for d in transform.input]
        if any(a not in in_names for a in SPATIAL_ZYX):
            return Placement(problem=f"its transform's inputDimensions {in_names} lack x, y or z")
        cols = [in_names.index(a) for a in SPATIAL_ZYX]
    linear, translation = transform.linear_and_translation()
    for axis, r, c in zip(SPATIAL_ZYX, rows, cols, strict=True):
        expected = np.zeros(transform.rank)
        expected[c] = 1.0
        if not np.allclose(linear[r], expected, rtol=0, atol=_EXACT):
            return Placement(
                problem=(
                    f"its transform row {axis!r} is {linear[r].tolist()} (a rotation, scale, "
                    f"shear or axis swap); expected {expected.tolist()}, a translation only"
                )
            )
    in_um = None
    if transform.input is not None:
        scales = [transform.input[c].um for c in cols]
        if any(s is None for s in scales):
            return Placement(problem="its transform's inputDimensions x, y, z are not lengths")
        in_um = tuple(float(s) for s in scales)  # type: ignore[arg-type]
    return Placement(
        tuple(float(translation[r]) for r in rows),  # type: ignore[arg-type]
        tuple(float(u) for u in out_um),  # type: ignore[arg-type]
        in_um,  # type: ignore[arg-type]
    )
