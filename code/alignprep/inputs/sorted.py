"""Sorted and raw ecephys discovery for one (recording_id, ephys_collection) (inputs.md §9).

The sorted asset ``data_root/<sorted_recording>`` holds SortingAnalyzers in ``postprocessed/``
(zarr, or ``binary_folder`` without suffix; ``_group<K>`` per shank, K 0-based) and optional
labelled sortings in ``curated/``. The raw session (``ecephys_clipped`` Open Ephys metadata and
``ecephys_compressed`` zarrs, optionally under ``ecephys/``) is found by name, else by the sorted
asset's ``data_description.json``. Streams come from neo ``openephysbinary``. Nothing is written.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from alignprep.errors import InputError

REQUIRED_EXTENSIONS = ("templates", "spike_amplitudes", "spike_locations", "quality_metrics")
STREAM_RE = re.compile(r"^Record Node \d+#[^.]+\.(.+?)(-AP|-LFP)?$")
ANALYZER_RE = re.compile(
    r"^experiment(?P<experiment>\d+)_(?P<stream>.+?)(?:_recording(?P<recording>\d*))?"
    r"(?:_group(?P<group>\d+))?(?P<zarr>\.zarr)?$"
)
ZARR_RE = re.compile(r"^experiment(?P<experiment>\d+)_(?P<stream>.+)\.zarr$")


@dataclass(frozen=True)
class AnalyzerRef:
    """One SortingAnalyzer folder of a probe (one shank group, or the whole probe)."""

    path: Path
    experiment: int
    recording: int | None
    group: int | None  # K of ``_group<K>``; None for a single analyzer
    curated: Path | None  # ``curated/<same name>`` when present

    @property
    def format(self) -> str:
        """``zarr`` or ``binary_folder``."""
        return "zarr" if self.path.suffix == ".zarr" else "binary_folder"


@dataclass(frozen=True)
class RawSession:
    """A raw Open Ephys session: where its metadata and compressed zarrs are."""

    path: Path  # the folder given to the converter as ``session_folder``
    clipped: Path
    compressed: Path


@dataclass(frozen=True)
class ProbeStreams:
    """The neo stream(s) of one probe and their compressed zarr per experiment (block)."""

    stream: str  # AP (NP1.0) or wideband (NP2.0) stream
    lfp_stream: str | None  # NP1.0 LFP partner; None for NP2.0 or when absent
    zarrs: tuple[Path, ...]  # AP / wideband, one per experiment, ascending
    lfp_zarrs: tuple[Path, ...]  # NP1.0 LFP, same experiments (empty when missing)

    @property
    def is_np1(self) -> bool:
        """An NP1.0-style split AP/LFP stream (named ``...-AP``)."""
        return self.stream.endswith("-AP")


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


def probe_token(stream: str) -> str | None:
    """Probe token of a neo stream name (``...Neuropix-PXI-100.ProbeA-AP`` -> ``ProbeA``)."""
    match = STREAM_RE.match(stream)
    return match.group(1) if match else None


def raw_session_dirs(folder: Path) -> RawSession | None:
    """The clipped/compressed folders of a raw session, ``ecephys/`` layout included."""
    for base in (folder, folder / "ecephys"):
        if (base / "ecephys_clipped").is_dir():
            return RawSession(folder, base / "ecephys_clipped", base / "ecephys_compressed")
    return None


def _source_names(sorted_asset: Path) -> list[str]:
    """Raw session names recorded in the sorted asset's ``data_description.json``."""
    path = sorted_asset / "data_description.json"
    if not path.is_file():
        return []
    try:
        desc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable data_description.json: {exc}", file=path) from None
    names = []
    source = desc.get("source_data")
    if isinstance(source, list) and source:
        first = source[0]
        names.append(first.get("name") if isinstance(first, dict) else first)
    names.append(desc.get("input_data_name"))
    return [str(n) for n in names if n]


