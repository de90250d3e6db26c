"""Channel brain regions before alignment, headless: IBL's "Histology track" estimate per probe.

For each probe folder and GUI shank of its manifest rows: the shank's IBL bregma picks
(``xyz_picks{sfx}.json``, written by the track stage), its channels (``channels.localCoordinates``
x-group, as the GUIs group shanks), IBL's placement rule (:mod:`alignprep.space.histology_track`),
the region of every channel from the run's own lateralized CCF labels, the insertion as iblatlas
``Insertion.from_track`` defines it (:mod:`alignprep.space.insertion`), each unit's region from
its peak channel (``clusters.channels``), and a region-along-track table.

Everything goes into the folder ``regions_from_histology_track/`` inside the probe folder
(:func:`alignprep.outputs.channel_regions_dir`): no file name there matches what the GUIs or
AIND's channel ingestion read (``channel_locations*``, ``ccf_channel_locations*``,
``prev_alignments*``, ``*xyz_picks*``), and a subfolder is a separate ALF collection, so its
``channels.*`` / ``clusters.*`` never merge with the probe folder's own objects, where loaders
would read ``brainLocationIds`` as a resolved alignment. The folder is built beside its final
place and swapped in whole; a folder that yields nothing has the old one removed.

One bad shank never stops the others: its error is recorded and the good shanks are written.
The folder-level ALF datasets cover every channel, so they are written only when every GUI
shank of the folder was placed.
"""

from __future__ import annotations

import io
import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..inputs.manifest import ManifestRow
from ..inputs.references import CcfLabels
from ..logs import get_logger
from ..space import atlas
from ..space.histology_track import TIP_SIZE_UM, OrderedTrack, order_track
from ..space.insertion import insertion_from_track
from ..work import ChannelRegionsWork, StageResult, Status
from . import region_tables as rt
from .context import MouseContext
from .shanks import suffix_from_channels, x_groups

log = get_logger("stages.channel_regions")

# What the stage reads from a probe folder besides the picks (written by the ephys stage).
LOCAL_COORDINATES = "channels.localCoordinates.npy"
SHANK_IND = "channels.shankInd.npy"
CLUSTER_CHANNELS = "clusters.channels.npy"
CLUSTER_METRICS = "clusters.metrics.csv"

DESCRIPTION = (
    "First estimate of where each channel and unit sits, from the histology track alone (IBL's "
    "'Histology track' rule: channels placed along the picks by their axial position + 200 um "
    "tip). Not an ephys alignment: no GUI alignment went into it."
)


@dataclass
class ShankResult:
    """Outcome of one GUI shank of a probe folder (all the manifest lines that map to it)."""

    suffix: str
    lines: tuple[int, ...]
    status: str  # "ok" | "failed"
    reason: str = ""
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class ChannelRegionsResult:
    """Outcome of one probe folder.

    ``ok``: every shank of its rows was placed. ``failed``: the folder or at least one shank
    failed (the good shanks' files are still written and listed). ``skipped``: the folder has
    no channel table (ephys not extracted), nothing written. What it reads from the probe
    folder is :func:`upstream_files` (their digests are its re-run fingerprint).
    """

    probe_dir: Path
    status: str
    reason: str = ""
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    shanks: list[ShankResult] = field(default_factory=list)


# --- reading the probe folder ----------------------------------------------------------------


