"""Run a capsule job: validate every mouse, build one plan, run it on one executor, report.

Order: the roots are checked before anything is written; the results root is locked; the
log file opens; validation (the stages' own checks) builds what the plan needs; phase 0 runs
every mouse's histology and every probe folder's ephys, phase 1 the tracks (their suffixes
from the channel tables phase 0 wrote), phase 2 each probe folder's channel regions (from its
picks and channel table; failed with the reason when its ephys failed), phase 3 the QC
figures (each as soon as what it draws exists). One executor (serial,
process pool, asyncio or Dask) serves the whole run. Each mouse gets its own datapackage,
provenance and run report; a mouse that fails never stops the others.
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import ExitStack

from threadpoolctl import threadpool_limits

from .. import outputs
from ..config import ParamLayer, PipelineConfig, available_cpus, build_config
from ..gcpause import paused
from ..logs import attach_log_file, get_logger, step
from ..work import QcWork, StageResult, Status, Work
from .executors import Executor, Mode, open_executor, start_executor
from .lock import results_lock
from .plan import MousePlan, Plan, build_plan
from .report import (
    ProcessResult,
    failed_result,
    package_mouse,
    qc_documents,
    record,
    summarize,
    write_run_report,
)
from .schedule import Schedule
from .state import RunState
from .tasks import Envelope, stage_modules, warm_up

log = get_logger("orchestration")


def log_parameters(config: PipelineConfig) -> None:
    """The parameter dump (DEBUG) and the effective worker count."""
    log.debug("parameters:\n%s", json.dumps(config.to_json_dict(), indent=2, sort_keys=True))
    log.info(
        "n_jobs: requested %s -> effective %d (cores available: %d); executor %s",
        config.n_jobs,
        config.effective_n_jobs,
        available_cpus(),
        executor_mode(config),
    )


def demo_config(config: PipelineConfig) -> PipelineConfig:
    """Build the synthetic demo dataset of ``config.demo`` in scratch (or reuse the one an
    earlier demo built there with the same code) and point the inputs at it."""
    from ..synthetic import SyntheticSpec, build_or_reuse
    from ..synthetic.ccf_dataset import build_or_reuse_ccf

    with step(f"synthetic demo dataset ({config.demo})"):
        if config.demo == "ccf":  # no light-sheet data: tracing tools' tracks in the CCF
            dataset, reused = build_or_reuse_ccf(config.scratch_root / "demo_ccf_dataset")
        else:
            root = config.scratch_root / "demo_dataset"
            dataset, reused = build_or_reuse(root, SyntheticSpec(ephys_preset="test"))
    how = "reused, built earlier by this code" if reused else "built"
    log.info("demo dataset %s: %s (ground truth: %s)", how, dataset.data_root, dataset.truth_path)
    values = config.to_json_dict()
    values.pop("effective")
    values.pop("references")  # the demo's own: params.json defaults under the demo data root
    values.update(data_root=str(dataset.data_root), neuroglancer=None, manifest=None)
    return build_config([ParamLayer("--demo", values)])


def executor_mode(config: PipelineConfig) -> Mode:
    """``executor``, or with ``auto``: asyncio with ``--async``, a process pool when more than
    one job, else serial; a scheduler address means Dask."""
    if config.executor != "auto":
        return config.executor
    if config.scheduler_address:
        return "dask"
    if config.use_async:
        return "async"
    return "processes" if config.effective_n_jobs > 1 else "serial"


def run_pipeline(config: PipelineConfig) -> ProcessResult:
    """Run a whole capsule job described by ``config``.

    Nothing is written before the roots pass their checks; then the results root is locked for
    this run (a second run on it is refused) and temporary files of interrupted runs are removed.
    """
    t0_s = time.perf_counter()
    mode = executor_mode(config)
    if config.validate_only or config.collect or mode in ("serial", "async"):
        return _checked(config, t0_s, None)
    # the workers (and their imports) start now, while the roots are checked and validated
    with start_executor(
        mode, config.effective_n_jobs, warm_up, config.scheduler_address
    ) as executor:
        return _checked(config, t0_s, executor)


def _checked(config: PipelineConfig, t0_s: float, executor: Executor | None) -> ProcessResult:
    """The roots checked, the results root locked, then the run or the collection."""
    with paused():  # validation's libraries, imported while the executor starts (see gcpause)
        from ..stages import validate  # noqa: F401
        from ..stages.checks import check_roots

    root_problems = [c for c in check_roots(config) if c.status == "error"]
    if root_problems:
        result = ProcessResult(validation_failed=True)
        for check in root_problems:
            log.error("%s: %s", check.name, check.message)
            result.notes.append(f"{check.name}: {check.message}")
        return result
    with results_lock(config.results_root):
        log.info("log file: %s", attach_log_file(outputs.log_path(config.results_root)))
        stale = outputs.remove_stale_temp_files(config.results_root)
        stale += outputs.remove_stale_scratch(config.scratch_root)
        for path in stale:
            log.warning("removed %s, left by an interrupted run", path)
        if config.collect:
            from .collect import collect

            return collect(config, t0_s)
        return _run_locked(config, t0_s, executor)


def _run_locked(config: PipelineConfig, t0_s: float, executor: Executor | None) -> ProcessResult:
    """The run itself, with the results root held (see :func:`run_pipeline`)."""
    if config.demo != "off":
        config = demo_config(config)
    log_parameters(config)
    with step("write effective config"):
        path = outputs.write_json_atomic(
            outputs.effective_config_path(config.results_root), config.to_json_dict()
        )
        log.info("effective config: %s", path)
    return _validated(config, t0_s, executor)


def _validated(config: PipelineConfig, t0_s: float, executor: Executor | None) -> ProcessResult:
    """Validate, plan and run (on ``executor`` when it was started early)."""
    from ..stages.validate import validate, write_report

    with step("validate"):
        report = validate(config)
        write_report(config, report)
    result = ProcessResult()
    if report.fatal or (config.validate_only and report.has_errors):
        result.validation_failed = True
        result.notes.append(f"validation failed: {len(report.fatal) or 'no fatal'} fatal error(s)")
        for check in report.fatal:
            log.error("%s: %s", check.name, check.message)
        return result
    if config.validate_only:
        result.notes.append("validate-only: every check passed; nothing was run")
        return result
    plan = build_plan(config, report)
    write_manifests(config, plan)
    execute(config, plan, result, executor)
    finish(config, plan, result, t0_s)
    return result


def write_manifests(config: PipelineConfig, plan: Plan) -> None:
    """``<results>/manifest.csv``: the rows actually used, of every mouse."""
    from ..inputs.manifest import write_manifests

    write_manifests(
        [m.manifest for m in plan.mice], outputs.manifest_copy_path(config.results_root)
    )


def execute(
    config: PipelineConfig,
    plan: Plan,
    result: ProcessResult,
    started: Executor | None = None,
) -> None:
    """Run every phase of ``plan`` on one executor (``started`` early, or opened here); record
    each result as it arrives."""
    mode = executor_mode(config)
    states = {
        m.mouse_id: RunState(outputs.mouse_dir(config.results_root, m.mouse_id)) for m in plan.mice
    }
    for key, why in plan.stopped.items():  # a mouse id, or a manifest that could not be read
        mouse_id = "" if key.endswith(".csv") else key
        result.items.append(failed_result(f"mouse {key}", mouse_id, "", why))
    for mouse in plan.mice:
        for line, why in sorted(mouse.rejected_rows.items()):
            result.items.append(failed_result(f"manifest line {line}", mouse.mouse_id, "", why))
    with ExitStack() as stack:
        stack.enter_context(threadpool_limits(limits=1))  # BLAS threads as in every worker
        if started is not None:
            executor = started
        else:
            executor = stack.enter_context(
                open_executor(mode, config.effective_n_jobs, config.scheduler_address)
            )
        names = f"{sum(len(m.items) for m in plan.mice)} item(s) of {len(plan.mice)} mouse/mice"
        with step(f"run the plan: {names} ({mode})"):

            def done(env: Envelope, outcome: object) -> StageResult:
                item = outcome_result(config, env, outcome)
                mouse_dir = outputs.mouse_dir(config.results_root, env.work.mouse_id)
                record(states[env.work.mouse_id], item, mouse_dir)
                result.items.append(item)
                log.info("item %s: %s (%.2f s)", item.name, item.status.value, item.seconds)
                return item

            def seconds(mouse: MousePlan, work: Work) -> float | None:  # its last run's
                return states[mouse.mouse_id].seconds(work.name)

            Schedule(config, plan, executor, seconds).run(done)


def outcome_result(config: PipelineConfig, env: Envelope, outcome: object) -> StageResult:
    """The stage result, or a failed one when the worker raised or died (its files removed)."""
    if isinstance(outcome, StageResult):
        return outcome
    stage_modules()[env.work.kind].discard(config, env.work)
    reason = f"worker failed: {type(outcome).__name__}: {outcome}"
    log.error("%s: %s", env.work.name, reason)
    return failed_result(env.work.name, env.work.mouse_id, env.work.kind, reason)


def finish(config: PipelineConfig, plan: Plan, result: ProcessResult, t0_s: float) -> None:
    """Per mouse: datapackage and provenance (not for a slice; a slice with QC items writes
    the QC page), run report and summary."""
    if config.skip_ephys:
        result.notes.append("ephys skipped (skip_ephys)")
    mice = [m.mouse_id for m in plan.mice] + [k for k in plan.stopped if not k.endswith(".csv")]
    for mouse in plan.mice:
        state = RunState(outputs.mouse_dir(config.results_root, mouse.mouse_id))
        if not config.only:
            with step(f"datapackage and provenance of {mouse.mouse_id}"):
                items = result.for_mouse(mouse.mouse_id)
                result.items += package_mouse(config, mouse, items, state)
        elif any(isinstance(w, QcWork) for w in mouse.items):  # a QC slice: its page, no package
            qc_documents(config, mouse, result.for_mouse(mouse.mouse_id), state)
    for note in result.notes:
        log.warning("%s", note)
    mode = executor_mode(config)
    own = {m.mouse_id: track_source_notes(m) for m in plan.mice}
    for mouse_id in mice:
        items = result.for_mouse(mouse_id)
        notes = [*result.notes, *own.get(mouse_id, [])]
        path = write_run_report(config, mouse_id, items, notes, time.perf_counter() - t0_s, mode)
        summarize(items, path.parent)
    unread = [i for i in result.items if not i.mouse_id]
    if unread:
        summarize(unread, config.results_root)
    if mice:
        from ..stages.results_readme import write_results_readme

        with step("results README"):
            log.info("results guide: %s", write_results_readme(config.results_root, mice))
    if len(mice) > 1:
        ok = sum(not any(i.status == Status.FAILED for i in result.for_mouse(m)) for m in mice)
        log.info("%d mouse/mice, %d without a failure", len(mice), ok)
    log.info("run finished in %.2f s", time.perf_counter() - t0_s)


def track_source_notes(mouse: MousePlan) -> list[str]:
    """What the run report says about a mouse whose tracks were traced in the CCF."""
    from ..stages.validate import NO_LIGHT_SHEET

    ctx = mouse.report.context
    if ctx is not None and not ctx.light_sheet:
        return [f"light-sheet data: {NO_LIGHT_SHEET}"]
    rows = [w.row for w in mouse.tracks() if w.row is not None and not w.row.light_sheet]
    if not rows:
        return []
    names = ", ".join(f"{r.histology_track_id} ({r.annotation_format})" for r in rows)
    return [
        f"tracks traced in the CCF with other tools: {names}; they have no image-space picks "
        "(xyz_picks*_image_space.json) for the Allen GUI, which need a track on the mouse's image"
    ]


async def run_pipeline_async(config: PipelineConfig) -> ProcessResult:
    """The same run, awaitable (the plan is identical; see :func:`run_pipeline`)."""
    return await asyncio.to_thread(run_pipeline, config)