def find_raw_session(data_root: Path, recording_id: str, sorted_asset: Path) -> RawSession:
    """``data_root/<recording_id>``, else the asset named by ``data_description.json``.

    Raises
    ------
    InputError
        When no folder with ``ecephys_clipped`` matches, or several do.
    """
    by_name = raw_session_dirs(data_root / recording_id)
    if by_name is not None:
        return by_name
    wanted = _source_names(sorted_asset)
    candidates: list[str] = []
    matches: list[RawSession] = []
    for folder in sorted(p for p in data_root.iterdir() if p.is_dir()):
        session = raw_session_dirs(folder)
        if session is None:
            continue
        candidates.append(folder.name)
        own = folder / "data_description.json"
        own_name = None
        if own.is_file():
            try:
                own_name = json.loads(own.read_text(encoding="utf-8")).get("name")
            except (OSError, json.JSONDecodeError, AttributeError):
                own_name = None
        if folder.name in wanted or (own_name and own_name in wanted):
            matches.append(session)
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(
            f"several raw sessions match recording {recording_id!r}: "
            f"{[m.path.name for m in matches]}",
            file=sorted_asset,
        )
    raise InputError(
        f"no raw ecephys session for recording {recording_id!r}: looked for "
        f"{data_root / recording_id} and for assets named {wanted} (from data_description.json); "
        f"folders with ecephys_clipped: {candidates or 'none'}",
        file=sorted_asset,
    )


def neo_streams(session: RawSession) -> tuple[list[str], int]:
    """Neuropixels stream names and the number of blocks (experiments) neo finds."""
    import spikeinterface.extractors as se

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            names, _ = se.get_neo_streams("openephysbinary", session.clipped)
            n_blocks = se.get_neo_num_blocks("openephysbinary", session.clipped)
    except Exception as exc:  # neo raises bare ValueError/KeyError/OSError on bad metadata
        raise InputError(f"cannot read Open Ephys metadata: {exc}", file=session.clipped) from None
    return [s for s in names if "Neuropix" in s], int(n_blocks)


def _experiment_zarrs(compressed: Path, stream: str) -> list[Path]:
    if not compressed.is_dir():
        return []
    found = []
    for path in compressed.iterdir():
        match = ZARR_RE.fullmatch(path.name)
        if match and match.group("stream") == stream:
            found.append((int(match.group("experiment")), path))
    return [p for _, p in sorted(found)]


def probe_streams(session: RawSession, collection: str, out_warnings: list[str]) -> ProbeStreams:
    """The AP/wideband (and NP1 LFP) stream of ``collection`` and its zarrs.

    Raises
    ------
    InputError
        No Neuropixels stream for the collection, or zarrs missing / not one per experiment.
    """
    names, n_blocks = neo_streams(session)
    mine = [
        s for s in names if "LFP" not in s and (s == collection or probe_token(s) == collection)
    ]
    if len(mine) != 1:
        what = "no" if not mine else f"{len(mine)}"
        raise InputError(
            f"{what} Neuropixels AP/wideband stream for ephys_collection {collection!r}; "
            f"streams found: {names or 'none'}",
            file=session.clipped,
        )
    stream = mine[0]
    zarrs = _experiment_zarrs(session.compressed, stream)
    if len(zarrs) != n_blocks:
        expected = session.compressed / f"experiment<N>_{stream}.zarr"
        raise InputError(
            f"raw stream {stream!r}: expected {n_blocks} compressed zarr(s) (one per Open Ephys "
            f"experiment) like {expected}, found {[p.name for p in zarrs] or 'none'}",
            file=session.compressed,
        )
    lfp_stream, lfp_zarrs = None, []
    if stream.endswith("-AP"):
        lfp_stream = stream[: -len("-AP")] + "-LFP"
        lfp_zarrs = _experiment_zarrs(session.compressed, lfp_stream)
        if stream.replace("AP", "LFP") != lfp_stream:
            out_warnings.append(
                f"{stream}: the converter derives the LFP stream as {stream.replace('AP', 'LFP')!r}"
                " (every 'AP' replaced) and will not find the LFP zarr"
            )
        if len(lfp_zarrs) != n_blocks:
            out_warnings.append(
                f"NP1.0 probe {collection!r}: LFP zarr(s) {session.compressed}/experiment<N>_"
                f"{lfp_stream}.zarr missing ({len(lfp_zarrs)} of {n_blocks} found); the converter "
                "then computes the LF-band RMS and power spectrum from the AP stream"
            )
    return ProbeStreams(stream, lfp_stream, tuple(zarrs), tuple(lfp_zarrs))


