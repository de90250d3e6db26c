"""What runs inside an executor: one task -> its items, each fingerprinted and skippable.

A task is picklable (config + manifest path + which task) and re-discovers what it needs, so it
runs the same in this process, a spawned worker or an asyncio thread. Each item runs inside a
:func:`alignprep.reads.recording`: what it read is stored with its outputs, and the next run skips
it only when its parameters, its code and every one of those inputs are unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from . import outputs
from .config import PipelineConfig
from .errors import InputError
from .logs import LOG_FILE_NAME, configure_logging, progress
from .reads import Reads, params_fingerprint, recording, replay
from .state import RunState

Status = Literal["ok", "failed", "skipped"]
UNCHANGED = "unchanged since the last run"


@dataclass(frozen=True)
class ItemResult:
    """Outcome of one planned item (a mouse's histology, a track, a probe's ephys)."""

    name: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    fingerprint: str = ""  # of the parameters and code (reads.params_fingerprint)
    files: tuple[str, ...] = ()  # relative to the mouse folder
    inputs: dict[str, str] = field(default_factory=dict)  # what it read -> digest
    span: tuple[str, str] = ("", "")  # ISO start and end of the run that made its outputs


@dataclass(frozen=True)
class Task:
    """A unit of scheduling: produces one or more items."""

    key: str
    kind: Literal["histology", "ephys", "tracks"]
    phase: int
    probe: str = ""  # "<recording_id>/<ephys_collection>" for ephys tasks


@dataclass(frozen=True)
class Job:
    """Everything a worker needs to run a task (picklable)."""

    config: PipelineConfig
    manifest_path: Path
    task: Task
    excluded: dict[int, str]  # manifest line -> validation error
    histology_error: str = ""
    probe_errors: dict[str, str] | None = None  # probe name -> validation error
    n_threads: int = 1


class _Context:
    """The mouse context, prepared on first use only (skipped items never need it)."""

    def __init__(self, config: PipelineConfig, manifest) -> None:
        self.config, self.manifest = config, manifest
        self._value: tuple[Any, Reads] | None = None

    def get(self) -> tuple[Any, Reads]:
        """``(MouseContext, what preparing it read)``."""
        from .stages.context import MouseContext

        if self._value is None:
            with recording() as reads:
                ctx = MouseContext.prepare(self.config, self.manifest)
            self._value = (ctx, reads)
        return self._value


@contextmanager
def _item_reads(ctx_reads: Reads) -> Iterator[Reads]:
    """Record an item's reads, starting with those of the context it uses."""
    with recording() as reads:
        replay(ctx_reads)
        yield reads


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _skipped(state: RunState, name: str, fp: str) -> ItemResult:
    inputs = dict(state.items.get(name, {}).get("inputs", {}))
    return ItemResult(
        name, "skipped", UNCHANGED, fingerprint=fp, inputs=inputs, span=state.span(name)
    )


def run_task(job: Job) -> list[ItemResult]:
    """Run one task in whatever process or thread the executor chose."""
    from .inputs.manifest import read_manifest

    log_file = job.config.results_root / LOG_FILE_NAME
    configure_logging(job.config.log_level, log_file)  # spawned workers start without handlers
    manifest = read_manifest(job.manifest_path)
    state = RunState(outputs.mouse_dir(job.config.results_root, manifest.mouse_id))
    try:
        if job.task.kind == "ephys":
            return [_ephys_item(job, manifest, state)]
        ctx = _Context(job.config, manifest)
        if job.task.kind == "histology":
            return [_histology_item(ctx, state, job.histology_error)]
        return _track_items(ctx, manifest, state, job.excluded)
    finally:
        state.digests.save()  # input digests computed here serve the next run