def _load_npy(path: Path, expected: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise InputError(f"unreadable .npy ({exc}); expected {expected}", file=path) from None


def read_local_coordinates(probe: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``channels.localCoordinates`` (n, 2) um and ``channels.shankInd`` (zeros when absent).

    None when the folder has no channel table; ``InputError`` when it has no usable y.
    """
    path = probe / LOCAL_COORDINATES
    if not path.is_file():
        return None
    xy = _load_npy(path, "(n_channels, 2) um")
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0 or xy.dtype.kind not in "iuf":
        raise InputError(
            f"shape {xy.shape} dtype {xy.dtype}: expected (n_channels, 2) numbers, x and y um "
            "(y = axial position along the shank, needed to place channels along the track)",
            file=path,
        )
    if not np.all(np.isfinite(xy)):
        rows = np.flatnonzero(~np.all(np.isfinite(xy), axis=1))
        raise InputError(f"rows {rows[:10].tolist()} are not finite; expected um", file=path)
    shank_path = probe / SHANK_IND
    shank = np.zeros(len(xy), dtype=np.int64)
    if shank_path.is_file():
        shank = _load_npy(shank_path, f"({len(xy)},) shank indices")
    if shank.shape != (len(xy),):
        raise InputError(
            f"shape {shank.shape}; expected ({len(xy)},) like the channels", file=shank_path
        )
    return xy.astype(float), shank


def read_units(probe: Path, n_channels: int) -> tuple[rt.Units | None, list[str]]:
    """Peak channel and IBL good label of every cluster (None when the folder has no clusters)."""
    path = probe / CLUSTER_CHANNELS
    if not path.is_file():
        return None, []
    peak = _load_npy(path, "(n_clusters,) rows of channels.*")
    if peak.ndim != 1 or peak.dtype.kind not in "iu" or (peak.size and peak.min() < 0):
        raise InputError(f"shape {peak.shape} dtype {peak.dtype}: expected rows >= 0", file=path)
    if peak.size and peak.max() >= n_channels:
        raise InputError(
            f"peak channel {int(peak.max())} is past the {n_channels} rows of channels.*",
            file=path,
        )
    metrics_path = probe / CLUSTER_METRICS
    if not metrics_path.is_file():
        return rt.Units(peak.astype(np.int64), None), [
            "no clusters.metrics.csv: good units unknown"
        ]
    try:
        metrics = pd.read_csv(metrics_path)
    except (ValueError, OSError) as exc:  # pandas' parser errors are ValueErrors
        raise InputError(f"unreadable CSV ({exc})", file=metrics_path) from None
    if len(metrics) != len(peak):
        raise InputError(
            f"{len(metrics)} rows; expected {len(peak)} (one per cluster)", file=metrics_path
        )
    if "label" not in metrics.columns:
        return rt.Units(peak.astype(np.int64), None), [
            f"{metrics_path.name} has no IBL 'label' column: good units unknown"
        ]
    good = pd.to_numeric(metrics["label"], errors="coerce").to_numpy() == 1
    return rt.Units(peak.astype(np.int64), good), []


def read_picks(path: Path) -> np.ndarray:
    """The ``xyz_picks`` of an IBL pick file, (n, 3) bregma um."""
    if not path.is_file():
        raise InputError("missing: the track stage writes it (did that track fail?)", file=path)
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise InputError(f"not JSON ({exc})", file=path) from None
    picks = obj.get("xyz_picks") if isinstance(obj, dict) else None
    try:
        arr = np.asarray(picks, dtype=float)
    except (TypeError, ValueError):
        arr = np.zeros((0,))
    if arr.ndim != 2 or arr.shape[1] != 3 or not np.all(np.isfinite(arr)):
        raise InputError(
            "expected a list of [x, y, z] numbers (IBL bregma um)", file=path, key="xyz_picks"
        )
    return arr


# --- one shank -------------------------------------------------------------------------------


def outside_volume(labels: CcfLabels, bregma_um: np.ndarray) -> np.ndarray:
    """Which points fall outside the CCF label volume (nearest voxel off the grid)."""
    ccf = atlas.ccf_um_to_ccf_lps_mm(atlas.bregma_um_to_ccf_um(bregma_um))
    idx = np.rint(labels.header.physical_to_index(ccf))
    return ~np.all((idx >= 0) & (idx < np.asarray(labels.header.size)), axis=1)


def place_shank(
    labels: CcfLabels, picks_path: Path, gui_shank: int, rows: np.ndarray, xy_um: np.ndarray
) -> tuple[rt.ShankChannels, OrderedTrack, dict[str, Any] | None]:
    """Channels of one shank along its picks; ``InputError`` for a track the rule cannot use."""
    picks = read_picks(picks_path)
    outside = outside_volume(labels, picks)
    if outside.any():
        raise InputError(
            f"picks {np.flatnonzero(outside).tolist()} (0-based) lie outside the CCF label volume "
            f"({labels.header.size} voxels of 25 um); expected IBL bregma um inside it",
            file=picks_path,
        )
    try:
        track = order_track(picks)
    except ValueError as exc:
        raise InputError(str(exc), file=picks_path, key="xyz_picks") from None
    shank = rt.shank_channels(track, gui_shank, rows, xy_um, labels.ids_at)
    insertion = insertion_from_track(track.picks_um, labels.compact, labels.unique_labels)
    return shank, track, None if insertion is None else insertion.to_json()


def _shank_files(
    probe: Path,
    suffix: str,
    shank: rt.ShankChannels,
    track: OrderedTrack,
    insertion: dict[str, Any] | None,
    units: rt.Units | None,
    rows: list[ManifestRow],
) -> dict[Path, bytes]:
    header = {
        "description": DESCRIPTION,
        "probe_folder": f"{probe.parent.name}/{probe.name}",
        "picks_file": outputs.picks_paths(probe, suffix)["bregma"].name,
        "manifest_lines": [r.line for r in rows],
        "histology_track_ids": sorted({r.histology_track_id for r in rows}),
        "tip_size_um": TIP_SIZE_UM,
        "frames": {
            "bregma_um": "IBL bregma um: x = ML right+, y = AP anterior+, z = DV dorsal+",
            "ccf_um": "CCF um (ML right+, AP posterior+, DV ventral+) from the corner voxel",
        },
        "insertion": insertion,
    }
    doc = rt.shank_document(shank, track, units, header)
    table = rt.region_runs(shank, units)
    paths = outputs.channel_regions_paths(probe, suffix)
    return {
        paths["channels"]: outputs.json_bytes(doc),
        paths["regions"]: table.to_csv(index=False, lineterminator="\n").encode("utf-8"),
    }


# --- one probe folder ------------------------------------------------------------------------


def regions_for_probe(
    labels: CcfLabels, probe_dir: Path, rows: list[ManifestRow]
) -> ChannelRegionsResult:
    """Compute and write the regions of one probe folder (never raises for bad input)."""
    t0_s = time.perf_counter()
    probe = Path(probe_dir)
    res = ChannelRegionsResult(probe, "ok")
    content: dict[Path, bytes] = {}
    try:
        table = read_local_coordinates(probe)
        if table is None:
            res.status = "skipped"
            res.reason = f"no {LOCAL_COORDINATES} in {probe} (ephys not extracted)"
        else:
            content = _compute(labels, probe, rows, table, res)
    except InputError as exc:
        res.status, res.reason = "failed", str(exc)
    try:
        res.files = _commit(probe, content)
    except OSError as exc:
        res.status, res.reason, res.files = "failed", f"writing {probe}: {exc}", []
        for shank in res.shanks:
            shank.files = []
    res.seconds = time.perf_counter() - t0_s
    for w in res.warnings:
        log.warning("%s: %s", probe, w)
    if res.status == "failed":
        log.error("%s: channel regions failed: %s", probe, res.reason)
    return res


def _compute(
    labels: CcfLabels,
    probe: Path,
    rows: list[ManifestRow],
    table: tuple[np.ndarray, np.ndarray],
    res: ChannelRegionsResult,
) -> dict[Path, bytes]:
    xy, shank_ind = table
    units, notes = read_units(probe, len(xy))
    res.warnings += notes
    groups = x_groups(xy[:, 0])
    by_suffix: dict[str, list[ManifestRow]] = defaultdict(list)
    failures = []
    for row in sorted(rows, key=lambda r: r.line):
        try:
            by_suffix[suffix_from_channels(xy[:, 0], shank_ind, row.ephys_shank)].append(row)
        except ValueError as exc:
            res.shanks.append(ShankResult("", (row.line,), "failed", str(exc)))
            failures.append(f"line {row.line}: {exc}")
    content: dict[Path, bytes] = {}
    placed: list[rt.ShankChannels] = []
    for suffix, shank_rows in by_suffix.items():
        gui_shank = int(suffix.removeprefix("_shank")) - 1 if suffix else 0
        sr = ShankResult(suffix, tuple(r.line for r in shank_rows), "ok")
        picks_path = outputs.picks_paths(probe, suffix)["bregma"]
        try:
            channel_rows = np.flatnonzero(groups == gui_shank)
            shank, track, insertion = place_shank(labels, picks_path, gui_shank, channel_rows, xy)
            if insertion is None:
                sr.warnings.append("the fitted track line does not cross the brain surface")
            files = _shank_files(probe, suffix, shank, track, insertion, units, shank_rows)
            content |= files
            sr.files = sorted(files)
            placed.append(shank)
            n_beyond = int(shank.beyond_track.sum())
            if n_beyond:
                sr.warnings.append(f"{n_beyond} channel(s) lie beyond the picked track")
        except (InputError, ValueError) as exc:  # ValueError: ids unknown to BrainRegions
            sr.status, sr.reason = "failed", str(exc)
            failures.append(f"shank{suffix or ' (single)'}: {exc}")
        res.shanks.append(sr)
        res.warnings += [f"shank{suffix}: {w}" for w in sr.warnings]
    if failures:
        res.status, res.reason = "failed", "; ".join(failures)
    missing = sorted(set(np.unique(groups).tolist()) - {s.gui_shank for s in placed})
    if placed and not missing:
        arrays = rt.alf_arrays(len(xy), placed, units)
        content |= {
            outputs.channel_regions_dir(probe) / n: _npy_bytes(a) for n, a in arrays.items()
        }
    elif placed:
        res.warnings.append(
            f"no ALF datasets: GUI shank(s) {[g + 1 for g in missing]} have no placed track "
            "(they cover every channel of the folder)"
        )
    return content


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _commit(probe: Path, content: dict[Path, bytes]) -> list[Path]:
    """Swap the new folder in (or remove the old one when there is nothing to write)."""
    target = outputs.channel_regions_dir(probe)
    if not content:
        outputs.remove_dir(target)
        return []
    build = outputs.temp_dir_beside(target)
    try:
        for path, data in sorted(content.items()):
            outputs.write_bytes_atomic(build / path.relative_to(target), data)
        outputs.replace_dir(build, target)
    except BaseException:
        outputs.remove_dir(build)
        raise
    return sorted(content)


def run_channel_regions(
    ctx: MouseContext, probe_dir: Path, rows: list[ManifestRow]
) -> ChannelRegionsResult:
    """Channel and unit regions of one probe folder from its histology tracks (never raises).

    ``rows`` are the manifest rows of this folder (one per histology track x ephys shank);
    each maps to a GUI shank through the folder's channel table, as the track stage's
    ``_shank{N}`` suffixes do.
    """
    t0_s = time.perf_counter()
    try:
        labels = ctx.labels
    except InputError as exc:
        outputs.remove_dir(outputs.channel_regions_dir(Path(probe_dir)))
        res = ChannelRegionsResult(Path(probe_dir), "failed", f"CCF labels: {exc}")
        res.seconds = time.perf_counter() - t0_s
        return res
    return regions_for_probe(labels, probe_dir, rows)


def run(ctx: MouseContext, work: ChannelRegionsWork) -> StageResult:
    """The stage contract: the regions of one probe folder (``status`` failed when any shank
    failed or the folder has no channel table; the good shanks' files are still listed)."""
    config = ctx.config
    probe = _probe_dir(config, work)
    res = run_channel_regions(ctx, probe, list(work.rows))
    if res.status == "skipped":
        res.status, res.reason = "failed", f"{res.reason}; the ephys of this probe folder failed?"
    mouse = outputs.mouse_dir(config.results_root, ctx.mouse_id)
    return StageResult(
        work.name,
        Status.OK if res.status == "ok" else Status.FAILED,
        res.reason,
        seconds=res.seconds,
        files=tuple(str(Path(p).relative_to(mouse)) for p in res.files),
        warnings=tuple(res.warnings),
    )


def _probe_dir(config: PipelineConfig, work: ChannelRegionsWork) -> Path:
    return outputs.probe_dir(config.results_root, work.mouse_id, work.recording_id, work.collection)


def upstream_files(config: PipelineConfig, work: ChannelRegionsWork) -> list[Path]:
    """The outputs of earlier items this one reads: its re-run fingerprint holds their digests."""
    probe = _probe_dir(config, work)
    names = (LOCAL_COORDINATES, SHANK_IND, CLUSTER_CHANNELS, CLUSTER_METRICS)
    files = [probe / name for name in names] + sorted(probe.glob("xyz_picks*.json"))
    return [f for f in files if f.is_file()]


def discard(config: PipelineConfig, work: ChannelRegionsWork) -> None:
    """Remove the regions folder of a probe folder whose worker died mid-way."""
    probe = _probe_dir(config, work)
    outputs.remove_dir(outputs.channel_regions_dir(probe))
