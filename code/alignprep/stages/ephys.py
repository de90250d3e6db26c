"""Ephys: AIND sorted asset -> IBL ALF per probe folder, via the converter, then normalised.

One job per (recording_id, ephys_collection) however many manifest rows share it. Each job runs
in its own worker process (``n_jobs`` of them; in-process when 1): it discovers the inputs,
stages the chosen analyzers under private names, runs ``extract_continuous`` and
``extract_spikes`` of ``aind-ephys-ibl-gui-conversion`` into a private temp folder
``.<probe>.alignprep-tmp-*`` beside the probe folder, normalises that folder to the IBL
convention (:mod:`.alf`), checks it with ``one.alf.io``, then moves the files into the probe
folder one by one (``os.replace``).
A failing probe leaves no ephys files behind and never stops the others.

Converter choices: ``min_duration_secs`` is passed as 0 (``EphysSettings.min_duration_s``). Its
default of 300 s drops short analyzers of multi-shank probes only, and crashes when it drops
them all; here the analyzers are chosen explicitly (one experiment/recording per probe), so every
staged analyzer is wanted. A raw stream shorter than one RMS window is refused with a clear error
instead of the converter's bare ``ValueError``.
"""

from __future__ import annotations

import contextlib
import io
import logging
import multiprocessing
import os
import shutil
import time
import warnings
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, fields
from pathlib import Path

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..inputs.manifest import Manifest
from ..inputs.sorted import ProbeInputs, analyzer_meta, discover_probe, raw_duration_s
from ..logs import configure_logging, get_logger, progress
from . import alf

log = get_logger("stages.ephys")


@dataclass(frozen=True)
class EphysSettings:
    """Converter parameters (defaults = the converter's, except ``min_duration_s``)."""

    rms_window_duration_s: float = 4.0  # converter rms_window_duration (RMS, PSD, coherence)
    rms_window_interval_s: float = 30.0  # converter rms_window_interval
    min_duration_s: float = 0.0  # converter min_duration_secs (see the module docstring)

    @classmethod
    def from_config(cls, config: PipelineConfig) -> EphysSettings:
        """Settings from a config ``ephys`` section when it has one, else the defaults."""
        section = getattr(config, "ephys", None)
        names = [f.name for f in fields(cls)]
        return cls(**{n: getattr(section, n) for n in names if hasattr(section, n)})


@dataclass(frozen=True)
class ProbeJob:
    """One probe folder to extract (all the manifest rows that share it)."""

    mouse_id: str
    recording_id: str
    collection: str
    sorted_recording: str
    lines: tuple[int, ...]
    ephys_shanks: tuple[int | None, ...]
    surface_finding: str | None = None
    problem: str | None = None  # rows that disagree: the job fails with this reason

    @property
    def name(self) -> str:
        """``<recording_id>/<ephys_collection>`` for logs and reports."""
        return f"{self.recording_id}/{self.collection}"


