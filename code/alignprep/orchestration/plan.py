"""The plan: every mouse's typed work items, built once from what validation found.

Items come in four levels (``phase``), the order of what each reads; the schedule
(:mod:`.schedule`) starts each item as soon as the items it reads have finished. Phase 0 holds
each mouse's histology parts (channels, atlas) and each probe folder's ephys;
phase 1 each channel's CCF-space QC volume (from the image-space volume of phase 0) and the
tracks (with the picks validation computed), whose
``_shank{N}`` suffixes come from the probe folders' channel tables written in phase 0
(:func:`resolve_tracks`); phase 2 each probe folder's channel regions, from its tracks' picks
and its channel table (planned when ephys runs: without a channel table there is nothing to
place); phase 3 the mouse's QC figures, from whatever the other items wrote (``--no-qc``
leaves them out). Items that validation refused are planned with their reason: they fail
without running, and the run report says why. ``only`` selects a slice of the plan (a Code
Ocean pipeline runs one slice per capsule, then ``--collect`` merges them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config import PipelineConfig
from ..errors import AlignprepError
from ..work import (
    HISTOLOGY_PARTS,
    ChannelRegionsWork,
    ComputedTrack,
    HistologyCcfWork,
    HistologyWork,
    QcTrack,
    QcWork,
    TrackWork,
    Work,
    channel_regions_work_name,
    histology_ccf_work_name,
    histology_work_name,
    probe_work_name,
    qc_work_name,
    track_work_name,
)

if TYPE_CHECKING:
    from ..inputs.manifest import Manifest
    from ..stages.validate import MouseReport, ValidationReport


@dataclass
class MousePlan:
    """The work of one mouse, and what validation said about it."""

    report: MouseReport
    items: list[Work] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # work name -> validation reason
    rejected_rows: dict[int, str] = field(default_factory=dict)  # manifest line -> reason

    @property
    def mouse_id(self) -> str:
        return self.report.mouse_id

    @property
    def manifest(self) -> Manifest:
        assert self.report.manifest is not None
        return self.report.manifest

    def phase(self, phase: int) -> list[Work]:
        """The items of one phase, in plan order."""
        return [w for w in self.items if w.phase == phase]

    def tracks(self) -> list[TrackWork]:
        """The track items, in plan order."""
        return [w for w in self.items if isinstance(w, TrackWork)]


@dataclass
class Plan:
    """Every mouse that passed its mouse-level checks, and why the others stopped."""

    mice: list[MousePlan] = field(default_factory=list)
    stopped: dict[str, str] = field(default_factory=dict)  # mouse id (or manifest) -> reason


PROBE_KINDS = ("ephys", "tracks", "channel_regions")  # the kinds a ``probe:`` selector takes


def build_plan(config: PipelineConfig, validation: ValidationReport) -> Plan:
    """The plan of a validated run (see the module docstring)."""
    plan = Plan()
    for mouse in validation.mice:
        mid = mouse.mouse_id
        fatal = validation.mouse_fatal(mid) if mid else []
        if mouse.manifest is None or mouse.context is None or fatal:
            why = "; ".join(c.message for c in fatal) or "its manifest or asset could not be read"
            plan.stopped[mid or mouse.manifest_path.name] = why
            continue
        plan.mice.append(plan_mouse(config, mouse, validation))
    return plan


def plan_mouse(
    config: PipelineConfig, mouse: MouseReport, validation: ValidationReport | None = None
) -> MousePlan:
    """The work of one mouse whose context is prepared; refused items keep validation's reason."""
    from ..stages.ephys import plan_ephys

    assert mouse.manifest is not None
    mid = mouse.mouse_id
    errors = (lambda scope: validation.errors_for(scope, mid)) if validation else (lambda _: {})
    mp = MousePlan(mouse)
    histology_items = histology_plan(config, mouse)
    mp.items += histology_items
    histology = "; ".join(errors("histology").values())
    if histology:
        mp.errors.update((w.name, histology) for w in histology_items)
    if not config.skip_ephys:
        probe_errors = errors("probe")
        for job in plan_ephys(mouse.manifest):
            mp.items.append(job)
            if job.probe in probe_errors:
                mp.errors[job.name] = probe_errors[job.probe]
    row_errors = {int(k): v for k, v in errors("row").items()}
    lines = {row.line for row in mouse.manifest.rows}
    mp.rejected_rows = {ln: r for ln, r in row_errors.items() if ln not in lines}
    mp.items += track_items(config, mouse.manifest, mouse.tracks)
    for work in mp.tracks():
        assert work.row is not None
        if work.row.line in row_errors:
            mp.errors[work.name] = row_errors[work.row.line]
    if not config.skip_ephys:
        mp.items += channel_regions_items(mouse.manifest)
    if not config.no_qc:
        mp.items += qc_items(config, mid, mp.items)
    mp.items = [w for w in mp.items if selected(w, config.only)]
    return mp


