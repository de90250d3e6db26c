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
from ..inputs.locate import single_top_level_file
from ..inputs.manifest import Manifest, read_manifest
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


def check_resources(config: PipelineConfig, report: ValidationReport) -> None:
    """Roots, writability, free disk and available RAM."""
    if not config.data_root.is_dir():
        report.add("run", "data root", "error", f"{config.data_root} is not a folder")
    for what, root in (
        ("results root", config.results_root),
        ("scratch root", config.scratch_root),
    ):
        try:
            root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=root):
                pass
            report.add("run", what, "ok", str(root))
        except OSError as exc:
            report.add("run", what, "error", f"{root} is not writable: {exc.strerror}")
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
    if report.fatal:
        return report
    path = _guard(report, "run", "manifest found")(
        lambda: config.manifest or single_top_level_file(config.data_root, "*.csv", "manifest")
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
    _guard(report, "mouse", "CCF labels and lookup")(lambda: ctx.labels)
    _guard(report, "histology", "histology grid")(Grids.build, ctx)
    _guard(report, "histology", "additional channels share the pyramid")(
        ctx.asset.additional_channels
    )
    if not config.references.lca_template.is_file():
        report.add("mouse", "LCA template", "warning", f"{config.references.lca_template} missing")
    if not config.skip_ephys:
        check_probes(config, manifest, report)
    suffixes, suffix_problems = gui_shank_suffixes(config, manifest)
    for row in manifest.rows:
        key = str(row.line)
        if row.line in suffix_problems:
            report.add("row", "GUI shank", "error", suffix_problems[row.line], key)
            continue
        result = _guard(report, "row", f"track {row.histology_track_id}{suffixes[row.line]}", key)(
            compute_track, ctx, row
        )
        for warning in result[1] if result else []:
            report.add("row", "track", "warning", warning, key)
    return report


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
            surface = config.input_path(job.surface_finding) if job.surface_finding else None
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
