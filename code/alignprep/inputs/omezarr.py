"""OME-Zarr multiscale metadata (NGFF 0.4, zarr v2), level choice and lazy level reads."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .locate import read_json_object

# Length units of NGFF axes -> millimetres.
UNIT_TO_MM = {
    "meter": 1e3,
    "millimeter": 1.0,
    "micrometer": 1e-3,
    "nanometer": 1e-6,
    "m": 1e3,
    "mm": 1.0,
    "um": 1e-3,
    "µm": 1e-3,
    "μm": 1e-3,
    "nm": 1e-6,
}
SPATIAL = ("z", "y", "x")


@dataclass(frozen=True)
class Level:
    """One pyramid level: dataset path, spatial shape and spacing (numpy z, y, x order)."""

    index: int
    path: str
    shape_zyx: tuple[int, int, int]
    spacing_mm_zyx: np.ndarray

    @property
    def size(self) -> tuple[int, int, int]:
        """ITK (x, y, z) size."""
        return self.shape_zyx[::-1]  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> np.ndarray:
        """ITK (x, y, z) spacing in mm."""
        return self.spacing_mm_zyx[::-1].copy()


@dataclass(frozen=True)
class Multiscale:
    """The multiscale image of one channel."""

    path: Path
    axes: tuple[str, ...]  # every axis name, array order
    spatial_axes: tuple[int, int, int]  # array axis of z, y, x
    levels: tuple[Level, ...]
    dtype: np.dtype

    @property
    def name(self) -> str:
        """Channel name: the zarr folder name without ``.zarr`` / ``.ome.zarr``."""
        return self.path.name.removesuffix(".zarr").removesuffix(".ome")

    def choose_level(self, desired_voxel_size_um: float) -> Level:
        """Coarsest level whose finest spatial spacing is <= the desired size, else level 0."""
        # relative tolerance: um -> mm -> um is not exact (28.8 -> 28.800000000000004)
        limit_um = desired_voxel_size_um * (1 + 1e-9)
        ok = [lv for lv in self.levels if lv.spacing_mm_zyx.min() * 1e3 <= limit_um]
        return ok[-1] if ok else self.levels[0]

    def read_level(self, level: Level) -> Any:
        """The level as a lazily indexed array of spatial axes only (z, y, x); no data read.

        Non-spatial axes (t, c) are taken at index 0.
        """
        import zarr

        arr = zarr.open_array(str(self.path / level.path), mode="r")
        index: list[Any] = [0] * arr.ndim
        for axis in self.spatial_axes:
            index[axis] = slice(None)
        return _LazySpatial(arr, tuple(index), self.spatial_axes)


class _LazySpatial:
    """Spatial (z, y, x) view of a zarr array; slicing reads only the chunks it needs."""

    def __init__(self, array: Any, base: tuple[Any, ...], spatial: tuple[int, int, int]) -> None:
        self._array = array
        self._base = base
        self._spatial = spatial
        self.shape = tuple(array.shape[a] for a in spatial)
        self.dtype = array.dtype
        self.chunks = tuple(array.chunks[a] for a in spatial)

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        index = list(self._base)
        for axis, k in zip(self._spatial, key, strict=True):
            index[axis] = k
        out = np.asarray(self._array[tuple(index)])
        kept = sorted(a for a, k in zip(self._spatial, key, strict=True) if isinstance(k, slice))
        order = [kept.index(a) for a in self._spatial if a in kept]
        return np.transpose(out, order) if order != sorted(order) else out


def read_multiscale(path: Path) -> Multiscale:
    """Parse ``<channel>.zarr/.zattrs`` and every level's ``.zarray``; check the pyramid."""
    path = Path(path)
    attrs = read_json_object(path / ".zattrs")
    try:
        ms = attrs["multiscales"][0]
    except (KeyError, IndexError, TypeError):
        raise InputError("no 'multiscales' list in .zattrs (OME-NGFF 0.4)", file=path) from None
    axes_meta = ms.get("axes")
    if not isinstance(axes_meta, list) or not axes_meta:
        raise InputError("multiscales[0].axes is missing", file=path)
    names = tuple(str(a["name"] if isinstance(a, dict) else a).lower() for a in axes_meta)
    missing = [a for a in SPATIAL if a not in names]
    if missing:
        raise InputError(f"axes {list(names)} lack spatial axes {missing}", file=path)
    spatial = tuple(names.index(a) for a in SPATIAL)
    unit_mm = np.ones(3)
    for k, axis in enumerate(spatial):
        meta = axes_meta[axis] if isinstance(axes_meta[axis], dict) else {}
        unit = str(meta.get("unit", "micrometer")).lower()
        if unit not in UNIT_TO_MM:
            raise InputError(
                f"axis {SPATIAL[k]!r} has unit {unit!r}; expected a length unit "
                f"({', '.join(sorted(UNIT_TO_MM))})",
                file=path,
            )
        unit_mm[k] = UNIT_TO_MM[unit]
    datasets = ms.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise InputError("multiscales[0].datasets is empty", file=path)
    levels = []
    dtype = None
    for k, ds in enumerate(datasets):
        if not isinstance(ds, dict) or "path" not in ds:
            raise InputError(f"multiscales[0].datasets[{k}] has no 'path'", file=path)
        scale = _scale_of(ds, len(names), path, k)
        zarray = read_json_object(path / ds["path"] / ".zarray")
        shape = zarray.get("shape")
        if not isinstance(shape, list):
            raise InputError(f"level {k}: .zarray has no 'shape' list", file=path)
        if len(shape) != len(names):
            raise InputError(
                f"level {k}: array has {len(shape)} dims, axes {len(names)}", file=path
            )
        dtype = dtype or np.dtype(zarray["dtype"])
        levels.append(
            Level(
                k,
                str(ds["path"]),
                tuple(int(shape[a]) for a in spatial),  # type: ignore[arg-type]
                np.array([scale[a] for a in spatial]) * unit_mm,
            )
        )
    _check_pyramid(levels, path)
    return Multiscale(path, names, spatial, tuple(levels), np.dtype(dtype))


