"""Pre-flight validation: every check the run itself relies on, as a table and a JSON report.

The checks are the stages' own code paths (asset discovery, grid construction, the full track
computation, ephys discovery) run without writing outputs, so ``--validate-only`` and the run
can never disagree. Run- and mouse-level errors are fatal (exit 3); a row or probe error only
removes that item from the run.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..errors import AlignprepError, InputError
from ..inputs.locate import confine, single_top_level_file
from ..inputs.manifest import Manifest, read_manifest
from ..inputs.references import check_lca_template
from ..inputs.transform_check import check_transforms
from ..logs import get_logger, heartbeat
from .context import MouseContext

log = get_logger("stages.validate")

Status = Literal["ok", "warning", "error"]
Scope = Literal["run", "mouse", "histology", "row", "probe"]
GB = 1024**3


@dataclass(frozen=True)
class Check:
    """One check's outcome. ``key`` names the item it gates (a manifest line, a probe)."""

    scope: Scope
    name: str
    status: Status
    message: str = ""
    key: str = ""


@dataclass
class ValidationReport:
    """All checks of one run, plus what they discovered (reused by the run)."""

    checks: list[Check] = field(default_factory=list)
    manifest: Manifest | None = None
    context: MouseContext | None = None
    probe_zarrs: dict[str, list[Path]] = field(default_factory=dict)  # raw zarrs per probe

    def add(
        self, scope: Scope, name: str, status: Status, message: str = "", key: str = ""
    ) -> None:
        """Record a check."""
        self.checks.append(Check(scope, name, status, message, key))

    @property
    def fatal(self) -> list[Check]:
        """Errors that stop the whole run."""
        return [c for c in self.checks if c.status == "error" and c.scope in ("run", "mouse")]

    def errors_for(self, scope: Scope) -> dict[str, str]:
        """Item key -> reason, for the errors of one scope."""
        out: dict[str, str] = {}
        for c in self.checks:
            if c.status == "error" and c.scope == scope:
                out[c.key] = f"{out[c.key]}; {c.message}" if c.key in out else c.message
        return out

    def to_json(self) -> dict[str, object]:
        """The JSON report."""
        counts = {s: sum(c.status == s for c in self.checks) for s in ("ok", "warning", "error")}
        return {
            "ok": not self.has_errors,
            "counts": counts,
            "checks": [asdict(c) for c in self.checks],
        }

    @property
    def has_errors(self) -> bool:
        """Whether any check failed."""
        return any(c.status == "error" for c in self.checks)

    def table(self) -> str:
        """A readable table, errors first."""
        order = {"error": 0, "warning": 1, "ok": 2}
        rows = sorted(self.checks, key=lambda c: order[c.status])
        w = max((len(f"{c.scope}:{c.key}") for c in rows), default=5)
        lines = [f"{'STATUS':<8} {'WHERE':<{w}}  CHECK: MESSAGE"]
        for c in rows:
            where = f"{c.scope}:{c.key}" if c.key else c.scope
            lines.append(f"{c.status.upper():<8} {where:<{w}}  {c.name}: {c.message}")
        return "\n".join(lines)


def _guard(
    report: ValidationReport,
    scope: Scope,
    name: str,
    key: str = "",
    found: Callable[[Any], str] | None = None,
) -> Callable:
    """Run ``fn`` and record ok (saying what ``found`` describes) or error; return its value."""

    def run(fn: Callable, *args: object):
        try:
            value = fn(*args)
        except (AlignprepError, ValueError, OSError) as exc:
            report.add(scope, name, "error", str(exc), key)
            return None
        message = ""
        if found is not None:
            try:
                message = found(value)
            except Exception as exc:  # a description must never fail the check
                message = f"(no description: {type(exc).__name__})"
        report.add(scope, name, "ok", message, key)
        return value

    return run


def _asset_found(ctx: MouseContext) -> str:
    a = ctx.asset
    return (
        f"{a.path.name}: orientation {a.orientation}, import {a.processing.import_version}, "
        f"registration channel {a.registration_channel} ({len(a.channels)} channel(s)), "
        f"registration frame {ctx.decision.frame} ({ctx.decision.reason}); template->CCF "
        f"{ctx.template_to_ccf.directory.name}"
    )