def find_analyzers(
    sorted_asset: Path, stream: str, out_warnings: list[str]
) -> tuple[AnalyzerRef, ...]:
    """The analyzers of one stream: one (experiment, recording), all its ``_group<K>``.

    When several (experiment, recording) pairs exist the first in numeric order is used (the
    converter sorts names as text, so ``experiment10`` would come before ``experiment2``).
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
            curated = sorted_asset / "curated" / path.name
            refs.append(
                AnalyzerRef(
                    path=path,
                    experiment=int(match.group("experiment")),
                    recording=int(rec) if rec else None,
                    group=None if group is None else int(group),
                    curated=curated if curated.exists() else None,
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


def missing_extensions(analyzer: Path) -> list[str]:
    """Required analyzer extensions (inputs.md §9) that ``analyzer`` lacks."""
    ext = analyzer / "extensions"
    return [name for name in REQUIRED_EXTENSIONS if not (ext / name).is_dir()]


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
    InputError
        Missing sorted asset, raw session, stream or zarr; an analyzer without a required
        extension; a surface-finding path without ``ecephys_clipped``.
    """
    notes: list[str] = []
    sorted_asset = data_root / sorted_recording
    if not sorted_asset.is_dir():
        raise InputError("sorted asset folder not found", file=sorted_asset)
    raw = find_raw_session(data_root, recording_id, sorted_asset)
    streams = probe_streams(raw, collection, notes)
    analyzers = find_analyzers(sorted_asset, streams.stream, notes)
    for ref in analyzers:
        missing = missing_extensions(ref.path)
        if missing:
            raise InputError(
                f"analyzer lacks required extension(s) {missing} (needs "
                f"{list(REQUIRED_EXTENSIONS)}; the converter would fail with AttributeError)",
                file=ref.path,
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


@dataclass(frozen=True)
class AnalyzerMeta:
    """What the normalisation needs from an analyzer, read without its extensions."""

    unit_ids: tuple[str, ...]
    channel_xy_um: np.ndarray  # (n_ch, 2), analyzer channel order
    contact_ids: tuple[str, ...] | None
    n_segments: int
    duration_s: float


@contextmanager
def _trusted_pickles() -> Iterator[None]:
    """Let numcodecs decode Pickle-encoded analyzer attributes (our own pipeline's assets)."""
    import numcodecs.pickles

    previous = getattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", False)
    numcodecs.pickles.ALLOW_UNSAFE_PICKLE_DECODE = True
    try:
        yield
    finally:
        numcodecs.pickles.ALLOW_UNSAFE_PICKLE_DECODE = previous


def analyzer_meta(ref: AnalyzerRef) -> AnalyzerMeta:
    """Unit ids, channel locations and contact ids of an analyzer (extensions not loaded)."""
    import spikeinterface as si

    try:
        with _trusted_pickles(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            analyzer = si.load_sorting_analyzer(ref.path, load_extensions=False)
    except Exception as exc:  # SpikeInterface raises many types on unreadable folders
        raise InputError(
            f"cannot open analyzer: {type(exc).__name__}: {exc}", file=ref.path
        ) from None
    xy = np.asarray(analyzer.get_channel_locations(), dtype=float)[:, :2]
    contact_ids = None
    try:
        ids = [str(c) for c in analyzer.get_probe().contact_ids]
        contact_ids = tuple(ids) if len(ids) == len(xy) and all(ids) else None
    except Exception:  # no probe, or a probe group: fall back to locations
        contact_ids = None
    return AnalyzerMeta(
        unit_ids=tuple(str(u) for u in analyzer.unit_ids),
        channel_xy_um=xy,
        contact_ids=contact_ids,
        n_segments=int(analyzer.get_num_segments()),
        duration_s=float(analyzer.get_total_duration()),
    )


def raw_duration_s(zarr: Path) -> float:
    """Duration of the longest segment of a compressed raw zarr (what the converter uses)."""
    import spikeinterface as si

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = si.read_zarr(zarr)
    except Exception as exc:  # zarr / codec errors
        raise InputError(f"cannot open raw zarr: {type(exc).__name__}: {exc}", file=zarr) from None
    return max(rec.get_duration(s) for s in range(rec.get_num_segments()))
