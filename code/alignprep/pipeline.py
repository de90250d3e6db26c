"""Plan and run a capsule job: one plan, run on any executor (serial, processes, asyncio).

Order: pre-flight validation (the stages' own checks); phase 0 the histology of the mouse (and
each probe's ephys); phase 1 the tracks, whose GUI shank suffixes come from the probe folders'
channel tables. Every item is fingerprinted; unchanged finished items are skipped on re-runs.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import outputs
from .config import ParamLayer, PipelineConfig, available_cpus, build_config
from .errors import ExitCode, InputError
from .executors import Mode, execute
from .lock import results_lock
from .logs import LOG_FILE_NAME, attach_log_file, get_logger, step
from .state import RunState
from .tasks import ItemResult, Job, Task, run_task

log = get_logger("pipeline")


@dataclass
class ProcessResult:
    """Outcome of a run: one entry per planned item, plus notes for the user."""

    items: list[ItemResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    validation_failed: bool = False

    @property
    def failed(self) -> list[ItemResult]:
        """Items that failed."""
        return [item for item in self.items if item.status == "failed"]

    def exit_code(self, allow_partial: bool) -> ExitCode:
        """3 on failed validation; 0 when nothing failed (or partial is allowed); else 1."""
        if self.validation_failed:
            return ExitCode.VALIDATION_FAILED
        if not self.failed:
            return ExitCode.OK
        if allow_partial and any(item.status != "failed" for item in self.items):
            return ExitCode.OK
        return ExitCode.RUN_FAILED


def log_parameters(config: PipelineConfig) -> None:
    """The parameter dump at the start of a run, and the effective worker count."""
    log.debug("parameters:\n%s", json.dumps(config.to_json_dict(), indent=2, sort_keys=True))
    log.info(
        "n_jobs: requested %s -> effective %d (cores available: %d)",
        config.n_jobs,
        config.effective_n_jobs,
        available_cpus(),
    )


def demo_config(config: PipelineConfig) -> PipelineConfig:
    """Build the synthetic demo dataset in scratch and point the inputs at it."""
    from .synthetic import SyntheticSpec, build_dataset

    root = config.scratch_root / "demo_dataset"
    with step("build synthetic demo dataset"):
        dataset = build_dataset(root, SyntheticSpec(ephys_preset="test"))
    log.info("demo dataset: %s (ground truth: %s)", dataset.data_root, dataset.truth_path)
    values = config.to_json_dict()
    values.pop("effective")
    values.pop("references")  # the demo's own: params.json defaults under the demo data root
    values.update(data_root=str(dataset.data_root), neuroglancer=None, manifest=None)
    return build_config([ParamLayer("--demo", values)])


def plan(config: PipelineConfig, manifest) -> list[Task]:
    """The tasks of one mouse: phase 0 histology and each probe's ephys, phase 1 the tracks."""
    from .stages.ephys import plan_ephys

    tasks = [Task("histology", "histology", 0)]
    if not config.skip_ephys:
        tasks += [Task(f"ephys {j.name}", "ephys", 0, j.name) for j in plan_ephys(manifest)]
    return [*tasks, Task("tracks", "tracks", 1)]


def executor_mode(config: PipelineConfig) -> Mode:
    """asyncio with ``--async``; a process pool when more than one job; else serial."""
    if config.use_async:
        return "async"
    return "processes" if config.effective_n_jobs > 1 else "serial"


def run_pipeline(config: PipelineConfig) -> ProcessResult:
    """Run a whole capsule job described by ``config``.

    Nothing is written before the roots pass their checks; then the results root is locked for
    this run (a second run on it is refused) and temporary files of interrupted runs are removed.
    """
    from .stages.validate import check_roots

    t0_s = time.perf_counter()
    root_problems = [c for c in check_roots(config) if c.status == "error"]
    if root_problems:
        result = ProcessResult(validation_failed=True)
        for check in root_problems:
            log.error("%s: %s", check.name, check.message)
            result.notes.append(f"{check.name}: {check.message}")
        return result
    with results_lock(config.results_root):
        log_file = attach_log_file(config.results_root / LOG_FILE_NAME)
        log.info("log file: %s", log_file)
        stale = outputs.remove_stale_temp_files(config.results_root)
        stale += outputs.remove_stale_scratch(config.scratch_root)
        for path in stale:
            log.warning("removed %s, left by an interrupted run", path)
        return _run_locked(config, t0_s)


