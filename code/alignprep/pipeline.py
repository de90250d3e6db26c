"""Plan and run a capsule job. One orchestration for every executor."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Literal

from . import outputs
from .config import PipelineConfig, available_cpus
from .errors import ExitCode
from .logs import get_logger, step

log = get_logger("pipeline")

Status = Literal["ok", "failed", "skipped"]


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


def run_pipeline(config: PipelineConfig) -> ProcessResult:
    """Run a whole capsule job described by ``config``."""
    t0_s = time.perf_counter()
    log_parameters(config)
    with step("write effective config"):
        path = outputs.write_json_atomic(
            outputs.effective_config_path(config.results_root), config.to_json_dict()
        )
        log.info("effective config: %s", path)
    result = ProcessResult()
    # The stages (validation, probe tracks, histology, ephys, packaging) are not part of this
    # release yet; say so instead of pretending to have run them.
    missing = "validation, probe tracks, histology, ephys and packaging stages"
    reason = f"the {missing} are not implemented yet"
    if config.demo:
        result.notes.append(f"demo: the synthetic dataset and {reason}")
    else:
        result.items.append(ItemResult("pipeline", "failed", reason))
    for note in result.notes:
        log.warning("%s", note)
    for item in result.failed:
        log.error("%s failed: %s", item.name, item.reason)
    log.info(
        "run finished in %.2f s: %d item(s), %d failed",
        time.perf_counter() - t0_s,
        len(result.items),
        len(result.failed),
    )
    return result


async def run_pipeline_async(config: PipelineConfig) -> ProcessResult:
    """The same run, awaitable (the plan is identical; see :func:`run_pipeline`)."""
    return await asyncio.to_thread(run_pipeline, config)
