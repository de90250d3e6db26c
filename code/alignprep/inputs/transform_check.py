"""Transforms are checked before anything is trusted (issue 16).

For each ANTs registration of a mouse (LS brain -> LCA template, LCA template -> CCF):

1. every file is read completely (``transform_files``): the affine ``.mat``'s layout,
   invertibility and scale; each warp's gzip stream, header, vector shape, finite values and
   magnitudes. ITK never sees a file that failed here;
2. grids: the Warp and the InverseWarp share one grid, and it covers the fixed image's foreground;
3. in a child process (``ants_worker``; ITK crashes on bad files): ITK's view of the warp headers
   and the affine on probe points (must equal our parse); then the Warp and the InverseWarp on
   points P of the fixed image's foreground (the round trip must come back within a fraction of a
   voxel), mapped with ANTs's rules on the fields that each warp's one complete read decoded into
   the run's field store, as every track and volume of the run is;
4. images (a swapped pair is still mutually inverse, so the round trip cannot see it): the moving
   image sampled at Aff(Warp(P)) must match the fixed image better than at Aff(InverseWarp(P)),
   and not worse than at Aff(P) (warps of another registration do). Without images or contrast
   (geometry-only data) this is reported as not possible, never as passed.

Problems are collected, never raised, so that validation lists every one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AlignprepError, InputError
from ..logs import get_logger
from ..space.frames import ImageHeader
from .ants_worker import run_ants_tasks
from .check_cache import CheckCache
from .field_store import FieldStore
from .registration_check import RegistrationCheck, RegistrationChecker
from .registration_images import ImageSource
from .transform_files import Problem, TransformLimits

if TYPE_CHECKING:
    from ..stages.context import MouseContext

log = get_logger("inputs.transform_check")

CACHED_NOTE = " (same file contents as a check passed before; not re-run)"
SIMILARITY_SPACING_MM = 0.025  # read the registration channel at the level nearest 25 um
__all__ = ["RegistrationCheck", "TransformLimits", "TransformReport", "check_transforms"]


@dataclass
class TransformReport:
    """Every problem found, what passed (one line per registration) and the wall time."""

    problems: list[Problem] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    cached: bool = False  # the verdict of an earlier check of the same file contents

    @property
    def ok(self) -> bool:
        """No fatal problem."""
        return not any(p.fatal for p in self.problems)

    def checks(self) -> list[tuple[str, str]]:
        """(status, message) rows for the validation report: errors, warnings, then passes."""
        rows = [("error", str(p)) for p in self.problems if p.fatal]
        rows += [("warning", str(p)) for p in self.problems if not p.fatal]
        note = CACHED_NOTE if self.cached else ""
        return rows + [("ok", line + note) for line in self.passed]


def check_transforms(
    ctx: MouseContext, limits: TransformLimits | None = None, cache: CheckCache | None = None
) -> TransformReport:
    """Check both registrations of a mouse (one ANTs child process for both); every warp is
    decoded into the mouse's field store by its one read.

    With a ``cache``, a passed verdict on the same file contents is reused, and a pass is stored;
    the warps are still decoded (now, all at once, unless this scratch holds them already), so
    that the run's items never decode one themselves, two at a time.
    """
    limits = limits or TransformLimits()
    items = registrations_of(ctx)
    key = cache.key(items, limits) if cache is not None else None
    if key is not None and (hit := cache.get(key)) is not None:
        log.info("transform check: passed before on the same file contents (key %s)", key[:12])
        ctx.field_store.get_many(_warps(items), limits, ctx.threads)
        return hit
    report = check_registrations(items, ctx.field_store, limits, ctx.threads)
    if key is not None:
        cache.put(key, report)
    return report


def check_registrations(
    items: list[RegistrationCheck],
    store: FieldStore,
    limits: TransformLimits | None = None,
    threads: int = 1,
) -> TransformReport:
    """Read and check every file, run the ANTs parts in a child, then judge; logs wall times."""
    limits = limits or TransformLimits()
    t0_s = time.perf_counter()
    fields = store.get_many(_warps(items), limits, threads)
    checks = []
    for item in items:
        check = RegistrationChecker(item, limits, fields)
        _contained(check, check.read_files, check.sample)
        checks.append(check)
    t1_s = time.perf_counter()
    tasks = [task for check in checks for task in check.tasks()]
    outcomes = run_ants_tasks(tasks, limits.worker_timeout_s) if tasks else {}
    t2_s = time.perf_counter()
    report = TransformReport()
    for check in checks:
        _contained(check, lambda check=check: check.conclude(outcomes))
        report.problems += check.problems
        if not any(p.fatal for p in check.problems):
            report.passed.append(f"{check.item.name}: " + "; ".join(check.facts))
    report.seconds = time.perf_counter() - t0_s
    log.info(
        "transform check: %.1f s (files and images %.1f s, ANTs child %.1f s, images %.1f s); "
        "%d problem(s)",
        report.seconds,
        t1_s - t0_s,
        t2_s - t1_s,
        time.perf_counter() - t2_s,
        len(report.problems),
    )
    return report


def _warps(items: list[RegistrationCheck]) -> list[Path]:
    """Every displacement field file of the registrations (decompression releases the GIL: they
    are read and decoded a thread each)."""
    return [p for item in items for p in item.registration.files() if p.suffix != ".mat"]


def _contained(check: RegistrationChecker, *phases: Callable[[], None]) -> None:
    """Run phases of a check; an input it could not handle becomes a fatal problem, not a crash."""
    try:
        for phase in phases:
            phase()
    except (AlignprepError, OSError, ValueError, RuntimeError) as exc:
        check.problems.append(
            Problem(check.where, f"{check.item.name}: the transform check could not finish: {exc}")
        )
        check.points = np.empty((0, 3))


def registrations_of(ctx: MouseContext) -> list[RegistrationCheck]:
    """LS -> LCA template (moving: the registration channel) and LCA template -> CCF."""
    refs = ctx.config.references
    lca = nifti_source(refs.lca_template, "LCA template")
    ccf = nifti_source(refs.ccf_template, "CCF template")
    lca_missing = f"the LCA template {refs.lca_template} is missing"
    return [
        RegistrationCheck(
            "LS -> LCA template",
            ctx.asset.ls_to_template,
            lca,
            registration_channel_source(ctx),
            fixed_missing=lca_missing,
        ),
        RegistrationCheck(
            "LCA template -> CCF",
            ctx.template_to_ccf.registration,
            ccf,
            lca,
            fixed_missing=f"the CCF template {refs.ccf_template} is missing",
            moving_missing=lca_missing,
        ),
    ]


def nifti_source(path: Path, what: str) -> ImageSource | None:
    """A reference NIfTI (raw stored values: ranks ignore a positive scaling), None if absent."""
    path = Path(path)
    if not path.is_file():
        return None

    def load() -> tuple[np.ndarray, ImageHeader]:
        import nibabel as nib

        from .references import nifti_header

        header = nifti_header(path)
        proxy = nib.load(str(path)).dataobj
        data = np.asarray(proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else proxy)
        if data.ndim > 3 and all(n == 1 for n in data.shape[3:]):
            data = data.reshape(data.shape[:3])
        if data.ndim != 3:
            raise InputError(f"shape {data.shape}: expected a 3-D image", file=path)
        return data, header

    return ImageSource(what, f"{what} {path}", load, sources=(path,))


def registration_channel_source(ctx: MouseContext) -> ImageSource:
    """The registration channel at the level nearest 25 um, in the registration frame."""
    ms = ctx.multiscale
    level = min(ms.levels, key=lambda lv: abs(np.log(lv.spacing_mm.min() / SIMILARITY_SPACING_MM)))
    header = ctx.registration_header(level.index, level.size)

    def load() -> tuple[np.ndarray, ImageHeader]:
        return np.asarray(ms.read_level(level)[:, :, :]).transpose(2, 1, 0), header

    um = ", ".join(f"{s * 1e3:g}" for s in level.spacing_mm)
    metadata = tuple(p for p in (ms.path / ".zattrs", ms.path / "zarr.json") if p.exists())
    return ImageSource(
        "registration channel",
        f"registration channel {ms.path} level {level.index} ({um} um, registration frame)",
        load,
        sources=(*metadata, ms.path / level.path),
        geometry=f"level {level.path}: {header!r}",
    )
