"""Pre-flight validation: every check the run itself relies on, as a table and a JSON report.

The checks are the stages' own code paths (asset discovery, grid construction, the full track
computation, ephys discovery) run without writing outputs, so ``--validate-only`` and the run
can never disagree. Validation covers every mouse of the run (one manifest each). A run-level
error stops the run (exit 3); a mouse-level error stops that mouse only; a row or probe error
only removes that item. What validation discovers (manifests, mouse contexts) is reused by the
plan, so nothing is discovered twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from .. import outputs
from ..config import PipelineConfig
from ..errors import AlignprepError, InputError
from ..inputs.check_cache import CheckCache, cache_root
from ..inputs.locate import confine
from ..inputs.manifest import REQUIRED, Manifest, read_manifest
from ..inputs.references import check_lca_template
from ..inputs.transform_check import check_transforms
from ..logs import get_logger, heartbeat
from ..reads import note_listing
from ..work import ComputedTrack
from . import checks as run_checks
from .context import MouseContext

log = get_logger("stages.validate")

Status = Literal["ok", "warning", "error"]
Scope = Literal["run", "mouse", "histology", "row", "probe"]

#: Inputs only a mouse with light-sheet data (a Neuroglancer row) reads.
LIGHT_SHEET_INPUTS = (
    "references.ccf_template",
    "references.template_to_ccf_dir",
    "references.lca_template",
)
NO_LIGHT_SHEET = (
    "no manifest row of this mouse is a Neuroglancer annotation of a SmartSPIM image, so the run "
    "uses no light-sheet data: it writes the IBL GUI's bregma picks, the ephys, the channel "
    "regions and the QC in the CCF, but not the Allen GUI's image-space inputs "
    "(xyz_picks*_image_space.json, image_space_histology/), which need the mouse's own image"
)


@dataclass(frozen=True)
class Check:
    """One check's outcome. ``key`` names the item it gates (a manifest line, a probe)."""

    scope: Scope
    name: str
    status: Status
    message: str = ""
    key: str = ""
    mouse: str = ""  # "" for run-level checks


@dataclass
class MouseReport:
    """What validation found for one mouse (one manifest)."""

    manifest_path: Path
    manifest: Manifest | None = None
    context: MouseContext | None = None
    probe_zarrs: dict[str, list[Path]] = field(default_factory=dict)  # raw zarrs per probe
    tracks: dict[int, ComputedTrack] = field(default_factory=dict)  # manifest line -> picks

    @property
    def mouse_id(self) -> str:
        """The manifest's mouse id ("" when the manifest could not be read)."""
        return self.manifest.mouse_id if self.manifest is not None else ""


