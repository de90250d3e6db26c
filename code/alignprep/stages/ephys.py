"""Ephys: AIND sorted asset -> IBL ALF per probe folder (continuous via the converter).

One job per (recording_id, ephys_collection) however many manifest rows share it. Each job runs
in its own worker process (``n_jobs`` of them; in-process when 1): it discovers the inputs and
checks them (:func:`check_durations`, :func:`check_sorted`, which validation runs too), runs
``extract_continuous`` of ``aind-ephys-ibl-gui-conversion`` (channel table, RMS, LFP spectra:
:mod:`.continuous`) into a private temp folder ``.<probe>.alignprep-tmp-*`` beside the probe
folder, reads the analyzers with SpikeInterface and writes spikes/clusters in the IBL
convention (:mod:`.alf`), checks the folder with ``one.alf.io``, then moves the files into the
probe folder one by one (``os.replace``). A failing probe leaves no ephys files behind and
never stops the others.

Spikes are read from the analyzers directly rather than through the converter's
``extract_spikes``: that step loads every extension eagerly, fails with ``AttributeError`` on a
missing one, looks for ``curated/<rec>.zarr`` where the AIND collector writes ``curated/<rec>``,
carries two label columns only, and writes per-shank ids and units the IBL convention does not
use. ``min_duration_s`` (default 0) drops analyzers shorter than that, with a note. A raw stream
shorter than one RMS window is refused with a clear error instead of the converter's bare
``ValueError``. A probe whose sort failed (the pipeline's placeholder) is skipped.
"""

from __future__ import annotations

import os
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..inputs.analyzers import AnalyzerMeta, analyzer_meta, read_analyzer, require_uv
from ..inputs.curation import UnitCuration, read_unit_curation
from ..inputs.manifest import Manifest
from ..inputs.sorted import (
    AnalyzerRef,
    FailedSortError,
    ProbeInputs,
    discover_probe,
    raw_duration_s,
)
from ..logs import get_logger
from ..work import EphysWork, RunContext, StageResult, Status, probe_work_name
from . import alf
from .continuous import run_continuous

log = get_logger("stages.ephys")


@dataclass(frozen=True)
class EphysSettings:
    """Extraction parameters (RMS windows: the converter's defaults)."""

    rms_window_duration_s: float = 4.0  # converter rms_window_duration (RMS, PSD, coherence)
    rms_window_interval_s: float = 30.0  # converter rms_window_interval
    min_duration_s: float = 0.0  # analyzers shorter than this are left out (0: none)
    drop_removed_units: bool = False  # drop the units curation.json lists as removed

    @classmethod
    def from_config(cls, config: PipelineConfig) -> EphysSettings:
        """Settings from a config ``ephys`` section when it has one, else the defaults."""
        section = getattr(config, "ephys", None)
        names = [f.name for f in fields(cls)]
        return cls(**{n: getattr(section, n) for n in names if hasattr(section, n)})


@dataclass(frozen=True)
class GroupInputs:
    """One checked analyzer of a probe: where it is, what it holds, its curation."""

    ref: AnalyzerRef
    meta: AnalyzerMeta
    curation: UnitCuration


@dataclass
class EphysResult:
    """Outcome of one probe job. ``no_spikes``: no analyzer, channels and QC only;
    ``skipped``: skip_ephys, or the sort failed (nothing written). ``reason`` of an ``ok``
    result lists its notes (what was computed another way)."""

    job: EphysWork
    status: str  # "ok" | "no_spikes" | "failed" | "skipped"
    reason: str = ""
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def plan_ephys(manifest: Manifest) -> list[EphysWork]:
    """One work item per probe folder (recording_id, ephys_collection), in manifest order."""
    rows_by_probe = defaultdict(list)
    for row in manifest.rows:
        rows_by_probe[(row.recording_id, row.ephys_collection)].append(row)
    jobs = []
    for (recording_id, collection), rows in rows_by_probe.items():
        sorted_names = sorted({r.sorted_recording for r in rows})
        surfaces = sorted({r.surface_finding for r in rows if r.surface_finding})
        problem = None
        if len(sorted_names) > 1 or len(surfaces) > 1:
            problem = (
                f"manifest lines {[r.line for r in rows]} share the probe folder but disagree "
                f"on sorted_recording {sorted_names} or surface_finding {surfaces}"
            )
        jobs.append(
            EphysWork(
                mouse_id=manifest.mouse_id,
                name=probe_work_name(recording_id, collection),
                recording_id=recording_id,
                collection=collection,
                sorted_recording=rows[0].sorted_recording,
                lines=tuple(r.line for r in rows),
                ephys_shanks=tuple(r.ephys_shank for r in rows),
                surface_finding=surfaces[0] if surfaces else None,
                problem=problem,
            )
        )
    return jobs