def _run_locked(config: PipelineConfig, t0_s: float) -> ProcessResult:
    """The run itself, with the results root held (see :func:`run_pipeline`)."""
    from .inputs.manifest import write_manifest
    from .stages.results_readme import write_results_readme
    from .stages.validate import validate, write_report

    if config.demo:
        config = demo_config(config)
    log_parameters(config)
    with step("write effective config"):
        path = outputs.write_json_atomic(
            outputs.effective_config_path(config.results_root), config.to_json_dict()
        )
        log.info("effective config: %s", path)
    result = ProcessResult()
    with step("validate"):
        report = validate(config)
        write_report(config, report)
    if report.fatal or (config.validate_only and report.has_errors):
        result.validation_failed = True
        result.notes.append(f"validation failed: {len(report.fatal) or 'no fatal'} fatal error(s)")
        for check in report.fatal:
            log.error("%s: %s", check.name, check.message)
        return result
    if config.validate_only:
        result.notes.append("validate-only: every check passed; nothing was run")
        return result
    manifest = report.manifest
    assert manifest is not None  # guaranteed when validation has no fatal error
    mouse = outputs.mouse_dir(config.results_root, manifest.mouse_id)
    write_manifest(manifest, outputs.manifest_copy_path(config.results_root))
    excluded = {int(k): v for k, v in report.errors_for("row").items()}
    rows = {row.line for row in manifest.rows}
    for line, reason in sorted(excluded.items()):
        if line not in rows:
            result.items.append(ItemResult(f"manifest line {line}", "failed", reason))
    manifest_path = config.manifest or manifest.path
    histology_error = "; ".join(report.errors_for("histology").values())
    state = RunState(mouse)
    mode = executor_mode(config)
    tasks = plan(config, manifest)
    probe_errors = report.errors_for("probe")
    for phase in sorted({t.phase for t in tasks}):
        phase_tasks = [t for t in tasks if t.phase == phase]
        n_threads = max(1, config.effective_n_jobs // len(phase_tasks))
        jobs = [
            Job(config, manifest_path, t, excluded, histology_error, probe_errors, n_threads)
            for t in phase_tasks
        ]
        with step(f"phase {phase}: {', '.join(j.task.key for j in jobs)} ({mode})"):
            for _, items in execute(run_task, jobs, mode, config.effective_n_jobs):
                for item in items:
                    _record(state, item, mouse)
                    result.items.append(item)
    with step("datapackage and provenance"):
        package_and_provenance(report.context, manifest, result, state)
    result.items.sort(key=lambda item: item.name)
    if config.skip_ephys:
        result.notes.append("ephys skipped (skip_ephys)")
    for note in result.notes:
        log.warning("%s", note)
    write_run_report(config, manifest.mouse_id, result, time.perf_counter() - t0_s)
    with step("results README"):
        guide = write_results_readme(config.results_root, [manifest.mouse_id])
        log.info("results guide: %s", guide)
    summarize(result, mouse)
    log.info("run finished in %.2f s", time.perf_counter() - t0_s)
    return result


def package_and_provenance(
    ctx,
    manifest,
    result: ProcessResult,
    state: RunState,
) -> None:
    """``datapackage.json`` from what succeeded, then ``processing.json`` (aind-data-schema).

    ``ctx`` is the mouse context validation already discovered (no fatal error means it exists).
    Each stage appears once in ``processing.json``, failed when one of its items failed, with
    the time span of the runs that made its current outputs (so an unchanged re-run rewrites
    neither file).
    """
    from .stages.datapackage import PackageError
    from .stages.histology import HistologyResult
    from .stages.package import write_datapackage
    from .stages.probes import plan_tracks
    from .stages.provenance import write_processing

    config = ctx.config
    done = {item.name for item in result.items if item.status in ("ok", "skipped")}
    tracks = plan_tracks(config, manifest)
    for res in tracks:  # success keyed by (track, shank): the row's own item
        if res.status == "ok" and f"track {res.name}" not in done:
            res.status = "failed"
    histology = HistologyResult(status="ok" if "histology" in done else "failed")
    ephys_dirs = None
    if not config.skip_ephys:
        from .stages.ephys import plan_ephys

        ephys_dirs = {
            (j.recording_id, j.collection): outputs.probe_dir(
                config.results_root, manifest.mouse_id, j.recording_id, j.collection
            )
            if f"ephys {j.name}" in done
            else None
            for j in plan_ephys(manifest)
        }
    start = _now_iso()
    mouse = outputs.mouse_dir(config.results_root, manifest.mouse_id)
    try:
        package = write_datapackage(ctx, tracks, histology, ephys_dirs)
        result.notes += package.warnings
        span = (start, _now_iso())
        if state.unchanged("datapackage", "", config.data_root, mouse):
            span = state.span("datapackage")  # same bytes as the run that wrote it
        else:
            state.record("datapackage", "", {}, [package.path], mouse, span)
        result.items.append(ItemResult("datapackage", "ok", span=span))
    except (PackageError, InputError, ValueError) as exc:
        state.forget("datapackage")
        span = (start, _now_iso())
        result.items.append(ItemResult("datapackage", "failed", str(exc), span=span))
    write_processing(config, manifest.mouse_id, stage_runs(result.items, config.data_root))


STAGE_OF = {
    "histology": "histology",
    "ephys": "ephys",
    "track": "tracks",
    "datapackage": "packaging",
}


def stage_runs(items: list[ItemResult], data_root: Path) -> list:
    """One provenance entry per stage: the span of its items' runs, failed if one failed, and
    the data assets (top folders of the data root) its items actually read."""
    from .stages.provenance import StageRun

    by_stage: dict[str, list[ItemResult]] = {}
    for item in items:
        stage = STAGE_OF.get(item.name.split(" ", 1)[0])
        if stage is not None and all(item.span):
            by_stage.setdefault(stage, []).append(item)
    runs = []
    for stage, members in sorted(by_stage.items()):
        failed = [i for i in members if i.status == "failed"]
        notes = "; ".join(f"{i.name}: {i.reason}" for i in failed)[:2000] or None
        assets = sorted({key.split(":", 2)[2].split("/")[0] for i in members for key in i.inputs})
        runs.append(
            StageRun(
                stage,
                datetime.fromisoformat(min(i.span[0] for i in members)),
                datetime.fromisoformat(max(i.span[1] for i in members)),
                status="failed" if failed else "ok",
                notes=f"failed: {notes}" if notes else None,
                input_data=tuple((a, (data_root / a).as_uri()) for a in assets),
            )
        )
    return runs


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _record(state: RunState, item: ItemResult, mouse: Path) -> None:
    if item.status == "ok":
        files = [mouse / f for f in item.files]
        state.record(item.name, item.fingerprint, item.inputs, files, mouse, item.span)
    elif item.status == "failed":
        state.forget(item.name)


def write_run_report(
    config: PipelineConfig, mouse_id: str, result: ProcessResult, seconds: float
) -> Path:
    """``<mouse>/run_report.json``: every item with its status, reason and wall time."""
    report = {
        "mouse_id": mouse_id,
        "wall_s": round(seconds, 3),
        "executor": executor_mode(config),
        "n_jobs": config.effective_n_jobs,
        "counts": {
            s: sum(i.status == s for i in result.items) for s in ("ok", "skipped", "failed")
        },
        "items": [{k: v for k, v in asdict(i).items() if k != "inputs"} for i in result.items],
        "notes": result.notes,
    }
    path = outputs.mouse_dir(config.results_root, mouse_id) / "run_report.json"
    return outputs.write_bytes_atomic(path, outputs.json_bytes(report))


def summarize(result: ProcessResult, where: object) -> None:
    """One line per item, then the totals and where the outputs are."""
    width = max((len(item.name) for item in result.items), default=10)
    lines = [f"{item.name:<{width}}  {item.status:<7} {item.reason}" for item in result.items]
    n_ok = sum(item.status == "ok" for item in result.items)
    n_skip = sum(item.status == "skipped" for item in result.items)
    lines.append(f"{n_ok} ok, {n_skip} unchanged, {len(result.failed)} failed; outputs in {where}")
    log.info("summary:\n%s", "\n".join(lines))


async def run_pipeline_async(config: PipelineConfig) -> ProcessResult:
    """The same run, awaitable (the plan is identical; see :func:`run_pipeline`)."""
    return await asyncio.to_thread(run_pipeline, config)
