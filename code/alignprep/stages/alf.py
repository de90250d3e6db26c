"""IBL ALF conventions for a probe folder: normalise the converter's spike output, then check.

``aind-ephys-ibl-gui-conversion`` 0.7.0 writes spikes and clusters per analyzer, concatenated in
analyzer (shank group) order, in its own units (outputs.md §5.2). :func:`normalise` turns them
into the IBL convention: volts, milliseconds, global cluster ids, ``clusters.channels`` as rows
of ``channels.*``, spikes sorted by time, GUI-shank indices, one metrics row per global cluster.
Everything here is numpy/pandas on arrays, plus small readers/writers, so it is testable
without the converter. :func:`check_folder` verifies a finished folder with ``one.alf.io``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .shanks import x_groups

UV_TO_V = 1e-6
S_TO_MS = 1e3
MATCH_TOL_UM = 0.5
#: Files the ephys stage owns in a probe folder (removed before a new result is moved in).
OWNED_GLOBS = (
    "spikes.*",
    "clusters.*",
    "channels.*",
    "_iblqc_*",
    "spike_shank_indices.npy",
    "unit_shank_indices.npy",
    "sorting_error.txt",
)
OWNED_DIRS = ("band_corr",)


@dataclass(frozen=True)
class GroupInfo:
    """One analyzer, in the order the converter concatenated them."""

    group: int | None  # analyzer ``_group<K>`` (= ephys_shank, channels.shankInd); None: single
    unit_ids: tuple[str, ...]  # SpikeInterface unit ids, analyzer order
    channel_xy_um: np.ndarray  # (n_ch, 2) analyzer channel locations
    contact_ids: tuple[str, ...] | None = None  # probe contact ids of those channels


@dataclass(frozen=True)
class ChannelTable:
    """``channels.*`` of a probe folder (rows = columns of the ``_iblqc_*`` arrays)."""

    local_coordinates_um: np.ndarray  # (n_ch, 2)
    raw_ind: np.ndarray
    shank_ind: np.ndarray
    contact_id: np.ndarray | None = None


@dataclass(frozen=True)
class ConverterSpikes:
    """What the converter writes for spikes and clusters, in its conventions."""

    times_s: np.ndarray  # per-analyzer blocks, each in time order
    clusters_local: np.ndarray  # unit index within its analyzer
    amps_uv: np.ndarray
    depths_um: np.ndarray
    spike_group: np.ndarray  # analyzer enumeration index per spike
    cluster_channel_local: np.ndarray  # peak channel, index into the analyzer's channels
    peak_to_trough_s: np.ndarray
    waveforms_uv: np.ndarray  # (n_clu, n_samp, n_w), analyzer channel order, n_w = min n_ch
    cluster_group: np.ndarray  # analyzer enumeration index per cluster
    metrics: pd.DataFrame  # column cluster_id = SI unit id (repeats across analyzers)


def read_channel_table(folder: Path) -> ChannelTable:
    """Read ``channels.*`` (``contactId`` and ``shankInd`` optional)."""
    folder = Path(folder)
    xy = np.load(folder / "channels.localCoordinates.npy")
    raw = np.load(folder / "channels.rawInd.npy")
    shank_path, contact_path = folder / "channels.shankInd.npy", folder / "channels.contactId.npy"
    shank = np.load(shank_path) if shank_path.is_file() else np.zeros(len(xy), dtype=np.int64)
    contact = np.load(contact_path, allow_pickle=False) if contact_path.is_file() else None
    return ChannelTable(xy, raw, shank, contact)


def read_converter_spikes(folder: Path) -> ConverterSpikes | None:
    """The converter's spike/cluster files, or None when it wrote none."""
    folder = Path(folder)
    if not (folder / "spikes.times.npy").is_file():
        return None

    def vec(name: str) -> np.ndarray:
        return np.atleast_1d(np.load(folder / name))

    return ConverterSpikes(
        times_s=vec("spikes.times.npy").astype(np.float64),
        clusters_local=vec("spikes.clusters.npy").astype(np.int64),
        amps_uv=vec("spikes.amps.npy").astype(np.float64),
        depths_um=vec("spikes.depths.npy").astype(np.float64),
        spike_group=vec("spike_shank_indices.npy").astype(np.int64),
        cluster_channel_local=vec("clusters.channels.npy").astype(np.int64),
        peak_to_trough_s=vec("clusters.peakToTrough.npy").astype(np.float64),
        waveforms_uv=np.load(folder / "clusters.waveforms.npy"),
        cluster_group=vec("unit_shank_indices.npy").astype(np.int64),
        metrics=pd.read_csv(folder / "clusters.metrics.csv", dtype={"cluster_id": str}),
    )


