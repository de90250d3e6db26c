"""Sorted and raw ecephys discovery for one (recording_id, ephys_collection) (inputs.md §9).

The sorted asset ``data_root/<sorted_recording>`` holds SortingAnalyzers in ``postprocessed/``
(``<rec>.zarr``, or ``<rec>/`` as ``binary_folder``; ``_group<K>`` per shank, K 0-based) and
optional labelled sortings in ``curated/<rec>/`` (the AIND results collector's name, without
``.zarr``; ``curated/<rec>.zarr`` is accepted too). A failed sort leaves the postprocessing
capsule's ``placeholder.npy`` where the analyzer should be: the probe is then refused
(:class:`FailedSortError`). The raw session (``ecephys_clipped`` Open Ephys metadata and
``ecephys_compressed`` zarrs, optionally under ``ecephys/``) is found by name, else by the sorted
asset's ``data_description.json``. Streams come from neo ``openephysbinary``. Nothing is written;
the analyzers themselves are read by :mod:`.analyzers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from alignprep.errors import InputError
from alignprep.inputs.locate import confine
from alignprep.reads import note_listing, note_tree

from .raw_session import (
    ProbeStreams,
    RawSession,
    find_raw_session,
    neo_streams,
    probe_streams,
    probe_token,
    raw_duration_s,
    raw_session_dirs,
)

__all__ = [  # the raw-session names are re-exported: one import for the ephys stage
    "EXTENSION_USES",
    "REQUIRED_EXTENSIONS",
    "AnalyzerRef",
    "FailedSortError",
    "ProbeInputs",
    "ProbeStreams",
    "RawSession",
    "discover_probe",
    "find_analyzers",
    "find_raw_session",
    "neo_streams",
    "probe_streams",
    "probe_token",
    "raw_duration_s",
    "raw_session_dirs",
]

#: What each analyzer extension feeds in the probe folder.
EXTENSION_USES = {
    "templates": "clusters.waveforms, clusters.peakToTrough and clusters.channels",
    "spike_amplitudes": "spikes.amps",
    "spike_locations": "spikes.depths",
    "quality_metrics": "the quality-metric columns of clusters.metrics.csv and the IBL label",
}
#: Without these no ALF file they feed can be computed: the analyzer is refused.
REQUIRED_EXTENSIONS = ("templates", "spike_amplitudes")
#: Without these the outputs they feed are computed another way (see .analyzers), with a note.
OPTIONAL_EXTENSIONS = ("spike_locations", "quality_metrics")
PLACEHOLDER = "placeholder.npy"
#: Raw and sorted files above this size are fingerprinted by size and mtime, not content: raw
#: ephys is tens of GB per session and re-hashing it on every run would cost minutes.
BULK_CONTENT_LIMIT_BYTES = 16 << 20
ANALYZER_RE = re.compile(
    r"^experiment(?P<experiment>\d+)_(?P<stream>.+?)(?:_recording(?P<recording>\d*))?"
    r"(?:_group(?P<group>\d+))?(?P<zarr>\.zarr)?$"
)


class FailedSortError(InputError):
    """The sorted asset records a failed sort for the probe: skip it, do not guess."""


@dataclass(frozen=True)
class AnalyzerRef:
    """One SortingAnalyzer folder of a probe (one shank group, or the whole probe)."""

    path: Path
    experiment: int
    recording: int | None
    group: int | None  # K of ``_group<K>``; None for a single analyzer
    curated: Path | None  # ``curated/<rec>`` (or ``curated/<rec>.zarr``) when present
    placeholder: bool = False  # a failed sort's ``placeholder.npy`` instead of an analyzer
    probe: str = ""  # ``<recording_id>/<ephys_collection>``, for messages

    @property
    def format(self) -> str:
        """``zarr`` or ``binary_folder``."""
        return "zarr" if self.path.suffix == ".zarr" else "binary_folder"

    @property
    def where(self) -> str:
        """Probe and shank group, for messages (the file is named separately)."""
        group = "single analyzer" if self.group is None else f"shank group {self.group}"
        return f"{self.probe}, {group}" if self.probe else group


@dataclass(frozen=True)
class ProbeInputs:
    """Everything the ephys stage reads for one probe folder."""

    recording_id: str
    collection: str
    sorted_asset: Path
    raw: RawSession
    streams: ProbeStreams
    analyzers: tuple[AnalyzerRef, ...]  # in group order; empty = no sorting output
    surface: RawSession | None
    surface_streams: ProbeStreams | None
    warnings: tuple[str, ...]

    @property
    def raw_zarrs(self) -> tuple[Path, ...]:
        """Every compressed zarr the continuous extraction reads (main and surface)."""
        out = [*self.streams.zarrs, *self.streams.lfp_zarrs]
        if self.surface_streams is not None:
            out += [*self.surface_streams.zarrs, *self.surface_streams.lfp_zarrs]
        return tuple(out)


def is_placeholder(folder: Path) -> bool:
    """A failed sort's output: ``placeholder.npy`` and no analyzer metadata beside it."""
    markers = (".zattrs", ".zgroup", "spikeinterface_info.json", "settings.json")
    return (folder / PLACEHOLDER).is_file() and not any((folder / m).exists() for m in markers)


