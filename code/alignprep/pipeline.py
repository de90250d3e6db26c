"""Plan and run a capsule job. One orchestration for every executor."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Literal

from . import outputs
from .config import ParamLayer, PipelineConfig, available_cpus, build_config
from .errors import ExitCode
from .logs import get_logger, step

log = get_logger("pipeline")

Status = Literal["ok", "failed", "skipped"]
NOT_YET = "the ephys stage is not implemented yet in this release"


@dataclass(frozen=True)
class ItemResult:
    """Outcome of one planned item (a mouse's histology, a track, a probe's ephys, ...)."""

    name: str
    status: Status
    reason: str = ""
    seconds: float = 0.0


@dataclass
class ProcessResult:
    """Outcome of a run: one entry per planned item, plus notes for the user."""

    items: list[ItemResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[ItemResult]:
        """Items that failed."""
        return [item for item in self.items if item.status == "failed"]

    def exit_code(self, allow_partial: bool) -> ExitCode:
        """0 when nothing failed (or failures are allowed and something succeeded), else 1."""
        if not self.failed:
            return ExitCode.OK
        if allow_partial and any(item.status == "ok" for item in self.items):
            return ExitCode.OK
        return ExitCode.RUN_FAILED


def log_parameters(config: PipelineConfig) -> None:
    """The parameter dump at the start of a run, and the effective worker count."""
    log.info("parameters:\n%s", json.dumps(config.to_json_dict(), indent=2, sort_keys=True))
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
        dataset = build_dataset(root, SyntheticSpec())
    log.info("demo dataset: %s (ground truth: %s)", dataset.data_root, dataset.truth_path)
    values = config.to_json_dict()
    values.pop("effective")
    values.pop("references")  # the demo's own: params.json defaults under the demo data root
    values.update(data_root=str(dataset.data_root), neuroglancer=None, manifest=None)
    return build_config([ParamLayer("--demo", values)])


def run_pipeline(config: PipelineConfig) -> ProcessResult:
    """Run a whole capsule job described by ``config``."""
    from .errors import InputError
    from .inputs.locate import single_top_level_file
    from .inputs.manifest import read_manifest, write_manifest
    from .stages.context import MouseContext
    from .stages.histology import run_histology
    from .stages.probes import run_probes

    t0_s = time.perf_counter()
    if config.demo:
        config = demo_config(config)
    log_parameters(config)
    with step("write effective config"):
        path = outputs.write_json_atomic(
            outputs.effective_config_path(config.results_root), config.to_json_dict()
        )
        log.info("effective config: %s", path)
    result = ProcessResult()
    with step("read manifest"):
        manifest_path = config.manifest or single_top_level_file(
            config.data_root, "*.csv", "manifest"
        )
        manifest = read_manifest(manifest_path)
        for problem in manifest.problems:
            result.items.append(
                ItemResult(f"manifest line {problem.line}", "failed", problem.message)
            )
        for warning in manifest.warnings:
            log.warning("%s: %s", manifest_path, warning)
        write_manifest(manifest, outputs.manifest_copy_path(config.results_root))
    with step("mouse context"):
        try:
            ctx = MouseContext.prepare(config, manifest)
        except (InputError, ValueError) as exc:
            ctx, context_error = None, exc
    with step("probe tracks"):
        for track in run_probes(config, manifest, ctx):
            status: Status = "ok" if track.status == "ok" else "failed"
            result.items.append(ItemResult(f"track {track.name}", status, track.reason))
    with step("histology"):
        if ctx is None:
            reason = f"mouse-level input: {context_error}"
            result.items.append(ItemResult(f"histology {manifest.mouse_id}", "failed", reason))
        else:
            hist = run_histology(ctx)
            status = "ok" if hist.status == "ok" else "failed"
            result.items.append(ItemResult(f"histology {manifest.mouse_id}", status, hist.reason))
    result.notes.append(NOT_YET)
    for note in result.notes:
        log.warning("%s", note)
    summarize(result, outputs.mouse_dir(config.results_root, manifest.mouse_id))
    log.info("run finished in %.2f s", time.perf_counter() - t0_s)
    return result


def summarize(result: ProcessResult, where: object) -> None:
    """One line per item, then the totals and where the outputs are."""
    width = max((len(item.name) for item in result.items), default=10)
    lines = [f"{item.name:<{width}}  {item.status:<7} {item.reason}" for item in result.items]
    n_ok = sum(item.status == "ok" for item in result.items)
    lines.append(f"{n_ok} ok, {len(result.failed)} failed; outputs in {where}")
    log.info("summary:\n%s", "\n".join(lines))


async def run_pipeline_async(config: PipelineConfig) -> ProcessResult:
    """The same run, awaitable (the plan is identical; see :func:`run_pipeline`)."""
    return await asyncio.to_thread(run_pipeline, config)
