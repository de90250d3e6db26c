"""Histology volumes for both GUIs: image-space NRRDs on one grid G, and CCF-space QC volumes.

G is the ``output_voxel_size_um`` resample of the zarr level chosen by
``desired_voxel_size_um``, with G's index 0 at that level's index 0, reoriented to IRP
(outputs.md §2, coordinates.md §3.4, §7). The CCF template and labels are sampled at every G
voxel's registration-frame position through the point chain (linear / genericLabel, ANTs's
rules: :mod:`alignprep.space.sampling`), then stamped with G's native header. The chain is
evaluated once per output voxel for both volumes, brick by brick, from the displacement fields
decoded once per run (:mod:`alignprep.inputs.field_store`). The CCF volumes are read in the
canonical PIR layout, so the stored index order of the references cannot change the outputs.
Every file is written atomically; a failure removes what the stage wrote.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..inputs.omezarr import Level, Multiscale
from ..inputs.references import read_ccf_volume, unique_labels
from ..logs import get_logger, heartbeat, progress, step
from ..space.frames import ImageHeader, native_header, reorient
from ..space.resample import antialias_resample, output_size, reorient_array, to_dtype
from ..space.sampling import Moving, resample
from ..work import HISTOLOGY_PARTS, HistologyCcfWork, HistologyWork, StageResult, Status
from .context import MouseContext

log = get_logger("stages.histology")

OUTPUT_CODE = "IRP"
MIN_GRID_VOXELS = 8


@dataclass
class HistologyResult:
    """Outcome of the histology stage of one mouse."""

    status: str = "ok"
    reason: str = ""
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    level: int | None = None
    grid: ImageHeader | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Grids:
    """G in the native frame and in the registration frame, both already IRP."""

    level: Level
    native: ImageHeader
    registration: ImageHeader
    transform: np.ndarray  # nibabel orientation: level/G axes -> IRP

    @classmethod
    def build(cls, ctx: MouseContext) -> Grids:
        """Choose the level and derive G (coordinates.md §3.4)."""
        cfg = ctx.config.histology
        level = ctx.multiscale.choose_level(cfg.desired_voxel_size_um)
        out_mm = cfg.output_voxel_size_um * 1e-3
        size = output_size(level.size, level.spacing_mm, out_mm)
        if min(size) < MIN_GRID_VOXELS:
            raise InputError(
                f"output grid {size} has fewer than {MIN_GRID_VOXELS} voxels on an axis at "
                f"{cfg.output_voxel_size_um} um: check the OME-Zarr units and the voxel size",
                file=ctx.multiscale.path,
            )
        native_l = native_header(
            ctx.asset.orientation, level.spacing_mm, level.size, ctx.native0.spacing
        )
        reg_l = ctx.registration_header(level.index, level.size)
        native_g = ImageHeader(native_l.origin, np.full(3, out_mm), native_l.direction, size)
        reg_g = ImageHeader(
            reg_l.origin, reg_l.spacing * (out_mm / level.spacing_mm), reg_l.direction, size
        )
        native_irp, transform = reorient(native_g, OUTPUT_CODE)
        reg_irp, _ = reorient(reg_g, OUTPUT_CODE)
        return cls(level, native_irp, reg_irp, transform)


def read_resampled(ms: Multiscale, grids: Grids, out_mm: float, threads: int = 1) -> np.ndarray:
    """One channel at the chosen level -> anti-aliased, resampled, IRP, in the channel's dtype
    (ITK order).

    The level is read slab by slab straight into one float32 array, which is filtered in place;
    the resampled grid is rounded in place.
    """
    lazy = ms.read_level(ms.levels[grids.level.index])
    stored = np.empty(lazy.shape, dtype=np.float32)
    step_z = max(1, lazy.chunks[0])
    slabs = range(0, lazy.shape[0], step_z)
    for z0 in progress(slabs, f"read {ms.name} level {grids.level.index} ({len(slabs)} slabs)"):
        stored[z0 : z0 + step_z] = lazy[z0 : z0 + step_z, :, :]
    volume = stored.transpose(2, 1, 0)  # zarr (z, y, x) -> ITK (i, j, k)
    del stored
    size = output_size(grids.level.size, grids.level.spacing_mm, out_mm)
    resampled = antialias_resample(volume, grids.level.spacing_mm, out_mm, size, threads)
    del volume
    return reorient_array(to_dtype(resampled, ms.dtype, overwrite=True), grids.transform)


class _Writer:
    """Atomic writes that remember what they wrote, so a failure can remove it all."""

    def __init__(self) -> None:
        self.files: list[Path] = []

    def nrrd(self, path: Path, volume: np.ndarray, header: ImageHeader) -> None:
        self.files.append(outputs.write_nrrd_atomic(path, volume, header))

    def json(self, path: Path, obj: object) -> None:
        self.files.append(outputs.write_json_atomic(path, obj))

    def remove(self) -> None:
        for path in self.files:
            path.unlink(missing_ok=True)
        self.files.clear()


Timed = Callable[[str], AbstractContextManager[None]]


def run_histology(ctx: MouseContext) -> HistologyResult:
    """Every histology part of the mouse in plan order, one after the other, as a serial run
    does: a failed part removes its own files only; the CCF QC needs the channels part."""
    from .histology_ccf import ccf_channels, run_ccf_channel

    result = HistologyResult()
    parts = {part: run_part(ctx, part) for part in HISTOLOGY_PARTS}
    for part in parts.values():
        _merge(result, part)
    if ctx.config.histology.write_ccf_space:
        for channel in ccf_channels(ctx, parts["channels"]):
            _merge(result, run_ccf_channel(ctx, channel))
    return result


def _merge(into: HistologyResult, part: HistologyResult) -> None:
    if part.status != "ok" and into.status == "ok":
        into.status, into.reason = part.status, part.reason
    into.files += part.files
    into.seconds.update(part.seconds)
    into.warnings += part.warnings
    into.level = part.level if part.level is not None else into.level
    into.grid = part.grid if part.grid is not None else into.grid


def guarded(ctx: MouseContext, body: Callable[[HistologyResult, _Writer, Timed], None]):
    """Run one histology part: timed steps, atomic writes, everything removed on failure."""
    result = HistologyResult()
    writer = _Writer()

    @contextmanager
    def timed(name: str) -> Iterator[None]:
        t0_s = time.perf_counter()
        with step(f"histology: {name}", log):
            yield
        result.seconds[name] = time.perf_counter() - t0_s

    try:
        body(result, writer, timed)
    except (InputError, ValueError, RuntimeError, OSError, MemoryError) as exc:
        writer.remove()
        result.status, result.reason = "failed", str(exc)
        log.error("histology failed: %s", exc)
        return result
    result.files = list(writer.files)
    return result


def run_part(ctx: MouseContext, part: str) -> HistologyResult:
    """One phase-0 part of the histology (``channels`` or ``atlas``)."""
    body = {"channels": _channels, "atlas": _atlas}[part]
    return guarded(ctx, lambda result, writer, timed: body(ctx, result, writer, timed))


def _grids(ctx: MouseContext, result: HistologyResult, timed: Timed) -> Grids:
    with timed("grid"):
        grids = Grids.build(ctx)
    result.level, result.grid = grids.level.index, grids.native
    log.info(
        "level %d (%s um) -> G %s at %s um, %s",
        grids.level.index,
        (grids.level.spacing_mm * 1e3).round(3).tolist(),
        grids.native.size,
        ctx.config.histology.output_voxel_size_um,
        OUTPUT_CODE,
    )
    return grids


def _channels(ctx: MouseContext, result: HistologyResult, writer: _Writer, timed: Timed) -> None:
    """Every channel resampled onto G: the registration channel (native and pipeline
    geometry) and each additional channel."""
    cfg, root, mouse = ctx.config, ctx.config.results_root, ctx.mouse_id
    out_mm = cfg.histology.output_voxel_size_um * 1e-3
    paths = outputs.histology_paths(root, mouse)
    grids = _grids(ctx, result, timed)
    with timed("registration channel"):
        reg = read_resampled(ctx.multiscale, grids, out_mm, ctx.threads)
        writer.nrrd(paths["registration"], reg, grids.native)
        writer.nrrd(paths["registration_pipeline"], reg, grids.registration)
        writer.json(
            paths["registration_pipeline_json"],
            {
                "schema": "anatomical-header/1",
                "space": "left-posterior-superior",
                "units": "millimeter",
                "header": grids.registration.to_json(),
            },
        )
        del reg
    with timed("additional channels"):
        for ms in ctx.asset.additional_channels():
            vol = read_resampled(ms, grids, out_mm, ctx.threads)
            writer.nrrd(outputs.channel_path(root, mouse, ms.name), vol, grids.native)
            del vol
    if cfg.histology.write_ccf_space:
        from .histology_ccf import ccf_space_missing

        missing = ccf_space_missing(ctx)
        if missing:
            msg = f"ccf_space_histology skipped: no 1Warp.nii.gz beside {missing}"
            result.warnings.append(msg)
            log.warning("%s", msg)


def _atlas(ctx: MouseContext, result: HistologyResult, writer: _Writer, timed: Timed) -> None:
    """The CCF template (linear) and compact labels (genericLabel) sampled at every voxel of G.

    One evaluation of the point chain per voxel serves both volumes. Labels: compact index ->
    signed Allen id (int32) through the lookup.
    """
    cfg, root, mouse = ctx.config, ctx.config.results_root, ctx.mouse_id
    paths = outputs.histology_paths(root, mouse)
    grids = _grids(ctx, result, timed)
    with timed("CCF references"):
        lut = unique_labels(cfg)
        template, template_h = read_ccf_volume(cfg.references.ccf_template, "CCF template")
        compact, compact_h = read_ccf_volume(
            cfg.references.ccf_labels_compact, "CCF compact labels"
        )
        compact = integer_labels(compact, cfg.references.ccf_labels_compact)
        template = narrowest_exact(template)
        moving = [
            Moving(template, template_h, "linear", np.dtype(np.uint16)),
            Moving(compact, compact_h, "label", compact.dtype),
        ]
    with timed("CCF template and labels -> image"), heartbeat("CCF template and labels on G"):
        warped, index = resample(grids.registration, ctx.chain_map(ctx.to_ccf), moving, ctx.threads)
    del template, compact, moving
    writer.nrrd(paths["ccf_template"], warped, grids.native)
    del warped
    if index.min() < 0 or index.max() >= len(lut):
        raise InputError(
            f"warped compact label {int(index.max())} has no entry in the lookup",
            file=cfg.references.ccf_labels_unique_values,
        )
    labels = lut.astype(np.int32)[index]
    del index
    writer.nrrd(paths["labels"], labels, grids.native)


def narrowest_exact(volume: np.ndarray) -> np.ndarray:
    """An integer volume in the smallest unsigned type that holds every value exactly (the same
    samples, less memory: a 32-bit template whose values fit 16 bits); anything else as is."""
    if volume.dtype.kind not in "iu" or volume.size == 0:
        return volume
    lo, hi = int(volume.min()), int(volume.max())
    for dtype in (np.uint8, np.uint16):
        if lo >= 0 and hi <= np.iinfo(dtype).max and np.dtype(dtype).itemsize < volume.itemsize:
            return volume.astype(dtype, order="F")
    return volume


def integer_labels(compact: np.ndarray, path: Path) -> np.ndarray:
    """Compact labels as integers: stored floats must hold whole numbers (else InputError)."""
    if compact.dtype.kind in "iu":
        return compact
    as_int = compact.astype(np.int32)
    if not np.array_equal(as_int, compact):
        raise InputError("compact labels hold non-integer values", file=path)
    return as_int


def run(ctx: MouseContext, work: HistologyWork | HistologyCcfWork) -> StageResult:
    """The stage contract: one histology part, or one channel's CCF-space QC volume."""
    from .histology_ccf import run_ccf_channel

    t0_s = time.perf_counter()
    if isinstance(work, HistologyCcfWork):
        hist = run_ccf_channel(ctx, work.channel)
    else:
        hist = run_part(ctx, work.part)
    mouse = outputs.mouse_dir(ctx.config.results_root, ctx.mouse_id)
    return StageResult(
        work.name,
        Status.OK if hist.status == "ok" else Status.FAILED,
        hist.reason,
        time.perf_counter() - t0_s,
        files=tuple(str(p.relative_to(mouse)) for p in hist.files),
        warnings=tuple(hist.warnings),
    )


def discard(config: PipelineConfig, work: HistologyWork | HistologyCcfWork) -> None:
    """Remove the volumes of a part whose worker died mid-way."""
    from .histology_ccf import discard_ccf_channel

    if isinstance(work, HistologyCcfWork):
        discard_ccf_channel(config, work)
        return
    root, mouse = config.results_root, work.mouse_id
    paths = outputs.histology_paths(root, mouse)
    if work.part == "atlas":
        files = [paths["ccf_template"], paths["labels"]]
    else:
        keep = {paths["ccf_template"], paths["labels"]}
        folder = outputs.mouse_dir(root, mouse) / "image_space_histology"
        files = [p for p in folder.glob("*") if p.is_file() and p not in keep]
    for path in files:
        path.unlink(missing_ok=True)
