"""QC figures drawn from the run's own outputs (never the data root's images).

Three kinds of item (:class:`~alignprep.work.QcWork` ``scope``), each started as soon as what it
draws exists: the **mouse** (registration overlays through the brain centre and each track's
centroid, the tracks in the CCF), its **tracks** (each on a slab of every channel, the channels
read once), each **probe** folder (its summary per GUI shank). Figures come from the image-space
volumes the histology items wrote (the level the run already read, resampled onto G), the track
files, the probe folders' ALF and channel regions. A figure whose inputs are missing (its item
failed) is left out with a note; one figure that cannot be drawn never stops the others. Each
figure is written under a temporary name and renamed; each item's index
(``qc/figures-<item>.json``: each figure's file, section, title, caption and modality, the key
numbers, the notes) is written last. The page and ``quality_control.json`` are written at
packaging, with the run's results (:mod:`alignprep.stages.qc_documents`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..errors import AlignprepError
from ..logs import get_logger
from ..work import QcTrack, QcWork, StageResult, Status
from .context import MouseContext
from .qc_numbers import KeyNumber, Volumes, key_numbers, picks_lps_mm, probe_dir, track_ccf_um

log = get_logger("stages.qc")


@dataclass(frozen=True)
class FigureEntry:
    """One drawn figure, as the page and the QC metadata list it."""

    file: str  # inside qc/
    section: str
    title: str
    caption: str
    modality: str  # "SPIM" or "ECEPHYS"
    group: str = ""  # the track or probe it shows ("" for the mouse)


#: A track's registration overlay shows this far around the track's centroid (mm): the
#: boundaries its channels will be assigned by, at several pixels per voxel.
TRACK_VIEW_HALF_MM = 2.5


@dataclass
class _Job:
    entry: FigureEntry
    draw: Callable[[], Any]  # -> matplotlib Figure


def _channels(ctx: MouseContext) -> list[tuple[str, Path]]:
    """(channel name, image-space NRRD) of every channel, the registration channel first."""
    root, mid = ctx.config.results_root, ctx.mouse_id
    reg = ctx.asset.registration_channel
    out = [(reg, outputs.histology_paths(root, mid)["registration"])]
    out += [(c, outputs.channel_path(root, mid, c)) for c in ctx.asset.channels if c != reg]
    return out


def _registration_jobs(
    ctx: MouseContext, work: QcWork, notes: list[str], vols: Volumes
) -> Iterator[_Job]:
    from ..qc import registration as reg

    config, mid = ctx.config, ctx.mouse_id
    if not ctx.light_sheet:
        notes.append(
            "no light-sheet data: the tracks, traced with other tools in the CCF, are shown in "
            "the atlas view only (no registration overlay, no histology slab)"
        )
        return
    labels_path = outputs.histology_paths(config.results_root, mid)["labels"]
    reg_name, reg_path = _channels(ctx)[0]
    if not (reg_path.is_file() and labels_path.is_file()):
        notes.append("registration overlay: the image-space channel or labels are missing")
        return
    on_images = [t for t in work.tracks if t.light_sheet]
    notes += [
        f"track {t.stem}: traced in the CCF with another tool: shown in the atlas view only"
        for t in work.tracks
        if not t.light_sheet
    ]
    picks = {t.stem: picks_lps_mm(config, mid, t) for t in on_images}
    centres: list[tuple[str, str, str | None]] = [("centre", "the brain centre", None)]
    centres += [(t.stem, f"the centroid of {t.stem}", t.stem) for t in on_images]
    for key, where, stem in centres:
        if stem is not None and picks[stem] is None:
            notes.append(f"track {stem}: no track files (its item failed): no overlay")
            continue

        def draw(where: str = where, stem: str | None = stem) -> Any:
            volume, labels = vols.get(reg_path), vols.get(labels_path)
            if stem is None:
                centre = reg.brain_centre(labels)
            else:
                mean = picks[stem].mean(axis=0)  # type: ignore[union-attr]
                centre = tuple(round(v) for v in labels.index_of(mean)[0])
            track = None if stem is None else picks[stem]
            title = f"{mid}: sections through {where}"
            half_mm = None if stem is None else TRACK_VIEW_HALF_MM
            return reg.draw_overlay(volume, labels, centre, title, track, half_mm)

        caption = (
            f"Registration channel {reg_name} with the CCF region boundaries warped into the "
            "image (labels_in); the boundaries should follow the tissue's own edges."
        )
        entry = FigureEntry(
            outputs.qc_figure_name("registration", key),
            "Registration",
            f"Registration overlay through {where}",
            caption,
            "SPIM",
            stem or "",
        )
        yield _Job(entry, draw)


def _atlas_jobs(ctx: MouseContext, work: QcWork) -> Iterator[_Job]:
    from ..qc import atlas_view as av

    config, mid = ctx.config, ctx.mouse_id
    tracks = []
    for t in work.tracks:
        points = track_ccf_um(config, mid, t)
        if points is not None:
            tracks.append(av.AtlasTrack(t.stem, f"{t.recording_id}/{t.collection}", points))
    if not tracks:
        return

    def draw() -> Any:
        outline = av.brain_outline_of(ctx.labels)
        return av.draw_tracks_in_atlas(outline, tracks, f"{mid}: tracks in the CCF")

    caption = (
        "Top and side views over the outline of the CCF labels, one colour per probe folder "
        "(its shanks in shades of it); the dot marks each track's deepest pick."
    )
    entry = FigureEntry(
        outputs.qc_figure_name("tracks", "ccf"), "Tracks in the atlas", "Every track in the CCF",
        caption, "SPIM",
    )  # fmt: skip
    yield _Job(entry, draw)


def _track_jobs(ctx: MouseContext, work: QcWork, notes: list[str]) -> Iterator[_Job]:
    from ..qc import track_slab as ts

    channels = [(c, p) for c, p in _channels(ctx) if p.is_file()]
    if not channels:
        notes.append("tracks on histology: no image-space channel")
        return
    vols = Volumes()  # each channel read once for every track
    caption = (
        "Maximum over a 300 um slab containing the line fitted to the picks (magenta dots), "
        "for every channel; ticks every 500 um above the deepest pick."
    )
    for track in work.tracks:
        picks = picks_lps_mm(ctx.config, ctx.mouse_id, track)
        if picks is None:
            notes.append(f"track {track.stem}: no track files (its item failed): no slab")
            continue

        def draw(track: QcTrack = track, picks: np.ndarray = picks) -> Any:
            slabs = [(c, ts.track_slab(vols.get(p), picks)) for c, p in channels]
            return ts.draw_track_slab(slabs, f"{ctx.mouse_id} {track.stem} on its histology")

        entry = FigureEntry(
            outputs.qc_figure_name("track", track.stem), "Tracks on histology", track.stem,
            caption, "SPIM", track.stem,
        )  # fmt: skip
        yield _Job(entry, draw)


def _probe_jobs(ctx: MouseContext, work: QcWork, notes: list[str]) -> Iterator[_Job]:
    from ..qc import probe_summary as ps

    folder = probe_dir(ctx, work)
    if not (folder / "channels.localCoordinates.npy").is_file():
        notes.append(f"probe {work.probe}: no channel table (its ephys failed): no summary")
        return
    try:
        data = ps.load_probe_summary(folder)
    except (AlignprepError, ValueError, OSError) as exc:  # a malformed channel table
        notes.append(f"probe {work.probe}: no summary ({exc})")
        return
    rec, coll = work.probe.split("/", 1)
    caption = (
        "As the alignment GUI's first view: spikes, units, AP RMS and LFP power along the "
        "probe, and the channels' regions from the histology track before any alignment."
    )
    for suffix, _rows in ps.summary_shanks(data):

        def draw(suffix: str = suffix) -> Any:
            return ps.draw_probe_summary(data, suffix, f"{work.probe}{suffix}")

        entry = FigureEntry(
            outputs.qc_figure_name("probe", rec, coll + suffix), "Probes",
            f"{work.probe}{suffix}", caption, "ECEPHYS", f"{work.probe}{suffix}",
        )  # fmt: skip
        yield _Job(entry, draw)


def _scope(
    ctx: MouseContext, work: QcWork, notes: list[str]
) -> tuple[Iterator[_Job], list[KeyNumber]]:
    vols = Volumes()  # the mouse's registration channel and labels, read once for all
    if work.scope == "mouse":
        jobs = [*_registration_jobs(ctx, work, notes, vols), *_atlas_jobs(ctx, work)]
    elif work.scope == "tracks":
        jobs = list(_track_jobs(ctx, work, notes))
    else:
        jobs = list(_probe_jobs(ctx, work, notes))
    try:
        numbers = key_numbers(ctx, work, vols)
    except (AlignprepError, ValueError, OSError) as exc:  # an unreadable output: say so, go on
        notes.append(f"key numbers not counted ({type(exc).__name__}: {exc})")
        numbers = []
    return iter(jobs), numbers


def index_path(config: PipelineConfig, work: QcWork) -> Path:
    """``qc/figures-<item>.json``: what one QC item drew."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in work.name)
    return outputs.qc_dir(config.results_root, work.mouse_id) / f"figures-{slug}.json"