def extract_probe(
    job: EphysWork, data_root: Path, results_root: Path, settings: EphysSettings, n_threads: int
) -> EphysResult:
    """Extract and normalise one probe folder (the worker entry point; never raises)."""
    t0_s = time.perf_counter()
    res = EphysResult(job, "failed")
    probe = _probe_dir(results_root, job)
    tmp = outputs.temp_dir_beside(probe)
    try:
        if job.problem:
            raise InputError(job.problem)
        surface = Path(data_root) / job.surface_finding if job.surface_finding else None
        inputs = discover_probe(
            Path(data_root),
            job.recording_id,
            job.sorted_recording,
            job.collection,
            job.ephys_shanks,
            surface,
        )
        res.warnings += inputs.warnings
        check_durations(inputs, settings)
        groups, notes = check_sorted(inputs, settings)
        res.warnings += notes
        log.info("%s: running the converter's continuous extraction", job.probe)
        folder = run_continuous(inputs, tmp / "out", settings, n_threads)
        if groups:
            log.info("%s: reading %d analyzer(s)", job.probe, len(groups))
            res.warnings += write_spikes(groups, folder, settings)
        else:
            text = f"No postprocessed sorting output found for {job.collection}"
            if inputs.analyzers:  # every analyzer was shorter than min_duration_s
                text = f"No analyzer of {job.collection} lasts ephys.min_duration_s"
            (folder / "sorting_error.txt").write_text(text)
        problems = alf.check_folder(folder)
        if problems:
            raise ValueError("output check failed: " + "; ".join(problems))
        res.files = _commit(folder, probe)
        res.status = "ok" if groups else "no_spikes"
        res.reason = "; ".join(res.warnings)
        if not groups:
            text = (probe / "sorting_error.txt").read_text().strip()
            res.reason = f"{text} in {inputs.sorted_asset}; channels and QC only"
    except FailedSortError as exc:
        res.status, res.reason = "skipped", str(exc)
    except InputError as exc:
        res.reason = str(exc)
    except Exception as exc:  # the converter raises many types; one probe must not stop others
        log.debug("%s failed", job.probe, exc_info=True)
        res.reason = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        res.seconds = time.perf_counter() - t0_s
    if res.status in ("failed", "skipped"):
        _remove_owned(probe)  # nothing stale may look like this run's result
    else:
        log.info("%s: %s in %.1f s (%d files)", job.probe, res.status, res.seconds, len(res.files))
    return res


def _probe_dir(results_root: Path, job: EphysWork) -> Path:
    return outputs.probe_dir(Path(results_root), job.mouse_id, job.recording_id, job.collection)


def check_durations(inputs: ProbeInputs, settings: EphysSettings) -> None:
    """Refuse raw streams shorter than one window (the converter fails with a bare error)."""
    window_s = settings.rms_window_duration_s
    for zarr in inputs.raw_zarrs:
        duration_s = raw_duration_s(zarr)
        if duration_s < window_s:
            raise InputError(
                f"recording is {duration_s:.3f} s long, shorter than one RMS/LFP window "
                f"({window_s} s): no RMS or power spectrum can be computed",
                file=zarr,
            )


def check_sorted(
    inputs: ProbeInputs, settings: EphysSettings
) -> tuple[list[GroupInputs], list[str]]:
    """Open every analyzer and its curation; the analyzers to use, and notes.

    Raises
    ------
    InputError
        An analyzer that cannot be opened, has no units or no uV scale; a curated sorting or
        ``curation.json`` that cannot be read or whose unit ids are not the analyzer's. Each
        message names the probe, the shank group and the file.
    """
    groups, notes = [], []
    for ref in inputs.analyzers:
        meta = analyzer_meta(ref)
        if not meta.unit_ids:
            raise InputError(
                f"{ref.where}: the analyzer has 0 units; expected at least one sorted unit "
                "(an empty sort leaves nothing to align)",
                file=ref.path,
            )
        require_uv(meta, ref)
        curation = read_unit_curation(ref, meta.unit_ids, meta.labels)
        if meta.duration_s < settings.min_duration_s:
            notes.append(
                f"{ref.where}: analyzer {ref.path.name} covers {meta.duration_s:.1f} s, less "
                f"than ephys.min_duration_s ({settings.min_duration_s:g} s): left out"
            )
            continue
        if meta.n_segments > 1:
            notes.append(
                f"{ref.where}: {meta.n_segments} segments; spike times restart in each segment"
            )
        groups.append(GroupInputs(ref, meta, curation))
    return groups, notes


