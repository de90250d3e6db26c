"""Pre-flight validation: every check the run itself relies on, as a table and a JSON report.

The checks are the stages' own code paths (asset discovery, grid construction, the full track
computation, ephys discovery) run without writing outputs, so ``--validate-only`` and the run
can never disagree. Run- and mouse-level errors are fatal (exit 3); a row or probe error only
removes that item from the run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from .. import outputs
from ..config import PipelineConfig
from ..errors import AlignprepError
from ..inputs.locate import confine, single_top_level_file
from ..inputs.manifest import Manifest, read_manifest
from ..inputs.references import check_lca_template
from ..inputs.transform_check import check_transforms
from ..logs import get_logger
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


def _guard(report: ValidationReport, scope: Scope, name: str, key: str = "") -> Callable:
    """Run ``fn`` and record ok/error; returns its value or None."""

    def run(fn: Callable, *args: object):
        try:
            value = fn(*args)
        except (AlignprepError, ValueError, OSError) as exc:
            report.add(scope, name, "error", str(exc), key)
            return None
        report.add(scope, name, "ok", "", key)
        return value

    return run


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


def check_resources(config: PipelineConfig, report: ValidationReport) -> None:
    """Roots, writability, free disk and available RAM."""
    report.checks += check_roots(config)
    if report.fatal:
        return
    checks = config.checks
    if config.results_root.is_dir():
        free_gb = shutil.disk_usage(config.results_root).free / GB
        status: Status = "ok"
        if free_gb < checks.min_free_disk_gb:
            status = "error"
        elif free_gb < checks.warn_free_disk_gb:
            status = "warning"
        report.add(
            "run",
            "free disk",
            status,
            f"{free_gb:.1f} GB free on {config.results_root} "
            f"(error < {checks.min_free_disk_gb:g}, warning < {checks.warn_free_disk_gb:g})",
        )
    ram_gb = available_ram_gb()
    status = "error" if ram_gb < checks.min_available_ram_gb else "ok"
    report.add(
        "run",
        "available RAM",
        status,
        f"{ram_gb:.1f} GB available (error < {checks.min_available_ram_gb:g})",
    )


def available_ram_gb() -> float:
    """MemAvailable from /proc/meminfo (Linux), else total physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB


def validate(config: PipelineConfig) -> ValidationReport:
    """Every pre-flight check; never raises for bad inputs."""
    from .histology import Grids
    from .probes import compute_track
    from .shanks import gui_shank_suffixes

    report = ValidationReport()
    check_resources(config, report)
    for key, input_path in config.input_paths().items():
        _guard(report, "run", f"{key} inside the data root")(
            confine, input_path, config.data_root, key
        )
    if report.fatal:
        return report
    path = _guard(report, "run", "manifest found")(
        lambda: confine(
            config.manifest or single_top_level_file(config.data_root, "*.csv", "manifest"),
            config.data_root,
            "manifest",
        )
    )
    manifest = path and _guard(report, "run", "manifest readable")(read_manifest, path)
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
    ctx = _guard(report, "mouse", "SmartSPIM asset, frames, transforms")(
        MouseContext.prepare, config, manifest
    )
    if ctx is None:
        return report
    report.context = ctx
    for warning in ctx.warnings:
        report.add("mouse", "asset", "warning", warning)
    transforms = check_transforms(ctx)  # before any track is computed with them
    for status, message in transforms.checks():
        report.add("mouse", "transforms", status, message)
    _guard(report, "mouse", "CCF labels and lookup")(lambda: ctx.labels)
    _guard(report, "histology", "histology grid")(Grids.build, ctx)
    _guard(report, "histology", "additional channels share the pyramid")(
        ctx.asset.additional_channels
    )
    if not config.references.lca_template.is_file():
        report.add("mouse", "LCA template", "warning", f"{config.references.lca_template} missing")
    else:
        _guard(report, "mouse", "LCA template")(check_lca_template, config.references.lca_template)
    if not config.skip_ephys:
        check_subjects(config, manifest, report)
        check_probes(config, manifest, report)
    suffixes, suffix_problems = gui_shank_suffixes(config, manifest)
    for row in manifest.rows:
        key = str(row.line)
        if row.line in suffix_problems:
            report.add("row", "GUI shank", "error", suffix_problems[row.line], key)
            continue
        if not transforms.ok:  # the mouse-level transform errors say why
            continue
        result = _guard(report, "row", f"track {row.histology_track_id}{suffixes[row.line]}", key)(
            compute_track, ctx, row
        )
        for warning in result[1] if result else []:
            report.add("row", "track", "warning", warning, key)
    return report


def check_subjects(config: PipelineConfig, manifest: Manifest, report: ValidationReport) -> None:
    """Each probe's sorted asset and raw session must belong to the manifest's mouse."""
    from ..inputs.identity import check_subject
    from .ephys import plan_ephys

    for job in plan_ephys(manifest):
        for what, folder in (
            ("sorted asset", config.data_root / job.sorted_recording),
            ("raw ecephys session", config.data_root / job.recording_id),
        ):
            if folder.is_dir():
                guard = _guard(report, "probe", f"{what} subject", job.name)
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
    for job in plan_ephys(manifest):
        guard = _guard(report, "probe", "sorted and raw ephys inputs", job.name)

        def check(job=job) -> list[str]:
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
            check_durations(inputs, settings)
            _, notes = check_sorted(inputs, settings)
            return [*inputs.warnings, *notes]

        for warning in guard(check) or []:
            report.add("probe", "ephys inputs", "warning", warning, job.name)


def write_report(config: PipelineConfig, report: ValidationReport) -> Path:
    """``<results>/validation_report.json`` (atomic) and the table in the log."""
    log.info("validation:\n%s", report.table())
    path = config.results_root / "validation_report.json"
    return outputs.write_bytes_atomic(path, outputs.json_bytes(report.to_json()))
