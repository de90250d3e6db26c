"""Probe tracks: Neuroglancer picks -> SPIM -> template -> CCF -> bregma, every frame written.

Per manifest row: the picks in F2 (SPIM native), F5 (template), F6 (CCF) as Slicer FCSV, F7 (CCF
um) JSON, and both GUI pick files (F4 image RAS um for the Allen GUI, F8 IBL bregma um for the IBL
GUI), in ``track_data/`` and in the probe folder. A row traced with another tool
(:mod:`alignprep.inputs.ccf_tracks`) is already in the CCF: it gets the CCF and bregma files
only. One failing row never stops the others; its outputs are removed so nothing partial is left
looking valid.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..inputs import neuroglancer as ng
from ..inputs.ccf_tracks import CcfTrack, TrackHints, find_track_file, reader
from ..inputs.locate import confine
from ..inputs.manifest import Manifest, ManifestRow
from ..inputs.track_checks import MAX_TRACK_MM, MIN_TRACK_MM, check_hemisphere, check_track
from ..logs import get_logger
from ..reads import Reads, recording, replay
from ..space import atlas
from ..space.frames import lps_mm_to_ras_um
from ..work import ComputedTrack, StageResult, Status, TrackWork
from .context import MouseContext
from .shanks import gui_shank_suffixes

log = get_logger("stages.probes")


@dataclass
class TrackResult:
    """Outcome of one manifest row."""

    row: ManifestRow
    status: str  # "ok" | "failed"
    reason: str = ""
    suffix: str = ""
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    points: dict[str, list[list[float]]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """``<recording>/<collection>/<track><suffix>`` for logs and reports."""
        r = self.row
        return f"{r.recording_id}/{r.ephys_collection}/{r.histology_track_id}{self.suffix}"


@dataclass(frozen=True)
class _Picks:
    """One row's picks before the transform chains: file, SPIM and registration-frame points."""

    path: Path
    layer: str
    spim_lps_mm: np.ndarray
    registration_lps_mm: np.ndarray
    warnings: tuple[str, ...]
    hemisphere: str | None = None  # the manifest row's, checked against the CCF picks


def compute_track(ctx: MouseContext, row: ManifestRow) -> tuple[dict[str, np.ndarray], list[str]]:
    """The picks of one row in every frame, and the warnings they raise."""
    outcome = compute_tracks(ctx, [row])[row.line]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome.frames, list(outcome.warnings)


def compute_tracks(
    ctx: MouseContext, rows: list[ManifestRow]
) -> dict[int, ComputedTrack | InputError | ValueError | OSError]:
    """Every row's picks in every frame, by manifest line; a failing row gets its error.

    All rows' points go through each transform chain in one pass, with ANTs's rules on the
    displacement fields decoded once per run (:meth:`MouseContext.map_points`); each point is
    mapped on its own, so the points are the same as row by row.
    """
    outcomes: dict[int, ComputedTrack | InputError | ValueError | OSError] = {}
    picks: dict[int, tuple[_Picks, Reads]] = {}
    for row in rows:
        if not row.light_sheet:
            outcomes[row.line] = _ccf_outcome(ctx, row)
            continue
        try:
            with recording() as reads:
                picks[row.line] = (_picks(ctx, row), reads)
        except (InputError, ValueError, OSError) as exc:
            outcomes[row.line] = exc
    if not picks:
        return outcomes
    with recording() as shared:
        registration = np.concatenate([p.registration_lps_mm for p, _ in picks.values()])
        ccf_all = ctx.map_points(ctx.to_ccf, registration)
        template_all = ctx.map_points(ctx.to_template, registration)
    start = 0
    for line, (p, reads) in picks.items():
        stop = start + len(p.registration_lps_mm)
        try:
            with recording() as own:
                computed = _frames(ctx, p, ccf_all[start:stop], template_all[start:stop])
            own.merge(reads)
            own.merge(shared)
            outcomes[line] = dataclasses.replace(computed, reads=own)
        except InputError as exc:
            outcomes[line] = exc
        start = stop
    return outcomes


def _ccf_outcome(ctx: MouseContext, row: ManifestRow) -> ComputedTrack | InputError | OSError:
    """One tracing tool's track: read, checked, in every CCF frame (no light-sheet frame)."""
    layer = row.histology_track_id
    try:
        with recording() as reads:
            path = find_track_file(ctx.config.data_root, row.probe_file, ctx.mouse_id)
            track = _read_track(confine(path, ctx.config.data_root, "probe_file"), row)
            ccf_um = track.ccf_um[np.argsort(track.ccf_um[:, 2], kind="stable")]  # entry first
            bregma_um, warnings = check_track(ccf_um, path, layer, row.hemisphere)
            frames = {
                "ccf_lps_mm": atlas.ccf_um_to_ccf_lps_mm(ccf_um),
                "ccf_um": ccf_um,
                "bregma_um": bregma_um,
            }
            computed = _checked(ctx, frames, path, layer, [*track.warnings, *warnings])
        return dataclasses.replace(computed, reads=reads)
    except (InputError, OSError) as exc:
        return exc


