"""What a run reports: per mouse the datapackage, processing.json and run_report.json, built from
the stage results themselves (nothing is re-planned or fabricated), and a summary in the log."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .. import outputs
from ..config import PipelineConfig
from ..errors import ExitCode, InputError
from ..logs import get_logger
from ..work import ChannelRegionsWork, QcWork, StageResult, Status
from .state import RunState

if TYPE_CHECKING:
    from .plan import MousePlan

log = get_logger("orchestration.report")


@dataclass
class ProcessResult:
    """Outcome of a run: one result per planned item (every mouse), plus notes for the user."""

    items: list[StageResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    validation_failed: bool = False

    @property
    def failed(self) -> list[StageResult]:
        """Items that failed."""
        return [item for item in self.items if item.status == Status.FAILED]

    def for_mouse(self, mouse_id: str) -> list[StageResult]:
        """The results of one mouse."""
        return [item for item in self.items if item.mouse_id == mouse_id]

    def exit_code(self, allow_partial: bool) -> ExitCode:
        """3 on failed validation; 0 when nothing failed (or partial is allowed); else 1."""
        if self.validation_failed:
            return ExitCode.VALIDATION_FAILED
        if not self.failed:
            return ExitCode.OK
        if allow_partial and any(item.status != Status.FAILED for item in self.items):
            return ExitCode.OK
        return ExitCode.RUN_FAILED


def failed_result(name: str, mouse_id: str, stage: str, reason: str) -> StageResult:
    """A failed item (validation refused it, its worker died, its mouse stopped)."""
    return StageResult(name, Status.FAILED, reason, mouse_id=mouse_id, stage=stage)


def record(state: RunState, item: StageResult, mouse: Path) -> None:
    """Remember a finished item in the re-run state; forget a failed one."""
    if item.status == Status.OK:
        files = [mouse / f for f in item.files]
        state.record(item.name, item.fingerprint, item.inputs, files, mouse, item.span)
    elif item.status == Status.FAILED:
        state.forget(item.name)


def package_mouse(
    config: PipelineConfig, plan: MousePlan, results: list[StageResult], state: RunState
) -> list[StageResult]:
    """``datapackage.json`` from what succeeded, then ``processing.json``; returns the
    datapackage item. Each stage appears once in ``processing.json``, failed when one of its
    items failed, with the span of the runs that made its current outputs."""
    from ..stages.datapackage import PackageError
    from ..stages.histology import HistologyResult
    from ..stages.package import write_datapackage
    from ..stages.probes import TrackResult
    from ..stages.provenance import write_processing

    ctx = plan.report.context
    assert ctx is not None
    done = {r.name for r in results if r.status in (Status.OK, Status.SKIPPED)}
    tracks = []
    for work in plan.tracks():
        assert work.row is not None
        status = "ok" if work.name in done else "failed"
        tracks.append(TrackResult(work.row, status, suffix=work.suffix))
    parts = [w.name for w in plan.phase(0) if w.kind == "histology"]
    histology_ok = not ctx.light_sheet or (parts and set(parts) <= done)  # none to wait for
    histology = HistologyResult(status="ok" if histology_ok else "failed")
    ephys_dirs = None
    if not config.skip_ephys:
        from ..stages.ephys import plan_ephys

        ephys_dirs = {
            (j.recording_id, j.collection): outputs.probe_dir(
                config.results_root, plan.mouse_id, j.recording_id, j.collection
            )
            if j.name in done
            else None
            for j in plan_ephys(plan.manifest)
        }
    regions = [
        (w.recording_id, w.collection)
        for w in plan.phase(2)
        if isinstance(w, ChannelRegionsWork) and w.name in done
    ]
    mouse = outputs.mouse_dir(config.results_root, plan.mouse_id)
    start = _now()
    qc_files = qc_documents(config, plan, results, state)
    try:
        package = write_datapackage(ctx, tracks, histology, ephys_dirs, regions, qc_files)
        span = (start, _now())
        if state.unchanged("datapackage", "", config.data_root, mouse):
            span = state.span("datapackage")  # same bytes as the run that wrote it
        else:
            state.record("datapackage", "", {}, [package.path], mouse, span)
        item = StageResult(
            "datapackage",
            Status.OK,
            span=span,
            warnings=tuple(package.warnings),
            mouse_id=plan.mouse_id,
            stage="packaging",
        )
    except (PackageError, InputError, ValueError) as exc:
        state.forget("datapackage")
        item = StageResult(
            "datapackage",
            Status.FAILED,
            str(exc),
            span=(start, _now()),
            mouse_id=plan.mouse_id,
            stage="packaging",
        )
    write_processing(config, plan.mouse_id, stage_runs([*results, item], config.data_root))
    return [item]


def qc_documents(
    config: PipelineConfig, plan: MousePlan, results: list[StageResult], state: RunState
) -> list[Path]:
    """The QC page and metadata when the mouse's QC figures exist (this run's or an earlier
    unchanged run's); their statuses are dated by the latest start of the items that drew them."""
    from ..stages.qc_documents import write_qc_documents

    done = {r.name: r for r in results if r.status in (Status.OK, Status.SKIPPED)}
    items = [w for w in plan.items if isinstance(w, QcWork) and w.name in done]
    if not items:
        return []
    starts = [state.span(w.name)[0] for w in items]
    started = max((s for s in starts if s), default="") or _now()  # the latest drawing
    order = {w.name: n for n, w in enumerate(plan.items)}  # the plan's, not the finishing order
    ordered = sorted(results, key=lambda r: (order.get(r.name, -1), r.name))
    shown = [_as_made(r, state) for r in ordered]
    return write_qc_documents(config, items, shown, datetime.fromisoformat(started))