def _previous_files(config: PipelineConfig, work: QcWork) -> list[Path]:
    path = index_path(config, work)
    if not path.is_file():
        return []
    try:
        figures = json.loads(path.read_text())["figures"]
    except (ValueError, KeyError, TypeError):
        return []
    qc = path.parent
    return [qc / Path(f["file"]).name for f in figures if isinstance(f, dict) and "file" in f]


def draw_figures(ctx: MouseContext, work: QcWork) -> tuple[list[Path], list[str]]:
    """Draw the item's figures into ``qc/`` (each written atomically), then its index; remove
    what an earlier run of the item drew and this one did not; (files, notes)."""
    from ..qc.render import png_bytes

    qc = outputs.qc_dir(ctx.config.results_root, ctx.mouse_id)
    qc.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    jobs, numbers = _scope(ctx, work, notes)
    entries: list[FigureEntry] = []
    for job in jobs:
        try:
            data = png_bytes(job.draw())
        except Exception as exc:  # one figure never stops the others
            log.warning("QC figure %s not drawn: %s", job.entry.file, exc)
            notes.append(f"{job.entry.title}: not drawn ({type(exc).__name__}: {exc})")
            continue
        outputs.write_bytes_atomic(qc / job.entry.file, data)
        entries.append(job.entry)
    written = [qc / e.file for e in entries]
    for old in _previous_files(ctx.config, work):
        if old not in written:
            old.unlink(missing_ok=True)
    index = {
        "item": work.name,
        "figures": [asdict(e) for e in entries],
        "numbers": [asdict(n) for n in numbers],
        "notes": notes,
    }
    path = outputs.write_bytes_atomic(index_path(ctx.config, work), outputs.json_bytes(index))
    return [*written, path], notes


