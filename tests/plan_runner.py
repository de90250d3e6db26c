"""Run slices of the real plan through the real executor, and read the outputs back.

Stage tests used to call the stages through side doors that production never used. These
helpers build the plan with :func:`alignprep.orchestration.plan.plan_mouse` (the function
validation's plan uses), run it with :func:`alignprep.orchestration.run.execute`, and read each
track's points back from the files it wrote, so a test sees exactly what a user gets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alignprep import outputs
from alignprep.config import PipelineConfig
from alignprep.errors import InputError
from alignprep.inputs.manifest import Manifest, ManifestRow, read_manifest
from alignprep.orchestration.plan import Plan, plan_mouse
from alignprep.orchestration.report import ProcessResult
from alignprep.orchestration.run import execute
from alignprep.stages.context import MouseContext
from alignprep.stages.probes import compute_tracks
from alignprep.stages.validate import MouseReport
from alignprep.work import ComputedTrack, EphysWork, StageResult


@dataclass
class TrackOutcome:
    """One track as the run left it: status, reason, files and the points it wrote."""

    row: ManifestRow
    suffix: str
    status: str
    reason: str
    files: list[Path] = field(default_factory=list)
    points: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        r = self.row
        return f"{r.recording_id}/{r.ephys_collection}/{r.histology_track_id}{self.suffix}"


def read_fcsv(path: Path) -> np.ndarray:
    """The points of a 3D Slicer FCSV (x, y, z columns)."""
    rows = [ln.split(",") for ln in path.read_text().splitlines() if not ln.startswith("#")]
    return np.array([[float(v) for v in r[1:4]] for r in rows])


def written_points(config: PipelineConfig, mouse_id: str, row: ManifestRow, suffix: str) -> dict:
    """Every frame of a track, read back from the files the track stage wrote."""
    paths = outputs.track_paths(config.results_root, mouse_id, row.histology_track_id, suffix)
    return {
        "spim_lps_mm": read_fcsv(paths["spim_fcsv"]),
        "template_lps_mm": read_fcsv(paths["template_fcsv"]),
        "ccf_lps_mm": read_fcsv(paths["ccf_fcsv"]),
        "ccf_um": np.array(json.loads(paths["ccf_um"].read_text())["ccf_mlapdv_um"]),
        "image_ras_um": np.array(json.loads(paths["image_space"].read_text())["xyz_picks"]),
        "bregma_um": np.array(json.loads(paths["bregma"].read_text())["xyz_picks"]),
    }


def run_plan(
    config: PipelineConfig, manifest: Manifest | None = None
) -> tuple[Plan, ProcessResult]:
    """Prepare the mouse, plan it and execute the plan (no validation, no packaging).

    An ephys-only slice needs no mouse context (ephys data roots have no SmartSPIM asset).
    """
    manifest = manifest or read_manifest(config.data_root / "manifest.csv")
    plan = Plan()
    ctx = None
    if config.only != ("ephys",):
        try:
            ctx = MouseContext.prepare(config, manifest)
        except (InputError, ValueError) as exc:
            plan.stopped[manifest.mouse_id] = str(exc)
            ctx = None
    if manifest.mouse_id not in plan.stopped:
        report = MouseReport(manifest.path, manifest, ctx)
        if ctx is not None:  # as validation does: every row at once (a failing row is computed
            # again by its track item, which then fails with the same reason)
            computed = compute_tracks(ctx, list(manifest.rows))
            report.tracks = {k: v for k, v in computed.items() if isinstance(v, ComputedTrack)}
        plan.mice.append(plan_mouse(config, report))
    result = ProcessResult()
    execute(config, plan, result)
    return plan, result


def run_tracks(config: PipelineConfig, manifest: Manifest | None = None) -> dict[str, TrackOutcome]:
    """Every track of the manifest through the real plan, keyed by histology track id
    (see :func:`run_track_list` when two rows share one)."""
    return {o.row.histology_track_id: o for o in run_track_list(config, manifest)}


def run_track_list(config: PipelineConfig, manifest: Manifest | None = None) -> list[TrackOutcome]:
    """Every track of the manifest through the real plan, in plan order.

    When the mouse cannot be prepared, every row is reported failed with the mouse's reason.
    """
    config = config.model_copy(update={"only": ("tracks",)})
    manifest = manifest or read_manifest(config.data_root / "manifest.csv")
    plan, result = run_plan(config, manifest)
    mouse = outputs.mouse_dir(config.results_root, manifest.mouse_id)
    if not plan.mice:
        why = plan.stopped[manifest.mouse_id]
        return [TrackOutcome(r, "", "failed", f"mouse-level input: {why}") for r in manifest.rows]
    by_name: dict[str, StageResult] = {item.name: item for item in result.items}
    out = []
    for work in plan.mice[0].tracks():
        assert work.row is not None
        item = by_name[work.name]
        outcome = TrackOutcome(
            work.row,
            work.suffix,
            item.status.value,
            item.reason,
            [mouse / f for f in item.files]
            or [mouse / f for f in _recorded_files(mouse, work.name)],
            warnings=item.warnings,
        )
        if item.status.value in ("ok", "skipped"):  # skipped: unchanged files of an earlier run
            outcome.points = written_points(config, manifest.mouse_id, work.row, work.suffix)
        out.append(outcome)
    return out


@dataclass
class EphysOutcome:
    """One probe folder's ephys as the run left it (``status``: the stage's own word)."""

    job: EphysWork
    status: str
    reason: str
    files: list[Path]
    warnings: list[str]


def run_ephys(config: PipelineConfig, manifest: Manifest | None = None) -> dict[str, EphysOutcome]:
    """Every probe folder's ephys through the real plan, keyed by ephys collection."""
    config = config.model_copy(update={"only": ("ephys",)})
    manifest = manifest or read_manifest(config.data_root / "manifest.csv")
    plan, result = run_plan(config, manifest)
    mouse = outputs.mouse_dir(config.results_root, manifest.mouse_id)
    by_name = {item.name: item for item in result.items}
    out = {}
    for work in plan.mice[0].phase(0):
        assert isinstance(work, EphysWork)
        item = by_name[work.name]
        out[work.collection] = EphysOutcome(
            work,
            item.detail or item.status.value,
            item.reason,
            [mouse / f for f in item.files],
            list(item.warnings),
        )
    return out


def _recorded_files(mouse: Path, name: str) -> list[str]:
    """The outputs the re-run state recorded for an item (a skipped item wrote nothing now)."""
    from alignprep.orchestration.state import RunState

    return list(RunState(mouse).items.get(name, {}).get("outputs", {}))
