"""What runs inside an executor: one work envelope -> one :class:`~alignprep.work.StageResult`.

An envelope carries the work item, the context it needs (the mouse context prepared once by
validation, pickled without its caches) and what validation said about it. The task skips the
item when the re-run state proves it unchanged (same parameters and code, every input it read
last time unchanged, outputs intact), fails it when validation refused it, and otherwise runs
its stage inside a :func:`alignprep.reads.recording`, so the next run knows exactly what it read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from threadpoolctl import threadpool_limits

from .. import outputs
from ..config import PipelineConfig
from ..logs import configure_logging
from ..reads import Reads, params_fingerprint, recording, replay
from ..work import HistologyCcfWork, RunContext, StageResult, Status, Work
from .state import RunState

UNCHANGED = "unchanged since the last run"


@dataclass(frozen=True)
class Envelope:
    """Everything a worker needs for one item (picklable)."""

    config: PipelineConfig
    context: Any  # MouseContext for histology and tracks; None for ephys
    work: Work
    error: str = ""  # validation's reason to fail it without running
    n_threads: int = 1


def stage_modules() -> dict[str, Any]:
    """Stage kind -> its module: ``run(ctx, work) -> StageResult`` and ``discard(config, work)``."""
    from ..stages import channel_regions, ephys, histology, probes, qc

    return {
        "histology": histology,
        "ephys": ephys,
        "tracks": probes,
        "channel_regions": channel_regions,
        "qc": qc,
    }


#: Libraries the stages import on first use (measured: ~1 s of a cold worker's first ephys item).
WARM_IMPORTS = (
    "aind_ephys_ibl_gui_conversion.ephys",
    "spikeinterface.extractors",
    "neo.io",
    "spikeinterface.curation",
    "fsspec",
    "one.alf.io",
    "nrrd",
    "pandas",
    "scipy.ndimage",
    "zarr",
    "alignprep.qc.registration",  # matplotlib (Agg), for the QC figures
    "alignprep.qc.track_slab",
    "alignprep.qc.atlas_view",
    "alignprep.qc.probe_summary",
)


def warm_up() -> None:
    """Import every stage and the libraries they import on first use and set up numba (what a
    worker's first item would), so that it is ready when work arrives; run by the fork server
    and each worker while the run validates."""
    import importlib

    stage_modules()
    for name in WARM_IMPORTS:
        importlib.import_module(name)
    from ..space.sampling import warm_kernels

    warm_kernels()  # numba's compiler, set up once (in the fork server: once for every worker)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def run_envelope(env: Envelope) -> StageResult:
    """Run one item in whatever process or thread the executor chose."""
    cfg, work = env.config, env.work
    if in_worker():  # a pool or Dask worker: log to the run
        configure_logging(cfg.log_level, outputs.log_path(cfg.results_root))
    mouse = outputs.mouse_dir(cfg.results_root, work.mouse_id)
    state = RunState(mouse)
    fp = params_fingerprint({**work.params(), **stage_params(cfg, work, state)})
    base = {"mouse_id": work.mouse_id, "stage": work.kind, "fingerprint": fp}
    if env.error:
        return StageResult(work.name, Status.FAILED, f"validation: {env.error}", **base)
    try:
        if state.unchanged(work.name, fp, cfg.data_root, mouse):
            inputs = dict(state.items.get(work.name, {}).get("inputs", {}))
            return StageResult(
                work.name, Status.SKIPPED, UNCHANGED, inputs=inputs, span=state.span(work.name),
                **base,
            )  # fmt: skip
        context = env.context if env.context is not None else RunContext(cfg, env.n_threads)
        t0_s, started = time.perf_counter(), _now()
        with recording() as reads, blas_threads(env.n_threads):
            replay(getattr(context, "reads", None) or Reads())
            result = stage_modules()[work.kind].run(context, work)
        return dataclasses.replace(
            result,
            seconds=result.seconds or time.perf_counter() - t0_s,
            inputs=reads.digest(cfg.data_root, state.digests),
            span=(started, _now()),
            **base,
        )
    finally:
        state.digests.save()  # input digests computed here serve the next run


def in_worker() -> bool:
    """Whether this is a worker process (pool or Dask), not the run's own process."""
    return multiprocessing.parent_process() is not None


def blas_threads(n_threads: int) -> AbstractContextManager[object]:
    """BLAS/OpenMP threads of one item: ``n_threads`` in a worker process.

    The same count on every executor (Dask's nanny sets 1, a pool would inherit the machine's)
    makes float sums in the converter give the same bytes everywhere. In the run's own process
    (serial, async) :func:`alignprep.orchestration.run.execute` sets it once for the whole
    plan: a per-item limit there would race between the async executor's threads.
    """
    if not in_worker():
        return contextlib.nullcontext()
    return threadpool_limits(limits=n_threads)


def stage_params(config: PipelineConfig, work: Work, state: RunState) -> dict[str, Any]:
    """The parameters a stage's outputs depend on (part of the re-run fingerprint), and for a
    stage that reads earlier items' outputs, their digests (so it re-runs when they change)."""
    mouse = outputs.mouse_dir(config.results_root, work.mouse_id)
    if isinstance(work, HistologyCcfWork):
        from ..stages.histology_ccf import upstream_files

        files = upstream_files(config, work)
        return {
            "histology": config.histology.model_dump(mode="json"),
            "upstream": {str(f.relative_to(mouse)): state.digests.file(f) for f in files},
        }
    if work.kind == "histology":
        return {"histology": config.histology.model_dump(mode="json")}
    if work.kind == "tracks":
        return {"tracks": config.tracks.model_dump(mode="json")}
    if work.kind == "ephys":
        from ..stages.ephys import EphysSettings

        return {"ephys": dataclasses.asdict(EphysSettings.from_config(config))}
    if work.kind == "channel_regions":
        from ..stages.channel_regions import upstream_files as regions_upstream

        files = regions_upstream(config, work)  # type: ignore[arg-type]
        return {"upstream": {str(f.relative_to(mouse)): state.digests.file(f) for f in files}}
    if work.kind == "qc":
        from ..stages.qc import upstream_files as qc_upstream

        files = qc_upstream(config, work)  # type: ignore[arg-type]
        return {"upstream": {str(f.relative_to(mouse)): state.digests.file(f) for f in files}}
    return {}