def curated_path(sorted_asset: Path, analyzer: Path) -> Path | None:
    """The curated sorting of ``postprocessed/<rec>[.zarr]``: ``curated/<rec>[.zarr]``.

    Raises
    ------
    InputError
        When both exist (which one labels the analyzer would be a guess).
    """
    stem = analyzer.name[: -len(".zarr")] if analyzer.name.endswith(".zarr") else analyzer.name
    found = [p for p in (sorted_asset / "curated" / stem, sorted_asset / "curated" / f"{stem}.zarr")
             if p.exists()]  # fmt: skip
    if len(found) > 1:
        raise InputError(
            f"two curated sortings for one analyzer: {found[0].name} and {found[1].name}; "
            "expected one curated/<rec> folder",
            file=sorted_asset / "curated",
        )
    return found[0] if found else None


def find_analyzers(
    sorted_asset: Path, stream: str, out_warnings: list[str]
) -> tuple[AnalyzerRef, ...]:
    """The analyzers of one stream: one (experiment, recording), all its ``_group<K>``.

    When several (experiment, recording) pairs exist the first in numeric order is used (the
    converter sorts names as text, so ``experiment10`` would come before ``experiment2``).
    Placeholders of failed sorts are returned too, flagged.
    """
    post = sorted_asset / "postprocessed"
    refs: list[AnalyzerRef] = []
    if post.is_dir():
        for path in sorted(post.iterdir()):
            match = ANALYZER_RE.fullmatch(path.name)
            if not path.is_dir() or not match or match.group("stream") != stream:
                continue
            rec = match.group("recording")
            group = match.group("group")
            refs.append(
                AnalyzerRef(
                    path=path,
                    experiment=int(match.group("experiment")),
                    recording=int(rec) if rec else None,
                    group=None if group is None else int(group),
                    curated=curated_path(sorted_asset, path),
                    placeholder=is_placeholder(path),
                )
            )
    if not refs:
        return ()
    keys = sorted({(r.experiment, r.recording or 0) for r in refs})
    chosen = [r for r in refs if (r.experiment, r.recording or 0) == keys[0]]
    if len(keys) > 1:
        out_warnings.append(
            f"{stream}: analyzers of several experiment/recording pairs {keys}; using "
            f"experiment{keys[0][0]} recording{keys[0][1]} only"
        )
    grouped = [r for r in chosen if r.group is not None]
    if grouped and len(grouped) != len(chosen):
        out_warnings.append(f"{stream}: ignoring the ungrouped analyzer beside _group<K> ones")
        chosen = grouped
    return tuple(sorted(chosen, key=lambda r: -1 if r.group is None else r.group))


def missing_extensions(analyzer: Path, names: tuple[str, ...] = REQUIRED_EXTENSIONS) -> list[str]:
    """The extensions of ``names`` that ``analyzer`` has no folder / zarr group for."""
    ext = analyzer / "extensions"
    return [name for name in names if not (ext / name).is_dir()]