@dataclass
class ValidationReport:
    """All checks of one run, plus what they discovered (reused by the plan)."""

    checks: list[Check] = field(default_factory=list)
    mice: list[MouseReport] = field(default_factory=list)

    def add(
        self,
        scope: Scope,
        name: str,
        status: Status,
        message: str = "",
        key: str = "",
        mouse: str = "",
    ) -> None:
        """Record a check."""
        self.checks.append(Check(scope, name, status, message, key, mouse))

    def guard(
        self,
        scope: Scope,
        name: str,
        key: str = "",
        mouse: str = "",
        found: Callable[[Any], str] | None = None,
    ) -> Callable:
        """Run ``fn``; record ok (saying what ``found`` found) or the error; return its value."""

        def run(fn: Callable, *args: object):
            try:
                value = fn(*args)
            except (AlignprepError, ValueError, OSError) as exc:
                self.add(scope, name, "error", str(exc), key, mouse)
                return None
            message = ""
            if found is not None:
                try:
                    message = found(value)
                except Exception as exc:  # a description must never fail the check
                    message = f"(no description: {type(exc).__name__})"
            self.add(scope, name, "ok", message, key, mouse)
            return value

        return run

    @property
    def fatal(self) -> list[Check]:
        """Errors that stop the whole run (run scope, or every mouse stopped)."""
        run_errors = [c for c in self.checks if c.status == "error" and c.scope == "run"]
        if run_errors or not self.mice:
            return run_errors
        stopped = [m for m in self.mice if self.mouse_fatal(m.mouse_id) or m.context is None]
        if len(stopped) == len(self.mice):
            return [c for c in self.checks if c.status == "error" and c.scope == "mouse"]
        return []

    def mouse_fatal(self, mouse: str) -> list[Check]:
        """The errors that stop one mouse."""
        return [
            c
            for c in self.checks
            if c.status == "error" and c.scope == "mouse" and c.mouse == mouse
        ]

    def errors_for(self, scope: Scope, mouse: str) -> dict[str, str]:
        """Item key -> reason, for the errors of one scope of one mouse."""
        out: dict[str, str] = {}
        for c in self.checks:
            if c.status == "error" and c.scope == scope and c.mouse == mouse:
                out[c.key] = f"{out[c.key]}; {c.message}" if c.key in out else c.message
        return out

    def to_json(self) -> dict[str, object]:
        """The JSON report."""
        counts = {s: sum(c.status == s for c in self.checks) for s in ("ok", "warning", "error")}
        return {
            "ok": not self.has_errors,
            "counts": counts,
            "mice": [m.mouse_id for m in self.mice],
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

        def where(c: Check) -> str:
            scope = f"{c.scope}:{c.key}" if c.key else c.scope
            return f"{c.mouse} {scope}" if c.mouse else scope

        w = max((len(where(c)) for c in rows), default=5)
        lines = [f"{'STATUS':<8} {'WHERE':<{w}}  CHECK: MESSAGE"]
        for c in rows:
            lines.append(f"{c.status.upper():<8} {where(c):<{w}}  {c.name}: {c.message}")
        return "\n".join(lines)


def manifest_paths(config: PipelineConfig) -> list[Path]:
    """The manifests of this run: ``manifest``, else every manifest CSV at the top of data_root.

    A top-level CSV without the manifest's required columns is not a manifest (left out, with a
    log line); several manifests mean several mice in one run.
    """
    if config.manifest is not None:
        return [confine(config.manifest, config.data_root, "manifest")]
    found = sorted(p for p in note_listing(config.data_root, "*.csv").glob("*.csv") if p.is_file())
    manifests = []
    for path in found:
        try:
            header = path.read_text(encoding="utf-8-sig").splitlines()[0].split(",")
        except (OSError, UnicodeDecodeError, IndexError):
            header = []
        if {c.strip() for c in header} & set(REQUIRED):
            manifests.append(confine(path, config.data_root, "manifest"))
        else:
            log.info("%s is not a manifest (none of its columns %s); left out", path, REQUIRED)
    if not manifests:
        names = ", ".join(p.name for p in found) or "none"
        raise InputError(
            f"no manifest (*.csv with the columns {', '.join(REQUIRED)}) at the top of the data "
            f"root (CSV files found: {names}); name it with --manifest",
            file=config.data_root,
        )
    return manifests


def validate(config: PipelineConfig) -> ValidationReport:
    """Every pre-flight check of every mouse; never raises for bad inputs."""
    report = ValidationReport()
    report.checks += run_checks.check_roots(config)
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
    deferred: list[str] = []  # missing inputs that only light-sheet mice need: decided below
    for key, input_path in config.input_paths().items():
        if key == "manifest":
            continue  # checked with the manifests below
        if key in LIGHT_SHEET_INPUTS and not input_path.exists():
            deferred.append(key)
            continue
        report.guard("run", key, found=lambda p: f"{p} (inside the data root)")(
            run_checks.input_exists, input_path, config.data_root, key
        )
    if report.fatal:
        return report
    paths = report.guard("run", "manifests found", found=lambda ps: ", ".join(map(str, ps)))(
        manifest_paths, config
    )
    for path in paths or []:
        report.mice.append(validate_mouse(config, path, report))
    _check_light_sheet_inputs(config, report, deferred)
    ids = [m.mouse_id for m in report.mice if m.mouse_id]
    for mouse in sorted({i for i in ids if ids.count(i) > 1}):
        files = [str(m.manifest_path) for m in report.mice if m.mouse_id == mouse]
        report.add(
            "run", "one manifest per mouse", "error", f"mouse {mouse!r} in {', '.join(files)}"
        )
    if report.mice:
        run_checks.check_needs(config, report)
    return report


def _check_light_sheet_inputs(
    config: PipelineConfig, report: ValidationReport, missing: list[str]
) -> None:
    """The missing inputs that only light-sheet mice read: errors when a mouse of the run has
    light-sheet tracks (the LCA template: a warning), else not needed."""
    light_sheet = any(r.light_sheet for m in report.mice if m.manifest for r in m.manifest.rows)
    paths = config.input_paths()
    for key in missing:
        path = paths[key]
        if not light_sheet:
            report.add("run", key, "ok", f"{path} not found: not needed (no light-sheet data)")
        elif key == "references.lca_template":
            report.add(
                "run",
                key,
                "warning",
                f"{path} not found: the LS -> template registration cannot be checked "
                "against images (set --references-lca-template)",
            )
        else:
            report.guard("run", key)(run_checks.input_exists, path, config.data_root, key)


def validate_mouse(config: PipelineConfig, path: Path, report: ValidationReport) -> MouseReport:
    """The checks of one mouse's manifest, asset, transforms, references, probes and tracks."""
    from .probes import compute_tracks
    from .shanks import gui_shank_suffixes

    mouse = MouseReport(path)
    manifest = report.guard(
        "run",
        "manifest readable",
        key=str(path.name),
        found=lambda m: (
            f"{len(m.rows)} valid row(s), {len(m.problems)} rejected, mouse {m.mouse_id!r}"
        ),
    )(read_manifest, path)
    if manifest is None:
        return mouse
    mouse.manifest = manifest
    mid = manifest.mouse_id
    for problem in manifest.problems:
        report.add("row", "manifest row", "error", problem.message, str(problem.line), mid)
    for warning in manifest.warnings:
        report.add("mouse", "manifest", "warning", warning, mouse=mid)
    if not manifest.rows:
        report.add("mouse", "manifest rows", "error", f"{path}: no valid row", mouse=mid)
        return mouse
    if any(row.light_sheet for row in manifest.rows):
        ctx = report.guard(
            "mouse", "SmartSPIM asset, frames, transforms", mouse=mid, found=run_checks.asset_found
        )(MouseContext.prepare, config, manifest)
    else:
        ctx = MouseContext.prepare_ccf(config, manifest)
        report.add("mouse", "light-sheet data", "warning", NO_LIGHT_SHEET, mouse=mid)
    if ctx is None:
        return mouse
    mouse.context = ctx
    for warning in ctx.warnings:
        report.add("mouse", "asset", "warning", warning, mouse=mid)
    transforms_ok = True
    if ctx.light_sheet:
        transforms_ok = _check_light_sheet(config, ctx, report)
    report.guard(
        "mouse",
        "CCF labels and lookup",
        mouse=mid,
        found=lambda lab: f"{len(lab.unique_labels)} lookup entries, grid {lab.header.size}",
    )(lambda: ctx.labels)
    if not config.skip_ephys:
        run_checks.check_subjects(config, mouse, report)
        run_checks.check_probes(config, mouse, report)
    suffixes, suffix_problems = gui_shank_suffixes(config, manifest)
    # every row in one pass through each chain (the mouse-level transform errors say why not)
    rows = [
        row
        for row in manifest.rows
        if row.line not in suffix_problems and (transforms_ok or not row.light_sheet)
    ]
    outcomes = compute_tracks(ctx, rows)

    def outcome(line: int) -> ComputedTrack:
        found = outcomes[line]
        if isinstance(found, Exception):
            raise found
        return found

    for row in manifest.rows:
        key = str(row.line)
        if row.line in suffix_problems:
            report.add("row", "GUI shank", "error", suffix_problems[row.line], key, mid)
            continue
        if row.line not in outcomes:
            continue
        name = f"track {row.histology_track_id}{suffixes[row.line]}"
        computed = report.guard("row", name, key, mid, run_checks.track_found)(outcome, row.line)
        if computed is not None:
            mouse.tracks[row.line] = computed
            for warning in computed.warnings:
                report.add("row", "track", "warning", warning, key, mid)
    ctx.release_caches()  # the run process holds no volume while the plan runs
    return mouse


def _check_light_sheet(config: PipelineConfig, ctx: MouseContext, report: ValidationReport) -> bool:
    """The checks of a mouse's SmartSPIM asset; whether its transforms may map points."""
    from .histology import Grids

    mid = ctx.mouse_id
    with heartbeat("transform check (every file read completely)"):
        cache = CheckCache(cache_root(config.scratch_root))
        transforms = check_transforms(ctx, cache=cache)  # before any track is computed with them
    for status, message in transforms.checks():
        report.add("mouse", "transforms", status, message, mouse=mid)
    report.guard("histology", "histology grid", mouse=mid, found=run_checks.grid_found)(
        Grids.build, ctx
    )
    report.guard(
        "histology",
        "additional channels share the pyramid",
        mouse=mid,
        found=lambda chans: ", ".join(c.name for c in chans) or "no other channel",
    )(ctx.asset.additional_channels)
    lca = config.references.lca_template
    if lca.is_file():
        report.guard("mouse", "LCA template", mouse=mid, found=lambda h: f"{h.code}, {h.size}")(
            check_lca_template, lca
        )
    return transforms.ok


def write_report(config: PipelineConfig, report: ValidationReport) -> Path:
    """``<results>/validation_report.json`` (atomic) and the table in the log."""
    log.info("validation:\n%s", report.table())
    path = outputs.validation_report_path(config.results_root)
    return outputs.write_bytes_atomic(path, outputs.json_bytes(report.to_json()))