def _grid_found(grids) -> str:
    level = grids.level
    spacing = ", ".join(f"{s:g}" for s in (level.spacing_mm * 1e3).round(3))
    return (
        f"level {level.index} ({spacing} um, {'x'.join(map(str, level.size))}) -> output grid "
        f"{'x'.join(map(str, grids.native.size))} voxels"
    )


def _track_found(result) -> str:
    frames, _ = result
    spim = frames["spim_lps_mm"]
    length_mm = float(sum(np.linalg.norm(np.diff(spim, axis=0), axis=1)))
    return f"{len(spim)} picks along {length_mm:.2f} mm"


def check_roots(config: PipelineConfig) -> list[Check]:
    """The data, results and scratch roots, in that order; nothing is written before they pass.

    The data root must exist (except with ``--demo``, which builds it). Then the results and
    scratch roots must be folders that exist or whose parent exists (a mistyped path is never
    created with all its parents), and must be writable.
    """
    checks: list[Check] = []
    if not config.demo and not config.data_root.is_dir():
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


def _input_exists(path: Path, data_root: Path, key: str) -> Path:
    """An input parameter's file or folder: inside the data root, and there."""
    confine(path, data_root, key)
    if not path.exists():
        flag = "--" + key.replace(".", "-").replace("_", "-")
        raise InputError(
            f"not found; set {flag} (or {key} in --params) to where it is", file=path, key=key
        )
    return path


def check_resources(config: PipelineConfig, report: ValidationReport) -> None:
    """The roots: folders, writable (memory and disk are checked against the estimate)."""
    report.checks += check_roots(config)


def check_needs(config: PipelineConfig, report: ValidationReport) -> None:
    """Memory and disk against what this run will need (:mod:`.needs`), container limits in."""
    from ..resources import available_ram_bytes, read_cgroup_limits
    from .needs import estimate

    needs = estimate(report.context, report.probe_zarrs, config.effective_n_jobs)
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
        status: Status = "error" if free_gb < need else "warning" if free_gb < warn else "ok"
        report.add(
            "run",
            "disk for this run",
            status,
            f"needs ~{need:.1f} GB free on {root}, has {free_gb:.1f} GB"
            + (
                "; free space or set --results-root / --scratch-root elsewhere"
                if status == "error"
                else ""
            ),
        )


def validate(config: PipelineConfig) -> ValidationReport:
    """Every pre-flight check; never raises for bad inputs."""
    from .histology import Grids
    from .probes import compute_track
    from .shanks import gui_shank_suffixes

    report = ValidationReport()
    check_resources(config, report)
    if report.fatal:
        return report
    if not any(config.data_root.iterdir()):
        report.add(
            "run",
            "data root",
            "error",
            f"{config.data_root} is empty: attach the inputs as docs/inputs.md describes, or "
            "try --demo to run on a synthetic dataset",
        )
        return report
    for key, input_path in config.input_paths().items():
        if key == "references.lca_template" and not input_path.exists():
            report.add(
                "run",
                key,
                "warning",
                f"{input_path} not found: the LS -> template registration cannot be checked "
                "against images (set --references-lca-template)",
            )
            continue
        _guard(report, "run", key, found=lambda p: f"{p} (inside the data root)")(
            _input_exists, input_path, config.data_root, key
        )
    if report.fatal:
        return report
    path = _guard(report, "run", "manifest found", found=str)(
        lambda: confine(
            config.manifest
            or single_top_level_file(config.data_root, "*.csv", "manifest", "--manifest"),
            config.data_root,
            "manifest",
        )
    )
    manifest = path and _guard(
        report,
        "run",
        "manifest readable",
        found=lambda m: (
            f"{len(m.rows)} valid row(s), {len(m.problems)} rejected, mouse {m.mouse_id!r}"
        ),
    )(read_manifest, path)
    if manifest is None:
        return report
    report.manifest = manifest
    for problem in manifest.problems:
        report.add("row", "manifest row", "error", problem.message, str(problem.line))
    for warning in manifest.warnings:
        report.add("run", "manifest", "warning", warning)
    if not manifest.rows:
        report.add("run", "manifest rows", "error", f"{path}: no valid row")
        return report
    ctx = _guard(report, "mouse", "SmartSPIM asset, frames, transforms", found=_asset_found)(
        MouseContext.prepare, config, manifest
    )
    if ctx is None:
        return report
    report.context = ctx
    for warning in ctx.warnings:
        report.add("mouse", "asset", "warning", warning)
    with heartbeat("transform check (every file read completely)"):
        transforms = check_transforms(ctx)  # before any track is computed with them
    for status, message in transforms.checks():
        report.add("mouse", "transforms", status, message)
    _guard(
        report,
        "mouse",
        "CCF labels and lookup",
        found=lambda lab: f"{len(lab.unique_labels)} lookup entries, grid {lab.header.size}",
    )(lambda: ctx.labels)
    _guard(report, "histology", "histology grid", found=_grid_found)(Grids.build, ctx)
    _guard(
        report,
        "histology",
        "additional channels share the pyramid",
        found=lambda chans: ", ".join(c.name for c in chans) or "no other channel",
    )(ctx.asset.additional_channels)
    if not config.references.lca_template.is_file():
        report.add("mouse", "LCA template", "warning", f"{config.references.lca_template} missing")
    else:
        _guard(report, "mouse", "LCA template", found=lambda h: f"{h.code}, {h.size}")(
            check_lca_template, config.references.lca_template
        )
    if not config.skip_ephys:
        check_subjects(config, manifest, report)
        check_probes(config, manifest, report)
    check_needs(config, report)
    suffixes, suffix_problems = gui_shank_suffixes(config, manifest)
    for row in manifest.rows:
        key = str(row.line)
        if row.line in suffix_problems:
            report.add("row", "GUI shank", "error", suffix_problems[row.line], key)
            continue
        if not transforms.ok:  # the mouse-level transform errors say why
            continue
        name = f"track {row.histology_track_id}{suffixes[row.line]}"
        result = _guard(report, "row", name, key, found=_track_found)(compute_track, ctx, row)
        for warning in result[1] if result else []:
            report.add("row", "track", "warning", warning, key)
    return report