def _scale_of(ds: dict[str, Any], ndim: int, path: Path, k: int) -> list[float]:
    for tr in ds.get("coordinateTransformations", []):
        if tr.get("type") == "scale":
            scale = [float(s) for s in tr["scale"]]
            if len(scale) != ndim:
                raise InputError(f"level {k}: scale has {len(scale)} entries", file=path)
            return scale
    raise InputError(f"level {k}: no 'scale' coordinateTransformation", file=path)


def _check_pyramid(levels: list[Level], path: Path) -> None:
    """Factor 2 per level on every spatial axis (the pipeline-frame rescale relies on it)."""
    for prev, cur in itertools.pairwise(levels):
        ratio = cur.spacing_mm_zyx / prev.spacing_mm_zyx
        if not np.allclose(ratio, 2.0, rtol=1e-6):
            raise InputError(
                f"level {cur.index} spacing {cur.spacing_mm_zyx.tolist()} mm is not twice level "
                f"{prev.index} ({prev.spacing_mm_zyx.tolist()} mm); expected factor 2 per level",
                file=path,
            )
        want = np.ceil(np.asarray(prev.shape_zyx) / 2)
        if np.any(np.abs(np.asarray(cur.shape_zyx) - want) > 1):
            raise InputError(
                f"level {cur.index} shape {cur.shape_zyx} is not half of level {prev.index} "
                f"shape {prev.shape_zyx}",
                file=path,
            )


def check_same_pyramid(reference: Multiscale, other: Multiscale) -> None:
    """Additional channels must have the registration channel's shapes and spacings."""
    for a, b in zip(reference.levels, other.levels, strict=False):
        if a.shape_zyx != b.shape_zyx or not np.allclose(a.spacing_mm_zyx, b.spacing_mm_zyx):
            raise InputError(
                f"level {a.index}: shape {b.shape_zyx} / spacing {b.spacing_mm_zyx.tolist()} "
                f"differ from the registration channel {reference.name} ({a.shape_zyx} / "
                f"{a.spacing_mm_zyx.tolist()})",
                file=other.path,
            )
    if len(other.levels) < len(reference.levels):
        raise InputError(
            f"{len(other.levels)} levels, the registration channel has {len(reference.levels)}",
            file=other.path,
        )