def histology_plan(config: PipelineConfig, mouse: MouseReport) -> list[Work]:
    """The histology parts of a mouse: channels and atlas (phase 0), then each channel's
    CCF-space QC volume (phase 1) when asked for and both forward warps exist."""
    from ..stages.histology_ccf import ccf_space_missing, channel_names

    items: list[Work] = [
        HistologyWork(mouse.mouse_id, histology_work_name(part), part=part)
        for part in HISTOLOGY_PARTS
    ]
    ctx = mouse.context
    if ctx is not None and not ctx.light_sheet:
        return []  # tracks from tracing tools only: no image to resample
    if ctx is None or not config.histology.write_ccf_space or ccf_space_missing(ctx):
        return items
    try:
        channels = channel_names(ctx)
    except (AlignprepError, ValueError, OSError):  # validation reported it: the parts fail
        channels = [ctx.asset.registration_channel]
    for channel in channels:
        name = histology_ccf_work_name(channel)
        registration = channel == ctx.asset.registration_channel
        items.append(HistologyCcfWork(mouse.mouse_id, name, channel, registration))
    return items


def track_items(
    config: PipelineConfig, manifest: Manifest, computed: dict[int, ComputedTrack]
) -> list[Work]:
    """One track item per valid row, with its GUI shank suffix as the folder says today and the
    picks validation computed for it."""
    from ..stages.probes import plan_tracks

    return [
        TrackWork(
            manifest.mouse_id,
            track_work_name(res.row, res.suffix),
            row=res.row,
            suffix=res.suffix,
            problem=res.reason if res.status != "ok" else None,
            computed=computed.get(res.row.line),
        )
        for res in plan_tracks(config, manifest)
    ]


def qc_items(config: PipelineConfig, mouse_id: str, items: list[Work]) -> list[Work]:
    """The QC figures of a mouse: one item for the mouse, one for its tracks, one per probe
    folder (see :class:`~alignprep.work.QcWork`), knowing each track by its output stem."""
    tracks = [w for w in items if isinstance(w, TrackWork) and w.row is not None]
    qc_tracks = {
        w.name: QcTrack(
            f"{w.row.histology_track_id}{w.suffix}",
            w.row.recording_id,
            w.row.ephys_collection,
            w.suffix,
            w.row.light_sheet,
        )
        for w in tracks
        if w.row is not None and w.problem is None
    }
    every = tuple(qc_tracks.values())
    reads = (*(histology_work_name(p) for p in HISTOLOGY_PARTS), *qc_tracks)  # channel, labels
    out: list[Work] = [QcWork(mouse_id, qc_work_name("mouse"), tracks=every, after=reads)]
    on_images = {name: t for name, t in qc_tracks.items() if t.light_sheet}
    if on_images:  # only a light-sheet track lies on the mouse's own histology
        after = (histology_work_name("channels"), *on_images)
        out.append(
            QcWork(mouse_id, qc_work_name("tracks"), "tracks", tuple(on_images.values()), after)
        )
    if config.skip_ephys:
        return out
    folders: dict[tuple[str, str], list[QcTrack]] = {}  # every probe folder, even trackless
    for w in tracks:
        assert w.row is not None
        members = folders.setdefault((w.row.recording_id, w.row.ephys_collection), [])
        if w.name in qc_tracks:
            members.append(qc_tracks[w.name])
    for (rec, coll), members in folders.items():
        probe = f"{rec}/{coll}"
        after = (probe_work_name(rec, coll), channel_regions_work_name(rec, coll))
        out.append(
            QcWork(
                mouse_id, qc_work_name("probe", probe), scope="probe", tracks=tuple(members),
                after=after, probe=probe,
            )
        )  # fmt: skip
    return out


