"""What runs inside an executor: one task -> its items, each fingerprinted and skippable.

A task is picklable (config + manifest path + which task) and re-discovers what it needs, so it
runs the same in this process, a spawned worker or an asyncio thread.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from . import outputs
from .config import PipelineConfig
from .errors import InputError
from .logs import configure_logging
from .state import FileDigests, RunState, fingerprint

Status = Literal["ok", "failed", "skipped"]
UNCHANGED = "unchanged since the last run"
EPHYS_CONTENT_LIMIT_BYTES = 16 << 20  # bulk raw/sorted data: size + mtime, not content


@dataclass(frozen=True)
class ItemResult:
    """Outcome of one planned item (a mouse's histology, a track, a probe's ephys)."""

    name: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    fingerprint: str = ""
    files: tuple[str, ...] = ()  # relative to the mouse folder


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


def run_task(job: Job) -> list[ItemResult]:
    """Run one task in whatever process or thread the executor chose."""
    from .inputs.manifest import read_manifest
    from .stages.context import MouseContext

    configure_logging(job.config.log_level)  # spawned workers start without handlers
    manifest = read_manifest(job.manifest_path)
    state = RunState(outputs.mouse_dir(job.config.results_root, manifest.mouse_id))
    try:
        if job.task.kind == "ephys":
            return [_ephys_item(job, manifest, state)]
        ctx = MouseContext.prepare(job.config, manifest)
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
    inputs = {}
    for folder in (
        cfg.data_root / probe_job.sorted_recording,
        cfg.data_root / probe_job.recording_id,
    ):
        if folder.exists():
            inputs[folder.name] = state.digests.tree(folder, EPHYS_CONTENT_LIMIT_BYTES)
    params = {"ephys": asdict(settings), "job": asdict(probe_job)}
    fp = fingerprint(params, inputs)
    mouse = outputs.mouse_dir(cfg.results_root, manifest.mouse_id)
    if state.is_done(name, fp, mouse):
        return ItemResult(name, "skipped", UNCHANGED, fingerprint=fp)
    res = extract_probe(probe_job, cfg.data_root, cfg.results_root, settings, job.n_threads)
    files = tuple(str(Path(p).relative_to(mouse)) for p in res.files)
    # no_spikes (no analyzer: channels and QC only) is a failed item: the manifest asked for units
    status: Status = "ok" if res.status == "ok" else "failed"
    return ItemResult(name, status, res.reason, res.seconds, fp, files)


def _context_inputs(ctx, digests: FileDigests) -> dict[str, str]:
    """Digests of what every item of the mouse depends on: transforms, image geometry."""
    ms = ctx.multiscale
    files = {str(p): digests.file(p) for p in ctx.to_ccf.files}
    for name in ("metadata.nd.json", "processing.json"):
        files[name] = digests.file(ctx.asset.path / name)
    files["zattrs"] = digests.file(ms.path / ".zattrs")
    files["level0"] = digests.file(ms.path / ms.levels[0].path / ".zarray")
    return files


def _histology_item(ctx, state: RunState, validation_error: str) -> ItemResult:
    from .stages.histology import run_histology

    name, cfg = "histology", ctx.config
    if validation_error:
        return ItemResult(name, "failed", f"validation: {validation_error}")
    refs = cfg.references
    inputs = _context_inputs(ctx, state.digests)
    for path in (refs.ccf_template, refs.ccf_labels_compact, refs.ccf_labels_unique_values):
        inputs[str(path)] = state.digests.file(path)
    for r in (ctx.asset.ls_to_template, ctx.template_to_ccf.registration):
        if r.warp is not None:
            inputs[str(r.warp)] = state.digests.file(r.warp)
    level = ctx.multiscale.choose_level(cfg.histology.desired_voxel_size_um)
    for channel, zarr_path in ctx.asset.channels.items():
        inputs[channel] = state.digests.tree(zarr_path / level.path)
    params = {"histology": cfg.histology.model_dump(mode="json")}
    fp = fingerprint(params, inputs)
    mouse = outputs.mouse_dir(cfg.results_root, ctx.mouse_id)
    if state.is_done(name, fp, mouse):
        return ItemResult(name, "skipped", UNCHANGED, fingerprint=fp)
    t0_s = time.perf_counter()
    hist = run_histology(ctx)
    files = tuple(str(p.relative_to(mouse)) for p in hist.files)
    return ItemResult(
        name,
        "ok" if hist.status == "ok" else "failed",
        hist.reason,
        time.perf_counter() - t0_s,
        fp,
        files,
    )


def _track_items(ctx, manifest, state: RunState, excluded: dict[int, str]) -> list[ItemResult]:
    from .inputs.neuroglancer import find_probe_file
    from .stages.probes import fail_track, log_results, plan_tracks, process_row

    cfg, items = ctx.config, []
    mouse = outputs.mouse_dir(cfg.results_root, ctx.mouse_id)
    shared = _context_inputs(ctx, state.digests)
    results = plan_tracks(cfg, manifest)
    for res in results:
        name = f"track {res.name}"
        if res.status == "ok" and res.row.line in excluded:
            fail_track(cfg, ctx.mouse_id, res, f"validation: {excluded[res.row.line]}")
        if res.status != "ok":
            items.append(ItemResult(name, "failed", res.reason))
            continue
        row = {k: v for k, v in asdict(res.row).items() if k != "line"}
        try:
            annotation = find_probe_file(cfg.data_root, res.row.probe_file)
        except InputError as exc:
            fail_track(cfg, ctx.mouse_id, res, str(exc))
            items.append(ItemResult(name, "failed", res.reason))
            continue
        inputs = {**shared, "annotation": state.digests.file(annotation)}
        params = {"tracks": cfg.tracks.model_dump(mode="json"), "row": row, "suffix": res.suffix}
        if ctx.image_sources is not None:  # picks follow the main state's image placement
            params["image_layers"] = ctx.image_sources.placement_key()
        fp = fingerprint(params, inputs)
        if state.is_done(name, fp, mouse):
            items.append(ItemResult(name, "skipped", UNCHANGED, fingerprint=fp))
            continue
        t0_s = time.perf_counter()
        process_row(ctx, res)
        files = tuple(str(Path(p).relative_to(mouse)) for p in res.files)
        status: Status = "ok" if res.status == "ok" else "failed"
        items.append(ItemResult(name, status, res.reason, time.perf_counter() - t0_s, fp, files))
    log_results(results)
    return items