def _ephys_item(job: Job, manifest, state: RunState) -> ItemResult:
    from .stages.ephys import EphysSettings, extract_probe, plan_ephys

    cfg = job.config
    probe_job = next(j for j in plan_ephys(manifest) if j.name == job.task.probe)
    name = f"ephys {probe_job.name}"
    error = (job.probe_errors or {}).get(probe_job.name)
    if error:
        return ItemResult(name, "failed", f"validation: {error}")
    settings = EphysSettings.from_config(cfg)
    fp = params_fingerprint({"item": "ephys", "ephys": asdict(settings), "job": asdict(probe_job)})
    mouse = outputs.mouse_dir(cfg.results_root, manifest.mouse_id)
    if state.unchanged(name, fp, cfg.data_root, mouse):
        return _skipped(state, name, fp)
    started = _now()
    with recording() as reads:  # the sorted and raw assets, as discover_probe finds them
        res = extract_probe(probe_job, cfg.data_root, cfg.results_root, settings, job.n_threads)
    files = tuple(str(Path(p).relative_to(mouse)) for p in res.files)
    # no_spikes (no analyzer: channels and QC only) is a failed item: the manifest asked for units
    status: Status = "ok" if res.status == "ok" else "failed"
    inputs = reads.digest(cfg.data_root, state.digests)
    return ItemResult(name, status, res.reason, res.seconds, fp, files, inputs, (started, _now()))


def _histology_item(ctx: _Context, state: RunState, validation_error: str) -> ItemResult:
    from .stages.histology import run_histology

    name, cfg = "histology", ctx.config
    if validation_error:
        return ItemResult(name, "failed", f"validation: {validation_error}")
    fp = params_fingerprint({"item": name, "histology": cfg.histology.model_dump(mode="json")})
    mouse = outputs.mouse_dir(cfg.results_root, ctx.manifest.mouse_id)
    if state.unchanged(name, fp, cfg.data_root, mouse):
        return _skipped(state, name, fp)
    t0_s, started = time.perf_counter(), _now()
    mouse_ctx, ctx_reads = ctx.get()
    with _item_reads(ctx_reads) as reads:
        hist = run_histology(mouse_ctx)
    files = tuple(str(p.relative_to(mouse)) for p in hist.files)
    return ItemResult(
        name,
        "ok" if hist.status == "ok" else "failed",
        hist.reason,
        time.perf_counter() - t0_s,
        fp,
        files,
        reads.digest(cfg.data_root, state.digests),
        (started, _now()),
    )


def _track_items(
    ctx: _Context, manifest, state: RunState, excluded: dict[int, str]
) -> list[ItemResult]:
    from .stages.probes import fail_track, log_results, plan_tracks, process_row

    cfg, items = ctx.config, []
    mouse = outputs.mouse_dir(cfg.results_root, manifest.mouse_id)
    results = plan_tracks(cfg, manifest)
    for res in progress(results, "tracks"):
        name = f"track {res.name}"
        if res.status == "ok" and res.row.line in excluded:
            fail_track(cfg, manifest.mouse_id, res, f"validation: {excluded[res.row.line]}")
        if res.status != "ok":
            items.append(ItemResult(name, "failed", res.reason))
            continue
        row = {k: v for k, v in asdict(res.row).items() if k != "line"}
        params = {"item": "track", "tracks": cfg.tracks.model_dump(mode="json"), "row": row}
        fp = params_fingerprint({**params, "suffix": res.suffix})
        if state.unchanged(name, fp, cfg.data_root, mouse):
            items.append(_skipped(state, name, fp))
            continue
        t0_s, started = time.perf_counter(), _now()
        try:
            mouse_ctx, ctx_reads = ctx.get()
        except (InputError, ValueError, OSError) as exc:
            fail_track(cfg, manifest.mouse_id, res, f"mouse-level input: {exc}")
            items.append(ItemResult(name, "failed", res.reason))
            continue
        with _item_reads(ctx_reads) as reads:
            process_row(mouse_ctx, res)
        files = tuple(str(Path(p).relative_to(mouse)) for p in res.files)
        status: Status = "ok" if res.status == "ok" else "failed"
        seconds = time.perf_counter() - t0_s
        inputs = reads.digest(cfg.data_root, state.digests)
        span = (started, _now())
        items.append(ItemResult(name, status, res.reason, seconds, fp, files, inputs, span))
    log_results(results)
    return items