def run(ctx: MouseContext, work: QcWork) -> StageResult:
    """The stage contract: every figure that can be drawn (ok even when some could not)."""
    t0_s = time.perf_counter()
    files, notes = draw_figures(ctx, work)
    mouse = outputs.mouse_dir(ctx.config.results_root, ctx.mouse_id)
    log.info("%s: %d figure(s)", work.name, len(files) - 1)
    return StageResult(
        work.name,
        Status.OK,
        seconds=time.perf_counter() - t0_s,
        files=tuple(str(f.relative_to(mouse)) for f in files),
        warnings=tuple(notes),
    )


def upstream_files(config: PipelineConfig, work: QcWork) -> list[Path]:
    """The outputs of earlier items the figures read (their digests are in the fingerprint):
    mouse: the registration channel, the labels and each track's SPIM and CCF points; tracks:
    every channel and each track's SPIM points; probe: the probe folder's ALF and regions."""
    root, mid = config.results_root, work.mouse_id
    hist = outputs.histology_paths(root, mid)
    files: list[Path] = []
    if work.scope == "mouse":
        files += [hist["registration"], hist["labels"]]
        for t in work.tracks:
            paths = outputs.track_paths(root, mid, t.stem, "")
            files += [paths["spim_fcsv"], paths["ccf_um"]]
    elif work.scope == "tracks":
        fixed = {p.name for p in hist.values()}  # the other NRRDs there are the other channels
        others = hist["registration"].parent.glob("*.nrrd")
        files += [hist["registration"], *sorted(p for p in others if p.name not in fixed)]
        files += [outputs.track_paths(root, mid, t.stem, "")["spim_fcsv"] for t in work.tracks]
    else:
        rec, coll = work.probe.split("/", 1)
        probe = outputs.probe_dir(root, mid, rec, coll)
        files += sorted(probe.glob("*.npy")) + sorted(probe.glob("*.csv"))
        files += sorted(outputs.channel_regions_dir(probe).glob("*"))
    # another item may be writing meanwhile: its temporary file (``*.tmp.nrrd``) is not an input
    return [f for f in dict.fromkeys(files) if f.is_file() and not outputs.is_temp_name(f.name)]


def discard(config: PipelineConfig, work: QcWork) -> None:
    """Remove what a QC item drew (its worker died mid-way)."""
    for path in _previous_files(config, work):
        path.unlink(missing_ok=True)
    index_path(config, work).unlink(missing_ok=True)
