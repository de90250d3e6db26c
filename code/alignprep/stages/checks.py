"""The individual pre-flight checks that :mod:`.validate` runs (roots, inputs, needs, ephys)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..inputs.locate import confine
from ..logs import get_logger

if TYPE_CHECKING:
    from .context import MouseContext
    from .validate import Check, MouseReport, ValidationReport

log = get_logger("stages.checks")
GB = 1024**3


def check_roots(config: PipelineConfig) -> list[Check]:
    """The data, results and scratch roots, in that order; nothing is written before they pass.

    The data root must exist (except with ``--demo``, which builds it). Then the results and
    scratch roots must be folders that exist or whose parent exists (a mistyped path is never
    created with all its parents), and must be writable.
    """
    from .validate import Check

    checks: list[Check] = []
    if config.demo == "off" and not config.data_root.is_dir():
        reason = "does not exist" if not config.data_root.exists() else "is not a folder"
        checks.append(
            Check(
                "run",
                "data root",
                "error",
                f"{config.data_root} {reason}; set --data-root (or data_root in --params) to the "
                "folder holding the inputs, or try --demo (input contract: docs/inputs.md)",
            )
        )
        return checks
    for what, root, flag in (
        ("results root", config.results_root, "--results-root"),
        ("scratch root", config.scratch_root, "--scratch-root"),
    ):
        try:
            if not root.exists() and not root.parent.is_dir():
                raise FileNotFoundError(f"neither it nor its parent {root.parent} exists")
            root.mkdir(exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root, prefix=f"{outputs.TEMP_MARK}probe-"):
                pass
            checks.append(Check("run", what, "ok", str(root)))
        except OSError as exc:
            reason = exc.strerror or str(exc)
            checks.append(
                Check(
                    "run", what, "error", f"{root} is not a writable folder ({reason}); set {flag}"
                )
            )
    return checks


def input_exists(path: Path, data_root: Path, key: str) -> Path:
    """An input parameter's file or folder: inside the data root, and there."""
    confine(path, data_root, key)
    if not path.exists():
        flag = "--" + key.replace(".", "-").replace("_", "-")
        raise InputError(
            f"not found; set {flag} (or {key} in --params) to where it is", file=path, key=key
        )
    return path


def check_needs(config: PipelineConfig, report: ValidationReport) -> None:
    """Memory and disk against what this run will need (:mod:`.needs`), container limits in."""
    from ..resources import available_ram_bytes, read_cgroup_limits
    from .needs import estimate

    contexts = [m.context for m in report.mice if m.context is not None]
    zarrs = {k: v for m in report.mice for k, v in m.probe_zarrs.items()}
    needs = estimate(contexts, zarrs, config.effective_n_jobs)
    log.info("this run needs %s", needs.describe())
    checks = config.checks
    limits = read_cgroup_limits()
    ram_gb = available_ram_bytes(limits) / GB
    need_gb = max(needs.ram_bytes / GB, checks.min_available_ram_gb)
    where = " (container limit)" if limits.memory_limit_bytes is not None else ""
    biggest = max((v for k, v in needs.parts.items() if k.startswith("ephys ")), default=0)
    advice = (
        f"; lower --n-jobs (now {config.effective_n_jobs}; each probe needs ~{biggest / GB:.1f} "
        "GB) or give the run more memory"
        if config.effective_n_jobs > 1
        else "; give the run more memory, or use a coarser --histology-output-voxel-size-um"
    )
    report.add(
        "run",
        "memory for this run",
        "error" if ram_gb < need_gb else "ok",
        f"needs ~{need_gb:.1f} GB, has {ram_gb:.1f} GB available{where}"
        + (advice if ram_gb < need_gb else f"; estimate: {needs.describe()}"),
    )
    disk_gb = needs.disk_bytes / GB
    devices: dict[int, tuple[Path, float]] = {}
    for root in (config.results_root, config.scratch_root):
        if root.is_dir():
            devices.setdefault(root.stat().st_dev, (root, shutil.disk_usage(root).free / GB))
    for root, free_gb in devices.values():
        need = max(disk_gb, checks.min_free_disk_gb)
        warn = max(2 * disk_gb, checks.warn_free_disk_gb)
        status = "error" if free_gb < need else "warning" if free_gb < warn else "ok"
        fix = "; free space or set --results-root / --scratch-root elsewhere"
        report.add(
            "run",
            "disk for this run",
            status,  # type: ignore[arg-type]
            f"needs ~{need:.1f} GB free on {root}, has {free_gb:.1f} GB"
            + (fix if status == "error" else ""),
        )