def _read_track(path: Path, row: ManifestRow) -> CcfTrack:
    """The row's track from its tool's file; a damaged file's numpy / scipy / h5py error is an
    InputError naming it."""
    try:
        return reader(row.annotation_format)(path, row.histology_track_id, TrackHints(row.atlas))
    except ValueError as exc:
        raise InputError(
            f"unreadable as {row.annotation_format}: {exc}", file=path, layer=row.histology_track_id
        ) from None


def _picks(ctx: MouseContext, row: ManifestRow) -> _Picks:
    """One row's Neuroglancer points, checked, in the SPIM and registration frames."""
    cfg = ctx.config
    path = confine(ng.find_probe_file(cfg.data_root, row.probe_file), cfg.data_root, "probe_file")
    state = ng.read_state(path)
    points = ng.track_points(state, row.histology_track_id, path)
    placement = ng.drawn_over(
        state, path, row.histology_track_id, ctx.image_sources, ctx.asset.registration_channel
    )
    spacing0_um = ctx.multiscale.levels[0].spacing_mm_zyx * 1e3
    idx0 = ng.to_level0_index(points, spacing0_um, cfg.tracks.ng_voxel_origin, placement=placement)
    where = {"file": path, "layer": row.histology_track_id}
    outside = ~ctx.native0.contains_index(idx0)
    if outside.any():
        raise InputError(
            f"picks {np.flatnonzero(outside).tolist()} (0-based) lie outside the "
            f"image (level-0 size {ctx.native0.size})",
            **where,
        )
    spim = ctx.native0.index_to_physical(idx0)
    length_mm = float(np.linalg.norm(spim[-1] - spim[0]))
    if not MIN_TRACK_MM <= length_mm <= MAX_TRACK_MM:
        raise InputError(
            f"track length {length_mm:.3f} mm (first to last pick) is outside "
            f"[{MIN_TRACK_MM}, {MAX_TRACK_MM}] mm: check units and scale",
            **where,
        )
    registration = ctx.registration0.index_to_physical(idx0)
    return _Picks(
        path, row.histology_track_id, spim, registration, tuple(points.warnings), row.hemisphere
    )


def _frames(ctx: MouseContext, p: _Picks, ccf: np.ndarray, template: np.ndarray) -> ComputedTrack:
    """Every frame of one row from its mapped points, and the warnings they raise."""
    frames = {
        "spim_lps_mm": p.spim_lps_mm,
        "image_ras_um": lps_mm_to_ras_um(p.spim_lps_mm),
        "template_lps_mm": template,
        "ccf_lps_mm": ccf,
        "ccf_um": atlas.ccf_lps_mm_to_ccf_um(ccf),
        "bregma_um": atlas.ccf_lps_mm_to_bregma_um(ccf),
    }
    warnings = list(p.warnings)
    warnings += check_hemisphere(frames["bregma_um"], p.path, p.layer, p.hemisphere)
    return _checked(ctx, frames, p.path, p.layer, warnings)


def _checked(
    ctx: MouseContext, frames: dict[str, np.ndarray], path: Path, layer: str, warnings: list[str]
) -> ComputedTrack:
    """The checks every track passes in the CCF, whatever its source; its warnings prefixed."""
    bregma = frames["bregma_um"]
    bad = ~atlas.in_allen25_box(bregma)
    if bad.any():
        raise InputError(
            f"picks {np.flatnonzero(bad).tolist()} fall outside the Allen-25 volume "
            f"in bregma coordinates (the IBL GUI fails there)",
            file=path,
            layer=layer,
        )
    warnings = list(warnings)
    if bregma[0, 2] < bregma[-1, 2]:
        warnings.append("the first pick is deeper than the last; picks should go entry -> tip")
    if np.mean(bregma[:, 2] > 0) > 0.5:
        warnings.append("most picks lie above bregma level (z > 0)")
    in_brain = float(np.mean(ctx.labels.ids_at(frames["ccf_lps_mm"]) != 0))
    if in_brain <= 0.5:
        warnings.append(f"only {in_brain:.0%} of the picks fall in labelled brain")
    return ComputedTrack(frames, tuple(f"{path.name}:{layer}: {w}" for w in warnings))


def write_track(
    ctx: MouseContext, row: ManifestRow, suffix: str, frames: dict[str, np.ndarray]
) -> list[Path]:
    """Write every file of one track; the GUI pick files twice, byte-identical."""
    tracks, picks = row_paths(ctx.config, ctx.mouse_id, row, suffix)
    label = f"{row.histology_track_id}{suffix}"

    def fcsv(frame: str) -> bytes:
        return outputs.fcsv_bytes(frames[frame], label) if frame in frames else b""

    def picks_json(frame: str) -> bytes:
        return outputs.json_bytes({"xyz_picks": frames[frame].tolist()}) if frame in frames else b""

    # a tracing tool's track has no light-sheet frame: its image-space files are not written
    content = {
        tracks["spim_fcsv"]: fcsv("spim_lps_mm"),
        tracks["template_fcsv"]: fcsv("template_lps_mm"),
        tracks["ccf_fcsv"]: fcsv("ccf_lps_mm"),
        tracks["ccf_um"]: outputs.json_bytes({"ccf_mlapdv_um": frames["ccf_um"].tolist()}),
        tracks["image_space"]: picks_json("image_ras_um"),
        tracks["bregma"]: picks_json("bregma_um"),
        picks["image_space"]: picks_json("image_ras_um"),
        picks["bregma"]: picks_json("bregma_um"),
    }
    content = {path: data for path, data in content.items() if data}
    written = []
    try:
        for path, data in content.items():
            written.append(outputs.write_bytes_atomic(path, data))
    except BaseException:
        remove_outputs(written)
        raise
    return written