def check_subjects(config: PipelineConfig, manifest: Manifest, report: ValidationReport) -> None:
    """Each probe's sorted asset and raw session must belong to the manifest's mouse."""
    from ..inputs.identity import check_subject, subjects_of
    from .ephys import plan_ephys

    for job in plan_ephys(manifest):
        for what, folder in (
            ("sorted asset", config.data_root / job.sorted_recording),
            ("raw ecephys session", config.data_root / job.recording_id),
        ):
            if folder.is_dir():

                def found(_: object, folder: Path = folder) -> str:
                    sources = ", ".join(subjects_of(folder)) or "nothing names it"
                    return f"subject {manifest.mouse_id!r} ({sources})"

                guard = _guard(report, "probe", f"{what} subject", job.name, found=found)
                for warning in guard(check_subject, folder, manifest.mouse_id, what) or []:
                    report.add("probe", f"{what} subject", "warning", warning, job.name)


def check_probes(config: PipelineConfig, manifest: Manifest, report: ValidationReport) -> None:
    """Every probe folder's sorted and raw inputs, as the ephys stage will find and open them.

    Beyond discovery (streams, zarrs, analyzer folders and extensions, placeholders of failed
    sorts) every analyzer is opened (unit ids, channels, scale) with its curated sorting and
    ``curation.json``: an unreadable analyzer, one with zero units, or curated unit ids that are
    not the analyzer's are errors whose message names the probe, the shank group and the file.
    """
    from ..inputs.sorted import discover_probe
    from .ephys import EphysSettings, check_durations, check_sorted, plan_ephys

    settings = EphysSettings.from_config(config)

    def found(result: tuple[list[str], str]) -> str:
        return result[1]

    for job in plan_ephys(manifest):
        guard = _guard(report, "probe", "sorted and raw ephys inputs", job.name, found=found)

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
            report.probe_zarrs[job.name] = list(inputs.raw_zarrs)
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
            report.add("probe", "ephys inputs", "warning", warning, job.name)


def write_report(config: PipelineConfig, report: ValidationReport) -> Path:
    """``<results>/validation_report.json`` (atomic) and the table in the log."""
    log.info("validation:\n%s", report.table())
    path = config.results_root / "validation_report.json"
    return outputs.write_bytes_atomic(path, outputs.json_bytes(report.to_json()))
