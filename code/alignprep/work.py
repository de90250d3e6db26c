"""Typed work and the one stage contract: ``stage.run(context, work) -> StageResult``.

Validation builds every work item once (:mod:`alignprep.orchestration.plan`); executors ship
items and results as plain picklable data, so a worker never reads the manifest or re-plans.
Each stage module exposes ``run(ctx, work)`` for its work type and returns a
:class:`StageResult`; packaging, provenance and the run report consume those results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np

    from .inputs.manifest import ManifestRow
    from .reads import Reads


class Status(StrEnum):
    """Outcome of one work item."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # finished in an earlier run; inputs, parameters and code unchanged


@dataclass(frozen=True)
class StageResult:
    """What a stage did with one work item."""

    name: str
    status: Status
    reason: str = ""
    seconds: float = 0.0
    fingerprint: str = ""  # of the parameters and code (reads.params_fingerprint)
    files: tuple[str, ...] = ()  # relative to the mouse folder
    inputs: dict[str, str] = field(default_factory=dict)  # what it read -> digest
    span: tuple[str, str] = ("", "")  # ISO start and end of the run that made its outputs
    warnings: tuple[str, ...] = ()
    mouse_id: str = ""
    stage: str = ""  # the stage kind ("histology", "ephys", "tracks", ...)
    detail: str = ""  # the stage's own word for the outcome when it says more ("no_spikes")


@dataclass(frozen=True)
class Work:
    """One unit of work of one mouse. ``name`` is its key in reports and the re-run state."""

    kind: ClassVar[str] = ""
    phase: ClassVar[int] = 0
    mouse_id: str
    name: str

    def params(self) -> dict[str, Any]:
        """What identifies the work besides its inputs (part of the re-run fingerprint)."""
        return {"kind": self.kind, "name": self.name}

    @property
    def needs(self) -> tuple[str, ...]:
        """Items of earlier phases whose outputs this one reads: when one of them fails in the
        run, this one fails without running, saying so."""
        return ()


HISTOLOGY_PARTS = ("channels", "atlas")  # phase 0; each channel's CCF-space QC is phase 1


@dataclass(frozen=True)
class HistologyWork(Work):
    """One part of a mouse's image-space volumes: ``channels`` (every channel resampled onto
    the output grid G) or ``atlas`` (the CCF template and labels warped onto G). The parts
    read different inputs, so two workers can make them at once."""

    kind: ClassVar[str] = "histology"
    phase: ClassVar[int] = 0
    part: str = "channels"


@dataclass(frozen=True)
class HistologyCcfWork(Work):
    """One channel's CCF-space QC volume, from that channel's image-space volume (phase 1)."""

    kind: ClassVar[str] = "histology"
    phase: ClassVar[int] = 1
    channel: str = ""
    registration: bool = False  # the registration channel (read in its pipeline geometry)

    @property
    def needs(self) -> tuple[str, ...]:
        return (histology_work_name("channels"),)


@dataclass(frozen=True)
class EphysWork(Work):
    """The ALF ephys of one probe folder (every manifest row that shares it)."""

    kind: ClassVar[str] = "ephys"
    phase: ClassVar[int] = 0
    recording_id: str = ""
    collection: str = ""
    sorted_recording: str = ""
    lines: tuple[int, ...] = ()
    ephys_shanks: tuple[int | None, ...] = ()
    surface_finding: str | None = None
    problem: str | None = None  # rows that disagree: the work fails with this reason

    @property
    def probe(self) -> str:
        """``<recording_id>/<ephys_collection>`` for logs and reports."""
        return f"{self.recording_id}/{self.collection}"

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "recording_id": self.recording_id,
            "collection": self.collection,
            "sorted_recording": self.sorted_recording,
            "ephys_shanks": list(self.ephys_shanks),
            "surface_finding": self.surface_finding,
        }


@dataclass(frozen=True)
class ComputedTrack:
    """One row's picks in every frame: validation computes them, the track item writes them."""

    frames: dict[str, np.ndarray]
    warnings: tuple[str, ...] = ()
    reads: Reads | None = None  # what computing them read: the track item's re-run inputs