def row_paths(
    config: PipelineConfig, mouse_id: str, row: ManifestRow, suffix: str
) -> tuple[dict[str, Path], dict[str, Path]]:
    """The ``track_data`` copies and the probe-folder pick files of one row."""
    probe = outputs.probe_dir(config.results_root, mouse_id, row.recording_id, row.ephys_collection)
    tracks = outputs.track_paths(config.results_root, mouse_id, row.histology_track_id, suffix)
    return tracks, outputs.picks_paths(probe, suffix)


def row_outputs(config: PipelineConfig, mouse_id: str, row: ManifestRow, suffix: str) -> list[Path]:
    """Every path :func:`write_track` writes for a row."""
    tracks, picks = row_paths(config, mouse_id, row, suffix)
    return [*tracks.values(), *picks.values()]


def remove_outputs(paths: list[Path]) -> None:
    """Remove files (missing ones are fine)."""
    for path in paths:
        Path(path).unlink(missing_ok=True)


def plan_tracks(config: PipelineConfig, manifest: Manifest) -> list[TrackResult]:
    """One pending result per valid row, with its GUI shank suffix; unplannable rows failed."""
    suffixes, suffix_problems = gui_shank_suffixes(config, manifest)
    results = [TrackResult(row, "ok", suffix=suffixes[row.line]) for row in manifest.rows]
    for res in results:
        if res.row.line in suffix_problems:
            res.status, res.reason = "failed", suffix_problems[res.row.line]
    _fail_colliding(config, manifest.mouse_id, results)
    return results


def process_row(ctx: MouseContext, res: TrackResult, computed: ComputedTrack | None) -> None:
    """Write one planned track (computed here unless validation did); failures go on ``res``."""
    try:
        if computed is None:
            frames, warnings = compute_track(ctx, res.row)
        else:  # what validation read to compute them is what this item depends on
            replay(computed.reads or Reads())
            frames, warnings = computed.frames, list(computed.warnings)
        res.files = write_track(ctx, res.row, res.suffix, frames)
        res.warnings = warnings
        res.points = {k: v.tolist() for k, v in frames.items()}
    except (InputError, ValueError, RuntimeError, OSError) as exc:
        fail_track(ctx.config, ctx.mouse_id, res, str(exc))


def log_results(results: list[TrackResult]) -> None:
    """Warnings and failures of the tracks, one line each."""
    for res in results:
        for w in res.warnings:
            log.warning("%s: %s", res.name, w)
        if res.status == "failed":
            log.error("%s (manifest line %d) failed: %s", res.name, res.row.line, res.reason)


def fail_track(config: PipelineConfig, mouse_id: str, res: TrackResult, reason: str) -> None:
    """Mark a track failed and remove whatever an earlier run wrote for it."""
    res.status, res.reason, res.files = "failed", reason, []
    remove_outputs(row_outputs(config, mouse_id, res.row, res.suffix))


def _fail_colliding(config: PipelineConfig, mouse_id: str, results: list[TrackResult]) -> None:
    """Two rows that would write the same file: both fail, naming each other."""
    owner: dict[Path, list[TrackResult]] = {}
    for res in results:
        for path in row_outputs(config, mouse_id, res.row, res.suffix):
            owner.setdefault(path, []).append(res)
    for path, owners in owner.items():
        if len(owners) > 1:
            lines = ", ".join(str(r.row.line) for r in owners)
            for res in owners:
                if res.status == "ok":
                    res.status = "failed"
                    res.reason = f"manifest lines {lines} would all write {path}"


def run(ctx: MouseContext, work: TrackWork) -> StageResult:
    """The stage contract: compute and write one manifest row's track."""
    assert work.row is not None
    res = TrackResult(work.row, "ok", suffix=work.suffix)
    if work.problem:
        fail_track(ctx.config, ctx.mouse_id, res, work.problem)
    else:
        process_row(ctx, res, work.computed)
    log_results([res])
    mouse = outputs.mouse_dir(ctx.config.results_root, ctx.mouse_id)
    return StageResult(
        work.name,
        Status.OK if res.status == "ok" else Status.FAILED,
        res.reason,
        files=tuple(str(Path(p).relative_to(mouse)) for p in res.files),
        warnings=tuple(res.warnings),
    )


def discard(config: PipelineConfig, work: TrackWork) -> None:
    """Remove the files of a track whose worker died mid-way."""
    assert work.row is not None
    remove_outputs(row_outputs(config, work.mouse_id, work.row, work.suffix))