def global_cluster_ids(local: np.ndarray, group: np.ndarray, n_units: list[int]) -> np.ndarray:
    """``offset[group] + local``: cluster ids unique across analyzers (0-based, dense)."""
    n_units_arr = np.asarray(n_units, dtype=np.int64)
    local, group = np.asarray(local, dtype=np.int64), np.asarray(group, dtype=np.int64)
    if len(local) and (group.min() < 0 or group.max() >= len(n_units_arr)):
        raise ValueError(f"analyzer index out of range 0..{len(n_units_arr) - 1}")
    if len(local) and ((local < 0) | (local >= n_units_arr[group])).any():
        raise ValueError("a local cluster index exceeds its analyzer's unit count")
    offsets = np.concatenate([[0], np.cumsum(n_units_arr)[:-1]])
    return offsets[group] + local


def channel_rows(info: GroupInfo, table: ChannelTable) -> np.ndarray:
    """Row of ``channels.*`` for each channel of an analyzer (-1 when not found).

    Matched by contact id when both sides have unique ids and the locations agree within
    0.5 um, else by (x, y) within 0.5 um.
    """
    xy = np.asarray(table.local_coordinates_um, dtype=float)
    mine = np.asarray(info.channel_xy_um, dtype=float)
    rows = np.full(len(mine), -1, dtype=np.int64)
    ids = table.contact_id
    if info.contact_ids is not None and ids is not None and len(set(ids.tolist())) == len(ids):
        lookup = {str(c): r for r, c in enumerate(ids.tolist()) if str(c)}
        rows = np.array([lookup.get(str(c), -1) for c in info.contact_ids], dtype=np.int64)
        agree = (np.abs(xy[rows] - mine) <= MATCH_TOL_UM).all(axis=1)
        rows[~agree] = -1
    todo = np.flatnonzero(rows < 0)
    if len(todo):
        dist = np.abs(xy[None, :, :] - mine[todo, None, :])
        hit = (dist <= MATCH_TOL_UM).all(axis=2)
        found = hit.any(axis=1)
        rows[todo[found]] = hit[found].argmax(axis=1)
    return rows


def metrics_table(metrics: pd.DataFrame, groups: list[GroupInfo]) -> pd.DataFrame:
    """One row per global cluster: ``cluster_id`` (= row), ``unit_id`` (SI id), ``shank``."""
    expected = [u for g in groups for u in g.unit_ids]
    got = metrics["cluster_id"].astype(str).tolist() if "cluster_id" in metrics else []
    if got != expected:
        raise ValueError(
            f"clusters.metrics.csv rows {got[:8]}... do not follow the analyzers' unit ids "
            f"{expected[:8]}... ({len(got)} rows for {len(expected)} units)"
        )
    rest = metrics.drop(columns=["cluster_id", "cluster_id.1"], errors="ignore")
    head = pd.DataFrame(
        {
            "cluster_id": np.arange(len(expected), dtype=np.int64),
            "unit_id": expected,
            "shank": [0 if g.group is None else g.group for g in groups for _ in g.unit_ids],
        }
    )
    return pd.concat([head, rest.reset_index(drop=True)], axis=1)


def normalise(
    spk: ConverterSpikes, groups: list[GroupInfo], table: ChannelTable
) -> tuple[dict[str, Any], list[str]]:
    """IBL ALF arrays (file name -> value) from the converter's output, and warnings.

    Raises
    ------
    ValueError
        When the converter output does not match the analyzers (lengths, ids, channels).
    """
    notes: list[str] = []
    n_units = [len(g.unit_ids) for g in groups]
    n_clu, n_spk = sum(n_units), len(spk.times_s)
    per_spike = (spk.clusters_local, spk.amps_uv, spk.depths_um, spk.spike_group)
    if any(len(a) != n_spk for a in per_spike):
        raise ValueError(f"converter spike arrays differ in length (times: {n_spk})")
    expected_groups = np.repeat(np.arange(len(groups)), n_units)
    if not np.array_equal(spk.cluster_group, expected_groups):
        raise ValueError(f"converter wrote {len(spk.cluster_group)} clusters for {n_clu} units")
    clusters = global_cluster_ids(spk.clusters_local, spk.spike_group, n_units)

    rows_by_group = [channel_rows(g, table) for g in groups]
    peak_rows = np.array(
        [
            rows_by_group[g][c]
            for g, c in zip(spk.cluster_group, spk.cluster_channel_local, strict=True)
        ],
        dtype=np.int64,
    )
    if (peak_rows < 0).any():
        bad = np.flatnonzero(peak_rows < 0)[:5].tolist()
        raise ValueError(f"peak channels of clusters {bad} are not in channels.localCoordinates")
    unit_shank = x_groups(table.local_coordinates_um[:, 0])[peak_rows] if n_clu else peak_rows

    n_w = spk.waveforms_uv.shape[2] if spk.waveforms_uv.ndim == 3 else 0
    col_rows = np.array([rows_by_group[g][:n_w] for g in spk.cluster_group]).reshape(n_clu, n_w)
    ptp = np.ptp(spk.waveforms_uv, axis=1) if n_clu else np.zeros((0, n_w))
    col_order = np.argsort(-ptp, axis=1, kind="stable")
    waveforms = np.take_along_axis(spk.waveforms_uv, col_order[:, None, :], axis=2) * UV_TO_V
    if (col_rows < 0).any():
        notes.append("some waveform channels are not in channels.*: waveformsChannels is -1 there")
    truncated = int((spk.cluster_channel_local >= n_w).sum())
    if truncated:
        notes.append(
            f"{truncated} cluster(s) have their peak channel beyond the {n_w} waveform channels "
            "the converter kept (it truncates to the smallest analyzer); their waveform column 0 "
            "is the largest of the kept channels"
        )

    order = np.argsort(spk.times_s, kind="stable")
    arrays: dict[str, Any] = {
        "spikes.times.npy": spk.times_s[order],
        "spikes.clusters.npy": clusters[order].astype(np.uint32),
        "spikes.amps.npy": spk.amps_uv[order] * UV_TO_V,
        "spikes.depths.npy": spk.depths_um[order],
        "spike_shank_indices.npy": unit_shank[clusters][order].astype(np.int64),
        "clusters.channels.npy": peak_rows,
        "clusters.peakToTrough.npy": spk.peak_to_trough_s * S_TO_MS,
        "clusters.waveforms.npy": waveforms.astype(np.float32),
        "clusters.waveformsChannels.npy": np.take_along_axis(col_rows, col_order, axis=1),
        "clusters.metrics.csv": metrics_table(spk.metrics, groups),
        "unit_shank_indices.npy": unit_shank.astype(np.int64),
    }
    return arrays, notes