@dataclass
class EphysResult:
    """Outcome of one probe job. ``no_spikes``: no analyzer, channels and QC only."""

    job: ProbeJob
    status: str  # "ok" | "no_spikes" | "failed" | "skipped"
    reason: str = ""
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def plan_ephys(manifest: Manifest) -> list[ProbeJob]:
    """One job per (recording_id, ephys_collection), in manifest order."""
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
            ProbeJob(
                mouse_id=manifest.mouse_id,
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


def run_ephys(
    config: PipelineConfig, manifest: Manifest, settings: EphysSettings | None = None
) -> list[EphysResult]:
    """Extract every probe of the manifest; failures are recorded, never raised."""
    settings = settings or EphysSettings.from_config(config)
    jobs = plan_ephys(manifest)
    if config.skip_ephys:
        return [EphysResult(job, "skipped", "skip_ephys is set") for job in jobs]
    n_workers = max(1, min(config.effective_n_jobs, len(jobs)))
    n_threads = max(1, config.effective_n_jobs // n_workers)
    args = (config.data_root, config.results_root, settings, n_threads)
    if n_workers == 1:
        results = [extract_probe(job, *args) for job in progress(jobs, "ephys probes")]
    else:
        level = logging.getLevelName(get_logger().getEffectiveLevel())
        by_job: dict[ProbeJob, EphysResult] = {}
        with ProcessPoolExecutor(
            n_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=configure_logging,
            initargs=(level,),
        ) as pool:
            futures = {pool.submit(extract_probe, job, *args): job for job in jobs}
            for future in progress(as_completed(futures), "ephys probes", total=len(jobs)):
                job = futures[future]
                try:
                    by_job[job] = future.result()
                except Exception as exc:  # the worker died (e.g. killed for memory)
                    probe = _probe_dir(config.results_root, job)
                    for tmp in probe.parent.glob(f".{probe.name}{outputs.TEMP_MARK}*"):
                        shutil.rmtree(tmp, ignore_errors=True)
                    _remove_owned(probe)
                    reason = f"worker process failed: {type(exc).__name__}: {exc}"
                    by_job[job] = EphysResult(job, "failed", reason)
        results = [by_job[job] for job in jobs]
    for res in results:
        for warning in res.warnings:
            log.warning("%s: %s", res.job.name, warning)
        if res.status == "failed":
            log.error("%s (manifest lines %s) failed: %s", res.job.name, res.job.lines, res.reason)
        elif res.status == "no_spikes":
            log.warning("%s: %s", res.job.name, res.reason)
    return results


def extract_probe(
    job: ProbeJob, data_root: Path, results_root: Path, settings: EphysSettings, n_threads: int
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
        staged = _stage_sorted(inputs, tmp / "sorted")
        log.info("%s: running the converter (%d analyzer(s))", job.name, len(inputs.analyzers))
        folder = _run_converter(inputs, staged, tmp / "out", settings, n_threads)
        spikes = alf.read_converter_spikes(folder)
        if inputs.analyzers and spikes is None:
            raise RuntimeError(f"the converter wrote no spikes into {folder}")
        if spikes is not None:
            res.warnings += _normalise(inputs, folder, spikes)
        problems = alf.check_folder(folder)
        if problems:
            raise ValueError("output check failed: " + "; ".join(problems))
        res.files = _commit(folder, probe)
        res.status = "ok" if spikes is not None else "no_spikes"
        if spikes is None:
            text = (probe / "sorting_error.txt").read_text().strip()
            res.reason = f"{text} in {inputs.sorted_asset}; channels and QC only"
    except InputError as exc:
        res.reason = str(exc)
    except Exception as exc:  # the converter raises many types; one probe must not stop others
        log.debug("%s failed", job.name, exc_info=True)
        res.reason = f"{type(exc).__name__}: {exc}"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        res.seconds = time.perf_counter() - t0_s
    if res.status == "failed":
        _remove_owned(probe)
    else:
        log.info("%s: %s in %.1f s (%d files)", job.name, res.status, res.seconds, len(res.files))
    return res


def _probe_dir(results_root: Path, job: ProbeJob) -> Path:
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


def _stage_sorted(inputs: ProbeInputs, dest: Path) -> Path:
    """A sorted-asset view holding only this probe's analyzers, named as the converter expects.

    Several analyzers are linked as ``_group0.._group<n-1>`` in group order, so a missing group
    number (or one lone ``_group<K>``) cannot make the converter skip or mis-find analyzers.
    """
    root = dest / inputs.sorted_asset.name
    post, curated = root / "postprocessed", root / "curated"
    post.mkdir(parents=True)
    curated.mkdir()
    multi = len(inputs.analyzers) > 1
    for i, ref in enumerate(inputs.analyzers):
        name = f"experiment{ref.experiment}_{inputs.streams.stream}_recording{ref.recording or 1}"
        name += (f"_group{i}" if multi else "") + (".zarr" if ref.format == "zarr" else "")
        (post / name).symlink_to(ref.path.resolve(), target_is_directory=True)
        if ref.curated is not None:
            (curated / name).symlink_to(ref.curated.resolve(), target_is_directory=True)
    return root


class _LogWriter(io.TextIOBase):
    """A text stream that sends each printed line to a logger (the converter prints)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.logger.debug("converter: %s", line.rstrip())
        return len(text)


class _Forward(logging.Handler):
    """Root-logger handler sending the converter's warnings and errors to our logger."""

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(log.name.split(".")[0]):  # ours propagate to root too
            log.log(record.levelno, "converter: %s", record.getMessage())


def _run_converter(
    inputs: ProbeInputs, staged: Path, out: Path, settings: EphysSettings, n_threads: int
) -> Path:
    """Run both converter steps; return the probe folder it wrote."""
    from aind_ephys_ibl_gui_conversion import extract_continuous, extract_spikes

    out.mkdir(parents=True)
    stream = inputs.streams.stream
    forward = _Forward(logging.WARNING)
    logging.getLogger().addHandler(forward)
    try:
        with (
            contextlib.redirect_stdout(_LogWriter(log)),
            warnings.catch_warnings(record=True) as caught,
        ):
            warnings.simplefilter("always")
            extract_continuous(
                staged,
                out,
                stream_to_use=stream,
                session_folder=inputs.raw.path,
                probe_surface_finding=inputs.surface.path if inputs.surface else None,
                rms_window_interval=settings.rms_window_interval_s,
                rms_window_duration=settings.rms_window_duration_s,
                num_parallel_jobs=n_threads,
            )
            extract_spikes(
                staged,
                out,
                stream_to_use=stream,
                min_duration_secs=settings.min_duration_s,
                session_folder=inputs.raw.path,
            )
    finally:
        logging.getLogger().removeHandler(forward)
    for message in sorted({str(w.message) for w in caught}):
        log.debug("converter warning: %s", message)
    folders = [p for p in out.iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise RuntimeError(f"the converter wrote {len(folders)} probe folders in {out}")
    return folders[0]


def _normalise(inputs: ProbeInputs, folder: Path, spikes: alf.ConverterSpikes) -> list[str]:
    """Rewrite the converter's spike/cluster files in IBL conventions; return warnings."""
    notes = []
    groups = []
    for ref in inputs.analyzers:
        meta = analyzer_meta(ref)
        if meta.n_segments > 1:
            notes.append(f"{ref.path.name}: {meta.n_segments} segments; spike times restart")
        groups.append(alf.GroupInfo(ref.group, meta.unit_ids, meta.channel_xy_um, meta.contact_ids))
    arrays, more = alf.normalise(spikes, groups, alf.read_channel_table(folder))
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
