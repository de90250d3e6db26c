"""``--collect``: merge the results folders of slice runs (``--only``) into one run.

A Code Ocean pipeline fans the plan out (one capsule per mouse's histology, per probe's ephys,
per mouse's tracks) and then collects: every output file and every re-run state entry of the
slices is merged into ``results_root`` (two slices that wrote the same path must have written
the same bytes), then the mouse is validated, its QC figures are drawn from the merged outputs
(when no slice drew them), and it is packaged exactly as a one-capsule run would package it,
from the merged state: the products and ``datapackage.json`` are byte-identical to a one-capsule
run; only the run records (reports, provenance times, logs, the QC page and metadata) differ.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..logs import get_logger, step
from ..work import QcWork, StageResult, Status
from .plan import build_plan, resolve_tracks
from .report import ProcessResult, failed_result, record
from .state import RunState
from .tasks import Envelope, run_envelope

log = get_logger("orchestration.collect")

RUN_RECORDS = {
    outputs.VALIDATION_REPORT_NAME,
    outputs.RUN_REPORT_NAME,
    outputs.EFFECTIVE_CONFIG_NAME,
    outputs.LOG_FILE_NAME,
    outputs.LOCK_NAME,
    outputs.RESULTS_README_NAME,  # lists what a folder holds: written again after merging
    "processing.json",
    "datapackage.json",
    outputs.QC_PAGE_NAME,  # the QC page and metadata: written again from the merged results
    outputs.QUALITY_CONTROL_NAME,
    "manifest.csv",
}


def merge_folder(source: Path, results_root: Path) -> int:
    """Copy the products of one slice's results folder; return how many files were new."""
    if not source.is_dir():
        raise InputError("collect: results folder not found", file=source)
    copied = 0
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        rel = path.relative_to(source)
        if (
            path.name in RUN_RECORDS
            or outputs.STATE_DIR in rel.parts
            or outputs.is_temp_name(path.name)
        ):
            continue
        target = results_root / rel
        if target.exists():
            if target.read_bytes() != path.read_bytes():
                raise InputError(
                    f"collect: {rel} differs between {source} and what was already merged; "
                    "two slices wrote the same output differently",
                    file=path,
                )
            continue
        with outputs.atomic_path(target, suffix=path.suffix) as tmp:
            shutil.copy2(path, tmp)
        copied += 1
    for state_file in source.glob(f"*/{outputs.STATE_DIR}/state.json"):
        mouse = state_file.parent.parent.name
        merge_state(json.loads(state_file.read_text()), outputs.mouse_dir(results_root, mouse))
    return copied


def merge_state(items: dict, mouse: Path) -> None:
    """Add a slice's finished items to the mouse's re-run state (same item: same entry)."""
    state = RunState(mouse)
    for name, entry in items.items():
        if name == "datapackage":
            continue
        known = state.items.get(name)
        if known is not None and known.get("outputs") != entry.get("outputs"):
            raise InputError(f"collect: item {name!r} was produced twice, differently", file=mouse)
        state.items[name] = entry
    outputs.write_bytes_atomic(state.path, outputs.json_bytes(state.items))


def _attempt(env: Envelope) -> object:
    try:
        return run_envelope(env)
    except Exception as exc:  # recorded as the item's failure, as an executor would
        return exc


def collect(config: PipelineConfig, t0_s: float) -> ProcessResult:
    """Merge ``config.collect`` into ``results_root``, then package as one run."""
    from ..stages.validate import validate, write_report
    from .run import finish, log_parameters, outcome_result, write_manifests

    log_parameters(config)
    result = ProcessResult()
    with step("merge results folders"):
        for source in config.collect:
            log.info("merged %d file(s) from %s", merge_folder(source, config.results_root), source)
    with step("validate"):
        report = validate(config)
        write_report(config, report)
    if report.fatal:
        result.validation_failed = True
        return result
    plan = build_plan(config, report)
    write_manifests(config, plan)
    for mouse in plan.mice:
        resolve_tracks(config, mouse)
        state = RunState(outputs.mouse_dir(config.results_root, mouse.mouse_id))
        mouse_dir = outputs.mouse_dir(config.results_root, mouse.mouse_id)
        for work in mouse.items:
            entry = state.items.get(work.name)
            if entry is None and isinstance(work, QcWork):  # drawn here, from the merged outputs
                env = Envelope(config, mouse.report.context, work, mouse.errors.get(work.name, ""))
                item = outcome_result(config, env, _attempt(env))
                record(state, item, mouse_dir)
                result.items.append(item)
                continue
            if entry is None:
                result.items.append(
                    failed_result(work.name, mouse.mouse_id, work.kind, "in no collected folder")
                )
                continue
            result.items.append(
                StageResult(
                    work.name,
                    Status.OK,
                    "collected",
                    fingerprint=entry.get("params", ""),
                    files=tuple(sorted(entry.get("outputs", {}))),
                    inputs=dict(entry.get("inputs", {})),
                    span=tuple(entry.get("span") or ("", "")),  # type: ignore[arg-type]
                    mouse_id=mouse.mouse_id,
                    stage=work.kind,
                )
            )
    finish(config, plan, result, t0_s)
    return result
