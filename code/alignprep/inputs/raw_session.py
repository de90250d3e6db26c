"""Raw ecephys sessions (Open Ephys, inputs.md §9): where a probe's continuous data is.

A raw session holds ``ecephys_clipped`` (Open Ephys metadata, clipped ``continuous.dat``) and
``ecephys_compressed`` (``experiment<N>_<neo stream>.zarr``, WavPack SpikeInterface zarrs),
optionally under ``ecephys/``. It is found by name (``data_root/<recording_id>``), else through
the sorted asset's ``data_description.json``. Streams come from neo ``openephysbinary``; only
``Neuropix`` streams are used. Nothing is written.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from alignprep.errors import InputError

STREAM_RE = re.compile(r"^Record Node \d+#[^.]+\.(.+?)(-AP|-LFP)?$")
ZARR_RE = re.compile(r"^experiment(?P<experiment>\d+)_(?P<stream>.+)\.zarr$")


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