@dataclass(frozen=True)
class TrackWork(Work):
    """One manifest row's track, with the GUI shank suffix of its probe folder."""

    kind: ClassVar[str] = "tracks"
    phase: ClassVar[int] = 1
    row: ManifestRow | None = None
    suffix: str = ""
    problem: str | None = None  # cannot be planned (suffix, collision): fails with this reason
    # the picks validation computed (None: the stage computes them); not part of the identity
    computed: ComputedTrack | None = field(default=None, compare=False, repr=False)

    def params(self) -> dict[str, Any]:
        assert self.row is not None
        row = {k: v for k, v in asdict(self.row).items() if k != "line"}
        return {"kind": self.kind, "row": row, "suffix": self.suffix}


@dataclass(frozen=True)
class ChannelRegionsWork(Work):
    """The channel and unit regions of one probe folder from its histology tracks (after the
    tracks: it reads their ``xyz_picks``), for every manifest row of that folder."""

    kind: ClassVar[str] = "channel_regions"
    phase: ClassVar[int] = 2
    recording_id: str = ""
    collection: str = ""
    rows: tuple[ManifestRow, ...] = ()

    @property
    def probe(self) -> str:
        """``<recording_id>/<ephys_collection>`` for logs and reports."""
        return f"{self.recording_id}/{self.collection}"

    @property
    def needs(self) -> tuple[str, ...]:
        return (probe_work_name(self.recording_id, self.collection),)  # its channel table

    def params(self) -> dict[str, Any]:
        rows = [asdict(r) for r in self.rows]  # lines too: the outputs name them
        return {"kind": self.kind, "probe": self.probe, "rows": rows}


@dataclass(frozen=True)
class QcTrack:
    """A planned track as the QC figures name it: its output stem and its probe folder."""

    stem: str  # histology_track_id + GUI shank suffix: the track_data file names
    recording_id: str
    collection: str
    suffix: str  # the GUI shank suffix of the probe folder's files ("" or "_shank<N>")
    light_sheet: bool = True  # traced on the mouse's SmartSPIM image (else a tool's CCF track)


QC_SCOPES = ("mouse", "tracks", "probe")


@dataclass(frozen=True)
class QcWork(Work):
    """QC figures, from the run's own outputs (:mod:`alignprep.stages.qc`).

    ``scope`` ``mouse``: the registration overlays and the tracks in the CCF (after the
    histology parts and the tracks); ``tracks``: every track on each channel (after the channels
    and the tracks: the channels are read once for all of them); ``probe``: one probe folder's
    summaries (after its ephys and channel regions). An item waits for the items named in
    ``after`` and draws what they wrote: one that failed leaves a gap and a note, never a failed
    QC item.
    """

    kind: ClassVar[str] = "qc"
    phase: ClassVar[int] = 3
    scope: str = "mouse"
    tracks: tuple[QcTrack, ...] = ()  # mouse and tracks: every planned track; probe: its own
    after: tuple[str, ...] = ()
    probe: str = ""  # ``<recording_id>/<collection>`` of a probe-scope item

    def params(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scope": self.scope,
            "probe": self.probe,
            "tracks": [asdict(t) for t in self.tracks],
        }


@dataclass(frozen=True)
class RunContext:
    """What a stage without a mouse context needs (ephys): the config and its thread budget."""

    config: Any  # PipelineConfig
    n_threads: int = 1


def histology_work_name(part: str) -> str:
    """The report name of a histology part: ``histology`` (the channels), ``histology atlas``."""
    return "histology" if part == "channels" else f"histology {part}"


def histology_ccf_work_name(channel: str) -> str:
    """The report name of one channel's CCF-space QC volume."""
    return f"histology ccf {channel}"


def probe_work_name(recording_id: str, collection: str) -> str:
    """The report name of a probe folder's ephys work."""
    return f"ephys {recording_id}/{collection}"


def channel_regions_work_name(recording_id: str, collection: str) -> str:
    """The report name of a probe folder's channel regions work."""
    return f"channel regions {recording_id}/{collection}"


def qc_work_name(scope: str, probe: str = "") -> str:
    """``qc mouse``, ``qc tracks``, ``qc probe <recording>/<collection>``."""
    return f"qc probe {probe}" if scope == "probe" else f"qc {scope}"


def track_work_name(row: ManifestRow, suffix: str) -> str:
    """The report name of a track: ``track <recording>/<collection>/<track><suffix>``."""
    return f"track {row.recording_id}/{row.ephys_collection}/{row.histology_track_id}{suffix}"
