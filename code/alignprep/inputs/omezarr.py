"""OME-Zarr multiscale metadata (NGFF 0.4, zarr v2), level choice and lazy level reads.

Every level's ``.zarray`` is validated when the metadata is read and every chunk is checked
where it is read (:mod:`alignprep.inputs.zarr_arrays`); errors name the channel, the level and
the file (docs/inputs/omezarr.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..reads import note_tree
from .locate import read_json_object
from .zarr_arrays import ZarrArray, check_chunks, decode_error, read_zarray

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
    array: ZarrArray  # the validated .zarray (every axis)

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

    def where(self, level: Level) -> str:
        """``channel <name>, level <k>``: how errors name a level."""
        return f"channel {self.name}, level {level.index}"

    def read_level(self, level: Level) -> Any:
        """The level as a lazily indexed array of spatial axes only (z, y, x); no data read.

        Non-spatial axes (t, c) are taken at index 0. Every read first checks the chunk files
        it touches (:func:`check_chunks`) and names a chunk that fails to decode.
        """
        import zarr

        try:
            arr = zarr.open_array(str(note_tree(self.path / level.path)), mode="r")
        except (ValueError, TypeError, KeyError, OSError) as exc:
            raise InputError(
                f"{self.where(level)}: zarr cannot open the array: {exc}",
                file=self.path / level.path / ".zarray",
            ) from None
        index: list[Any] = [0] * arr.ndim
        for axis in self.spatial_axes:
            index[axis] = slice(None)
        return _LazySpatial(arr, level.array, tuple(index), self.spatial_axes, self.where(level))


class _LazySpatial:
    """Spatial (z, y, x) view of a zarr array; slicing reads only the chunks it needs."""

    def __init__(
        self,
        array: Any,
        meta: ZarrArray,
        base: tuple[Any, ...],
        spatial: tuple[int, int, int],
        where: str,
    ) -> None:
        self._array = array
        self._meta = meta
        self._base = base
        self._spatial = spatial
        self._where = where
        self._checked: set[tuple[int, ...]] = set()
        self.shape = tuple(array.shape[a] for a in spatial)
        self.dtype = array.dtype
        self.chunks = tuple(array.chunks[a] for a in spatial)

    def __getitem__(self, key: tuple[slice, slice, slice]) -> np.ndarray:
        index = list(self._base)
        for axis, k in zip(self._spatial, key, strict=True):
            index[axis] = k
        touched = self._meta.chunks_touched(tuple(index))
        check_chunks(self._meta, [c for c in touched if c not in self._checked], self._where)
        self._checked.update(touched)
        try:
            out = np.asarray(self._array[tuple(index)])
        except MemoryError:
            raise
        except Exception as exc:  # a codec or reshape failure: name the chunk
            raise decode_error(self._meta, self._array, touched, self._where, exc) from None
        kept = sorted(a for a, k in zip(self._spatial, key, strict=True) if isinstance(k, slice))
        order = [kept.index(a) for a in self._spatial if a in kept]
        return np.transpose(out, order) if order != sorted(order) else out


def read_multiscale(path: Path) -> Multiscale:
    """Parse ``<channel>.zarr/.zattrs`` and validate every level's ``.zarray`` and the pyramid.

    Errors name the channel, the level and the file (``.zattrs`` or the level's ``.zarray``).
    """
    path = Path(path)
    channel = f"channel {path.name.removesuffix('.zarr')}"
    zattrs = path / ".zattrs"
    attrs = read_json_object(zattrs)
    try:
        ms = attrs["multiscales"][0]
    except (KeyError, IndexError, TypeError):
        raise InputError(
            f"{channel}: no 'multiscales' list in .zattrs (OME-NGFF 0.4)", file=zattrs
        ) from None
    if not isinstance(ms, dict):
        raise InputError(f"{channel}: multiscales[0] is not an object", file=zattrs)
    names, axes_meta = _axes(ms.get("axes"), channel, zattrs)
    spatial = tuple(names.index(a) for a in SPATIAL)
    unit_mm = np.ones(3)
    for k, axis in enumerate(spatial):
        meta = axes_meta[axis] if isinstance(axes_meta[axis], dict) else {}
        unit = str(meta.get("unit", "micrometer")).lower()
        if unit not in UNIT_TO_MM:
            raise InputError(
                f"{channel}: axis {SPATIAL[k]!r} has unit {unit!r}; expected a length unit "
                f"({', '.join(sorted(UNIT_TO_MM))})",
                file=zattrs,
            )
        unit_mm[k] = UNIT_TO_MM[unit]
    datasets = ms.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise InputError(f"{channel}: multiscales[0].datasets is empty", file=zattrs)
    levels = []
    for k, ds in enumerate(datasets):
        where = f"{channel}, level {k}"
        level_path = ds.get("path") if isinstance(ds, dict) else None
        if not isinstance(level_path, str) or not _safe_relative(level_path):
            raise InputError(
                f"{where}: datasets[{k}].path is {level_path!r}; expected a relative path inside "
                "the zarr folder",
                file=zattrs,
            )
        scale = _scale_of(ds, len(names), where, zattrs)
        array = read_zarray(path / level_path, where, len(names))
        if levels and array.dtype != levels[0].array.dtype:
            raise InputError(
                f"{where}: dtype {array.dtype.str} differs from level 0 "
                f"({levels[0].array.dtype.str}); expected one dtype on every level",
                file=path / level_path / ".zarray",
            )
        levels.append(
            Level(
                k,
                level_path,
                tuple(array.shape[a] for a in spatial),  # type: ignore[arg-type]
                np.array([scale[a] for a in spatial]) * unit_mm,
                array,
            )
        )
    _check_pyramid(levels, path, spatial)
    return Multiscale(path, names, spatial, tuple(levels), levels[0].array.dtype)


def _axes(axes_meta: Any, channel: str, zattrs: Path) -> tuple[tuple[str, ...], list[Any]]:
    """Axis names (lower case) and entries; every axis named, once, spatial ones of type space."""
    if not isinstance(axes_meta, list) or not axes_meta:
        raise InputError(f"{channel}: multiscales[0].axes is missing", file=zattrs)
    names = []
    for k, axis in enumerate(axes_meta):
        name = axis.get("name") if isinstance(axis, dict) else axis
        if not isinstance(name, str) or not name.strip():
            raise InputError(
                f"{channel}: axes[{k}] {axis!r} has no name; expected "
                '{"name": "z", "type": "space", "unit": "micrometer"} or similar',
                file=zattrs,
            )
        names.append(name.strip().lower())
        kind = axis.get("type") if isinstance(axis, dict) else None
        if names[-1] in SPATIAL and kind is not None and kind != "space":
            raise InputError(
                f"{channel}: axis {name!r} has type {kind!r}; expected 'space' for x, y and z",
                file=zattrs,
            )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise InputError(f"{channel}: axes {names} repeat {duplicated}", file=zattrs)
    missing = [a for a in SPATIAL if a not in names]
    if missing:
        raise InputError(f"{channel}: axes {names} lack spatial axes {missing}", file=zattrs)
    return tuple(names), axes_meta


def _safe_relative(level_path: str) -> bool:
    parts = Path(level_path).parts
    return bool(parts) and not Path(level_path).is_absolute() and ".." not in parts


def _scale_of(ds: dict[str, Any], ndim: int, where: str, zattrs: Path) -> list[float]:
    for tr in ds.get("coordinateTransformations") or []:
        if isinstance(tr, dict) and tr.get("type") == "scale":
            values = tr.get("scale")
            if (
                not isinstance(values, list)
                or len(values) != ndim
                or not all(
                    isinstance(v, int | float)
                    and not isinstance(v, bool)
                    and np.isfinite(v)
                    and v > 0
                    for v in values
                )
            ):
                raise InputError(
                    f"{where}: scale {values!r}; expected {ndim} positive numbers (one per axis)",
                    file=zattrs,
                )
            return [float(v) for v in values]
    raise InputError(f"{where}: no 'scale' coordinateTransformation", file=zattrs)


def _check_pyramid(levels: list[Level], path: Path, spatial: tuple[int, int, int]) -> None:
    """Factor 2 per level on every spatial axis (the pipeline-frame rescale relies on it).

    Spatial shapes halve (within one voxel of ``ceil(n / 2)``); other axes keep their size.
    """
    channel = f"channel {path.name.removesuffix('.zarr')}"
    for prev, cur in itertools.pairwise(levels):
        where = f"{channel}, level {cur.index}"
        ratio = cur.spacing_mm_zyx / prev.spacing_mm_zyx
        if not np.allclose(ratio, 2.0, rtol=1e-6):
            raise InputError(
                f"{where}: spacing {cur.spacing_mm_zyx.tolist()} mm is not twice level "
                f"{prev.index} ({prev.spacing_mm_zyx.tolist()} mm); expected factor 2 per level",
                file=path / ".zattrs",
            )
        want = np.ceil(np.asarray(prev.shape_zyx) / 2)
        other = [a for a in range(len(cur.array.shape)) if a not in spatial]
        if np.any(np.abs(np.asarray(cur.shape_zyx) - want) > 1) or any(
            cur.array.shape[a] != prev.array.shape[a] for a in other
        ):
            raise InputError(
                f"{where}: shape {cur.array.shape} does not follow the pyramid from level "
                f"{prev.index} shape {prev.array.shape}: expected spatial sizes half of it "
                f"(z, y, x ~ {want.astype(int).tolist()}) and the other axes unchanged",
                file=path / cur.path / ".zarray",
            )


def check_same_pyramid(reference: Multiscale, other: Multiscale) -> None:
    """Additional channels must have the registration channel's shapes and spacings."""
    for a, b in zip(reference.levels, other.levels, strict=False):
        if a.shape_zyx != b.shape_zyx or not np.allclose(a.spacing_mm_zyx, b.spacing_mm_zyx):
            raise InputError(
                f"{other.where(b)}: shape {b.shape_zyx} / spacing {b.spacing_mm_zyx.tolist()} "
                f"differ from the registration channel {reference.name} ({a.shape_zyx} / "
                f"{a.spacing_mm_zyx.tolist()})",
                file=other.path,
            )
    if len(other.levels) < len(reference.levels):
        raise InputError(
            f"channel {other.name}: {len(other.levels)} levels, the registration channel has "
            f"{len(reference.levels)}",
            file=other.path,
        )