def write_alf(folder: Path, arrays: dict[str, Any]) -> list[Path]:
    """Write ``.npy`` arrays and the ``.csv`` table (no index) into ``folder``."""
    written = []
    for name, value in arrays.items():
        path = Path(folder) / name
        if name.endswith(".csv"):
            value.to_csv(path, index=False)
        else:
            np.save(path, value)
        written.append(path)
    return written


def _iblqc_objects(folder: Path) -> list[str]:
    names = {p.name.split(".")[0][len("_iblqc_") :] for p in folder.glob("_iblqc_*.*")}
    return sorted(n for n in names if n)


def check_folder(folder: Path) -> list[str]:
    """Problems of a finished probe folder (empty when it follows outputs.md §5.2)."""
    import one.alf.io as alfio

    folder = Path(folder)
    problems: list[str] = []
    loaded: dict[str, Any] = {}
    for obj in ("spikes", "clusters", "channels"):
        if any(folder.glob(f"{obj}.*")):
            loaded[obj] = alfio.load_object(folder, obj)
            if alfio.check_dimensions(loaded[obj]):
                problems.append(f"{obj}.*: inconsistent dimensions")
    for obj in _iblqc_objects(folder):
        if alfio.check_dimensions(alfio.load_object(folder, obj, namespace="iblqc")):
            problems.append(f"_iblqc_{obj}.*: inconsistent dimensions")
    if "channels" not in loaded or not {"localCoordinates", "rawInd"} <= set(loaded["channels"]):
        return [*problems, "channels.localCoordinates / channels.rawInd missing"]
    n_ch, max_raw = len(loaded["channels"]["rawInd"]), int(np.max(loaded["channels"]["rawInd"]))
    for path in folder.glob("_iblqc_*.npy"):
        arr = np.load(path, mmap_mode="r")
        if arr.ndim == 2 and arr.shape[1] <= max_raw:
            problems.append(f"{path.name}: {arr.shape[1]} columns <= max(rawInd) {max_raw}")
    if ("spikes" in loaded) != ("clusters" in loaded):
        return [*problems, "spikes.* and clusters.* must be both present or both absent"]
    if "spikes" not in loaded:
        return problems
    spikes, clu = loaded["spikes"], loaded["clusters"]
    n_clu = len(clu["channels"])
    if len(spikes["clusters"]) and int(spikes["clusters"].max()) >= n_clu:
        problems.append("spikes.clusters has ids >= number of clusters")
    if n_clu and int(clu["channels"].max()) >= n_ch:
        problems.append("clusters.channels points past channels.*")
    if np.any(np.diff(spikes["times"]) < 0):
        problems.append("spikes.times is not sorted")
    metrics = clu.get("metrics")
    if metrics is None or not np.array_equal(metrics["cluster_id"], np.arange(n_clu)):
        problems.append("clusters.metrics cluster_id is not 0..n_clusters-1")
    shank_path = folder / "spike_shank_indices.npy"
    if not shank_path.is_file() or len(np.load(shank_path)) != len(spikes["times"]):
        problems.append("spike_shank_indices.npy missing or not one entry per spike")
    return problems