def _check_placeholders(refs: tuple[AnalyzerRef, ...], collection: str) -> None:
    failed = [r for r in refs if r.placeholder]
    if failed:
        groups = ", ".join(r.where for r in failed)
        raise FailedSortError(
            f"spike sorting failed for {collection} ({groups}): the folder holds only the AIND "
            f"pipeline's {PLACEHOLDER}, written instead of a SortingAnalyzer when sorting or "
            "postprocessing fails; expected postprocessed/<rec>.zarr (zarr) or postprocessed/"
            "<rec>/ (binary_folder) with a SortingAnalyzer. The probe is skipped",
            file=failed[0].path,
        )


def discover_probe(
    data_root: Path,
    recording_id: str,
    sorted_recording: str,
    collection: str,
    ephys_shanks: tuple[int | None, ...] = (),
    surface_finding: Path | None = None,
) -> ProbeInputs:
    """Find and check every ephys input of one probe folder.

    A probe without analyzers is not an error here (the stage writes ``sorting_error.txt``).

    Raises
    ------
    FailedSortError
        A placeholder of a failed sort stands where an analyzer of the probe should be.
    InputError
        Missing sorted asset, raw session, stream or zarr; an analyzer without a required
        extension; a surface-finding path without ``ecephys_clipped``; two curated sortings
        for one analyzer.
    """
    notes: list[str] = []
    sorted_asset = data_root / sorted_recording
    if not sorted_asset.is_dir():
        raise InputError("sorted asset folder not found", file=sorted_asset)
    confine(sorted_asset, data_root, "sorted_recording")
    note_tree(sorted_asset, BULK_CONTENT_LIMIT_BYTES)
    note_listing(data_root, recording_id)  # the raw session by name, else by content below
    raw = find_raw_session(data_root, recording_id, sorted_asset)
    if raw.path.name != recording_id:
        note_listing(data_root, "*")
    confine(raw.path, data_root, "raw ecephys session")
    note_tree(raw.path, BULK_CONTENT_LIMIT_BYTES)
    streams = probe_streams(raw, collection, notes)
    probe = f"{recording_id}/{collection}"
    analyzers = tuple(
        replace(r, probe=probe) for r in find_analyzers(sorted_asset, streams.stream, notes)
    )
    _check_placeholders(analyzers, collection)
    for ref in analyzers:
        for path in (ref.path, ref.curated):
            if path is not None:
                confine(path, data_root, f"analyzer of {probe}")
        missing = missing_extensions(ref.path)
        if missing:
            needs = "; ".join(f"{m} -> {EXTENSION_USES[m]}" for m in missing)
            raise InputError(
                f"{ref.where}: analyzer lacks required extension(s) {missing} ({needs}); "
                f"required: {list(REQUIRED_EXTENSIONS)}",
                file=ref.path,
            )
        for name in missing_extensions(ref.path, OPTIONAL_EXTENSIONS):
            notes.append(
                f"{ref.where}: analyzer {ref.path.name} lacks extension {name!r} (feeds "
                f"{EXTENSION_USES[name]}); that output is computed without it"
            )
    groups = {r.group for r in analyzers if r.group is not None}
    if analyzers and groups:
        for shank in sorted({s for s in ephys_shanks if s is not None} - groups):
            notes.append(
                f"{collection}: manifest ephys_shank {shank} has no _group{shank} analyzer in "
                f"{sorted_asset / 'postprocessed'}; that shank has no spikes"
            )
    surface, surface_streams = None, None
    if surface_finding is not None:
        confine(surface_finding, data_root, "surface_finding")
        note_tree(surface_finding, BULK_CONTENT_LIMIT_BYTES)
        surface = raw_session_dirs(surface_finding)
        if surface is None:
            raise InputError(
                "surface_finding session has no ecephys_clipped folder", file=surface_finding
            )
        surface_streams = probe_streams(surface, collection, notes)
    return ProbeInputs(
        recording_id=recording_id,
        collection=collection,
        sorted_asset=sorted_asset,
        raw=raw,
        streams=streams,
        analyzers=analyzers,
        surface=surface,
        surface_streams=surface_streams,
        warnings=tuple(notes),
    )