def check_subjects(config: PipelineConfig, mouse: MouseReport, report: ValidationReport) -> None:
    """Each probe's sorted asset and raw session must belong to the manifest's mouse."""
    from ..inputs.identity import check_subject, subjects_of
    from .ephys import plan_ephys

    assert mouse.manifest is not None
    mouse_id = mouse.manifest.mouse_id
    for job in plan_ephys(mouse.manifest):
        for what, folder in (
            ("sorted asset", config.data_root / job.sorted_recording),
            ("raw ecephys session", config.data_root / job.recording_id),
        ):
            if folder.is_dir():

                def found(_: object, folder: Path = folder) -> str:
                    sources = ", ".join(subjects_of(folder)) or "nothing names it"
                    return f"subject {mouse_id!r} ({sources})"

                guard = report.guard("probe", f"{what} subject", job.probe, mouse_id, found)
                for warning in guard(check_subject, folder, mouse_id, what) or []:
                    report.add("probe", f"{what} subject", "warning", warning, job.probe, mouse_id)


def check_probes(config: PipelineConfig, mouse: MouseReport, report: ValidationReport) -> None:
    """Every probe folder's sorted and raw inputs, as the ephys stage will find and open them.

    Beyond discovery (streams, zarrs, analyzer folders and extensions, placeholders of failed
    sorts) every analyzer is opened (unit ids, channels, scale) with its curated sorting and
    ``curation.json``: an unreadable analyzer, one with zero units, or curated unit ids that are
    not the analyzer's are errors whose message names the probe, the shank group and the file.
    """
    from ..inputs.sorted import discover_probe
    from .ephys import EphysSettings, check_durations, check_sorted, plan_ephys

    assert mouse.manifest is not None
    mouse_id = mouse.manifest.mouse_id
    settings = EphysSettings.from_config(config)

    def found(result: tuple[list[str], str]) -> str:
        return result[1]

    for job in plan_ephys(mouse.manifest):
        guard = report.guard("probe", "sorted and raw ephys inputs", job.probe, mouse_id, found)

        def check(job=job) -> tuple[list[str], str]:
            if job.problem:
                raise ValueError(job.problem)
            surface = (
                config.input_path(job.surface_finding, "surface_finding")
                if job.surface_finding
                else None
            )
            inputs = discover_probe(
                config.data_root,
                job.recording_id,
                job.sorted_recording,
                job.collection,
                job.ephys_shanks,
                surface,
            )
            if not inputs.analyzers:
                raise ValueError(
                    f"no spike-sorting analyzer for {job.collection} in {inputs.sorted_asset}: "
                    "only channels and QC could be written"
                )
            mouse.probe_zarrs[job.probe] = list(inputs.raw_zarrs)
            check_durations(inputs, settings)
            _, notes = check_sorted(inputs, settings)
            what = (
                f"stream {inputs.streams.stream} ({len(inputs.streams.zarrs)} raw zarr(s)) in "
                f"{inputs.raw.path.name}; {len(inputs.analyzers)} analyzer(s) in "
                f"{inputs.sorted_asset.name}"
            )
            return [*inputs.warnings, *notes], what

        result = guard(check)
        for warning in result[0] if result else []:
            report.add("probe", "ephys inputs", "warning", warning, job.probe, mouse_id)


def asset_found(ctx: MouseContext) -> str:
    """What validation found of the SmartSPIM asset and its frames."""
    a = ctx.asset
    return (
        f"{a.path.name}: orientation {a.orientation}, import {a.processing.import_version}, "
        f"registration channel {a.registration_channel} ({len(a.channels)} channel(s)), "
        f"registration frame {ctx.decision.frame} ({ctx.decision.reason}); template->CCF "
        f"{ctx.template_to_ccf.directory.name}"
    )


def grid_found(grids: Any) -> str:
    """The chosen level and the output grid."""
    level = grids.level
    spacing = ", ".join(f"{s:g}" for s in (level.spacing_mm * 1e3).round(3))
    return (
        f"level {level.index} ({spacing} um, {'x'.join(map(str, level.size))}) -> output grid "
        f"{'x'.join(map(str, grids.native.size))} voxels"
    )


def track_found(result: Any) -> str:
    """Picks and length of a computed track."""
    spim = result.frames["spim_lps_mm"]
    length_mm = float(sum(np.linalg.norm(np.diff(spim, axis=0), axis=1)))
    return f"{len(spim)} picks along {length_mm:.2f} mm"