def channel_regions_items(manifest: Manifest) -> list[Work]:
    """One item per probe folder, with every valid manifest row of that folder."""
    folders: dict[tuple[str, str], list] = {}
    for row in manifest.rows:
        folders.setdefault((row.recording_id, row.ephys_collection), []).append(row)
    return [
        ChannelRegionsWork(
            manifest.mouse_id,
            channel_regions_work_name(rec, coll),
            recording_id=rec,
            collection=coll,
            rows=tuple(rows),
        )
        for (rec, coll), rows in folders.items()
    ]


def resolve_tracks(config: PipelineConfig, mouse: MousePlan) -> None:
    """Re-plan the tracks after phase 0: suffixes from the channel tables just written."""
    errors_by_line = {
        w.row.line: mouse.errors.pop(w.name)
        for w in mouse.tracks()
        if w.row is not None and w.name in mouse.errors
    }
    planned = track_items(config, mouse.manifest, mouse.report.tracks)
    fresh = [w for w in planned if selected(w, config.only)]
    for work in fresh:
        assert isinstance(work, TrackWork) and work.row is not None
        if work.row.line in errors_by_line:
            mouse.errors[work.name] = errors_by_line[work.row.line]
    mouse.items = [w for w in mouse.items if not isinstance(w, TrackWork)] + fresh
    if any(isinstance(w, QcWork) for w in mouse.items):  # named by the resolved suffixes
        kept = [w for w in mouse.items if not isinstance(w, QcWork)]
        others = [w for w in kept if not isinstance(w, TrackWork)] + planned  # selected or not
        qc = [w for w in qc_items(config, mouse.mouse_id, others) if selected(w, config.only)]
        mouse.items = kept + qc


def selected(work: Work, only: tuple[str, ...]) -> bool:
    """Whether ``work`` belongs to the slice ``only`` (empty: everything).

    Selectors: ``histology``, ``ephys``, ``tracks``, ``channel_regions`` (the last three
    optionally with ``:<recording>/<probe>``), ``qc``, ``probe:<recording>/<probe>`` (its ephys,
    tracks and regions), ``mouse:<id>``; an item is selected when one of the selectors of its
    kind (or of its mouse) matches and no ``mouse:`` selector excludes it.
    """
    if not only:
        return True
    mice = [s.split(":", 1)[1] for s in only if s.startswith("mouse:")]
    if mice and work.mouse_id not in mice:
        return False
    kinds = [s for s in only if not s.startswith("mouse:")]
    if not kinds:
        return True
    probe = ""
    if isinstance(work, TrackWork) and work.row is not None:
        probe = f"{work.row.recording_id}/{work.row.ephys_collection}"
    elif hasattr(work, "probe"):
        probe = work.probe  # type: ignore[attr-defined]
    for selector in kinds:
        kind, _, target = selector.partition(":")
        if kind == "probe" and work.kind in PROBE_KINDS and target == probe:
            return True
        if kind == work.kind and (not target or target == probe):
            return True
    return False