def _as_made(item: StageResult, state: RunState) -> StageResult:
    """An item as the run that made its outputs saw it: an unchanged one is shown ok, and every
    time is the span recorded with the outputs, so a re-run that changed nothing writes the
    same page."""
    start, end = item.span if all(item.span) else state.span(item.name)
    seconds = item.seconds
    if start and end:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    if item.status != Status.SKIPPED:
        return replace(item, seconds=seconds)
    return replace(item, status=Status.OK, reason="", seconds=seconds)


def stage_runs(items: list[StageResult], data_root: Path) -> list:
    """One provenance entry per stage: the span of its items' runs, failed if one failed, and
    the data assets (top folders of the data root) its items actually read."""
    from ..stages.provenance import StageRun

    by_stage: dict[str, list[StageResult]] = {}
    for item in items:
        stage = item.stage  # a work kind is its provenance stage (stages.provenance.STAGES)
        if stage and all(item.span):
            by_stage.setdefault(stage, []).append(item)
    runs = []
    for stage, members in sorted(by_stage.items()):
        failed = [i for i in members if i.status == Status.FAILED]
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


def write_run_report(
    config: PipelineConfig,
    mouse_id: str,
    items: list[StageResult],
    notes: list[str],
    seconds: float,
    executor: str,
) -> Path:
    """``<mouse>/run_report.json``: every item with its status, reason and wall time."""
    report = {
        "mouse_id": mouse_id,
        "wall_s": round(seconds, 3),
        "executor": executor,
        "n_jobs": config.effective_n_jobs,
        "only": list(config.only),
        "counts": {s.value: sum(i.status == s for i in items) for s in Status},
        "items": [
            {
                k: v
                for k, v in asdict(i).items()
                if k not in ("inputs", "mouse_id", "warnings", "stage")
            }
            for i in sorted(items, key=lambda i: i.name)
        ],
        "notes": notes,
    }
    path = outputs.run_report_path(config.results_root, mouse_id)
    return outputs.write_bytes_atomic(path, outputs.json_bytes(report))


def summarize(items: list[StageResult], where: object) -> None:
    """One line per item, then the totals and where the outputs are."""
    width = max((len(item.name) for item in items), default=10)
    lines = [f"{item.name:<{width}}  {item.status.value:<7} {item.reason}" for item in items]
    n_ok = sum(item.status == Status.OK for item in items)
    n_skip = sum(item.status == Status.SKIPPED for item in items)
    n_failed = sum(item.status == Status.FAILED for item in items)
    lines.append(f"{n_ok} ok, {n_skip} unchanged, {n_failed} failed; outputs in {where}")
    log.info("summary:\n%s", "\n".join(lines))


def _now() -> str:
    return datetime.now(UTC).isoformat()