def _keep_mask(group: GroupInputs, settings: EphysSettings) -> tuple[np.ndarray | None, list]:
    """Units to keep under the curation settings, and what was decided (logged or noted)."""
    cur, where = group.curation, group.ref.where
    if cur.merges:
        log.info("%s: curation.json proposes %d merge(s); not applied", where, len(cur.merges))
    if not cur.removed:
        return None, []
    if not settings.drop_removed_units:
        log.info(
            "%s: curation.json removes %d unit(s); kept (ephys.drop_removed_units is false)",
            where,
            len(cur.removed),
        )
        return None, []
    keep = ~np.isin(np.asarray(group.meta.unit_ids), np.asarray(cur.removed))
    note = (
        f"{where}: dropped the {int((~keep).sum())} unit(s) curation.json removes "
        f"({list(cur.removed)[:8]}; ephys.drop_removed_units is true)"
    )
    return keep, [note]


def write_spikes(groups: list[GroupInputs], folder: Path, settings: EphysSettings) -> list[str]:
    """Spikes and clusters of the analyzers in IBL conventions into ``folder``; notes."""
    notes: list[str] = []
    sorted_groups = []
    for group in groups:
        spikes = read_analyzer(group.ref)
        keep, more = _keep_mask(group, settings)
        notes += [*spikes.notes, *more]
        sorted_groups.append(alf.SortedGroup(spikes, group.curation, keep))
    arrays, more = alf.normalise(sorted_groups, alf.read_channel_table(folder))
    alf.write_alf(folder, arrays)
    return notes + more


def _remove_owned(probe: Path) -> None:
    """Remove every ephys file this stage writes (picks and GUI files are left alone)."""
    if not probe.is_dir():
        return
    for pattern in alf.OWNED_GLOBS:
        for path in probe.glob(pattern):
            path.unlink(missing_ok=True)
    for name in alf.OWNED_DIRS:
        shutil.rmtree(probe / name, ignore_errors=True)


def _commit(src: Path, probe: Path) -> list[Path]:
    """Replace the probe folder's ephys files by ``src``'s, file by file; spikes.* last."""
    probe.mkdir(parents=True, exist_ok=True)
    _remove_owned(probe)
    files = sorted(
        (p for p in src.rglob("*") if p.is_file()),
        key=lambda p: (p.name.startswith("spikes."), str(p)),
    )
    moved = []
    try:
        for path in files:
            dst = probe / path.relative_to(src)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dst)
            moved.append(dst)
    except BaseException:
        _remove_owned(probe)
        raise
    return moved


def run(ctx: RunContext, work: EphysWork) -> StageResult:
    """The stage contract: extract one probe folder (a probe without units is a failed item)."""
    cfg = ctx.config
    settings = EphysSettings.from_config(cfg)
    res = extract_probe(work, cfg.data_root, cfg.results_root, settings, ctx.n_threads)
    for warning in res.warnings:
        log.warning("%s: %s", work.probe, warning)
    if res.status != "ok":
        log.error("%s (manifest lines %s): %s: %s", work.probe, work.lines, res.status, res.reason)
    mouse = outputs.mouse_dir(cfg.results_root, work.mouse_id)
    return StageResult(
        work.name,
        Status.OK if res.status == "ok" else Status.FAILED,
        res.reason,
        res.seconds,
        files=tuple(str(Path(p).relative_to(mouse)) for p in res.files),
        warnings=tuple(res.warnings),
        detail=res.status,
    )


def discard(config: PipelineConfig, work: EphysWork) -> None:
    """Remove whatever a worker that died mid-way left of this probe's ephys files."""
    probe = _probe_dir(config.results_root, work)
    for tmp in probe.parent.glob(f".{probe.name}{outputs.TEMP_MARK}*"):
        shutil.rmtree(tmp, ignore_errors=True)
    _remove_owned(probe)
