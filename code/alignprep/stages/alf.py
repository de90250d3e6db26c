"""IBL ALF conventions for a probe folder: spikes and clusters from the analyzers, then checks.

:func:`normalise` turns the analyzers of a probe (read by :mod:`alignprep.inputs.analyzers` in
SpikeInterface's conventions, one per shank group) into the IBL ALF arrays (outputs.md §5.2):
volts, milliseconds, cluster ids global across shanks, ``clusters.channels`` as rows of
``channels.*``, spikes sorted by time, GUI-shank indices, one metrics row per cluster with the
curation labels and IBL's ``label``. ``spikes.amps`` is the magnitude of SpikeInterface's spike
amplitude (IBL: amplitudes are positive volts): SpikeInterface reads the trace at the template's
main channel and peak sample, which is positive for positive-going units and flips sign with the
noise on small ones. Everything here is numpy/pandas on arrays plus small readers/writers, so it
is testable without real data. :func:`check_folder` verifies a finished folder with
``one.alf.io``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..inputs.analyzers import AnalyzerMeta, AnalyzerSpikes
from ..inputs.curation import LABEL_COLUMNS, UnitCuration
from ..logs import get_logger
from .ibl_label import ibl_label, missing_metrics
from .shanks import x_groups

log = get_logger("stages.alf")

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
class ChannelTable:
    """``channels.*`` of a probe folder (rows = columns of the ``_iblqc_*`` arrays)."""

    local_coordinates_um: np.ndarray  # (n_ch, 2)
    raw_ind: np.ndarray
    shank_ind: np.ndarray
    contact_id: np.ndarray | None = None


@dataclass(frozen=True)
class SortedGroup:
    """One analyzer as the normalisation takes it: spikes, curation, which units to keep."""

    spikes: AnalyzerSpikes
    curation: UnitCuration
    keep: np.ndarray | None = None  # bool per unit (analyzer order); None keeps every unit

    @property
    def group(self) -> int | None:
        """The analyzer's ``_group<K>`` (= ephys_shank, channels.shankInd); None: single."""
        return self.spikes.ref.group


def read_channel_table(folder: Path) -> ChannelTable:
    """Read ``channels.*`` (``contactId`` and ``shankInd`` optional)."""
    folder = Path(folder)
    xy = np.load(folder / "channels.localCoordinates.npy")
    raw = np.load(folder / "channels.rawInd.npy")
    shank_path, contact_path = folder / "channels.shankInd.npy", folder / "channels.contactId.npy"
    shank = np.load(shank_path) if shank_path.is_file() else np.zeros(len(xy), dtype=np.int64)
    contact = np.load(contact_path, allow_pickle=False) if contact_path.is_file() else None
    return ChannelTable(xy, raw, shank, contact)


def channel_rows(info: AnalyzerMeta, table: ChannelTable) -> np.ndarray:
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


def _cluster_waveforms(
    templates_uv: np.ndarray, rows: np.ndarray, n_w: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each unit's ``n_w`` channels of largest swing, peak first: (V waveforms, channel rows)."""
    order = np.argsort(-np.ptp(templates_uv, axis=1), axis=1, kind="stable")[:, :n_w]
    waveforms = np.take_along_axis(templates_uv, order[:, None, :], axis=2) * UV_TO_V
    return waveforms, rows[order]


def _peak_to_trough_ms(templates_uv: np.ndarray, peak: np.ndarray, fs_hz: float) -> np.ndarray:
    """(argmax - argmin) of each unit's peak-channel template, in ms (the converter's rule)."""
    wave = templates_uv[np.arange(len(peak)), :, peak]  # (n_units, n_samples)
    return (np.argmax(wave, axis=1) - np.argmin(wave, axis=1)) / fs_hz * S_TO_MS


def _flipped(spikes: AnalyzerSpikes, peak: np.ndarray) -> int:
    """Spikes whose amplitude sign is opposite to their template's extremum at the peak channel."""
    wave = spikes.templates_uv[np.arange(len(peak)), :, peak]
    extremum = wave[np.arange(len(peak)), np.argmax(np.abs(wave), axis=1)]
    sign = np.sign(extremum)[spikes.unit_index]
    return int(np.sum(np.sign(spikes.amplitudes_uv) * sign < 0))


def _kept(grp: SortedGroup) -> np.ndarray:
    n = len(grp.spikes.meta.unit_ids)
    return np.arange(n) if grp.keep is None else np.flatnonzero(np.asarray(grp.keep, bool))


def _metrics_rows(grp: SortedGroup, first_id: int) -> pd.DataFrame:
    kept = _kept(grp)
    ids = [grp.spikes.meta.unit_ids[k] for k in kept]
    head = pd.DataFrame(
        {
            "cluster_id": np.arange(first_id, first_id + len(kept), dtype=np.int64),
            "unit_id": ids,
            "shank": np.full(len(kept), 0 if grp.group is None else grp.group, dtype=np.int64),
        }
    )
    metrics = grp.spikes.metrics.iloc[kept].reset_index(drop=True)
    labels = pd.DataFrame({c: np.asarray(v)[kept] for c, v in grp.curation.labels.items()})
    return pd.concat([head, metrics, labels], axis=1)


def metrics_table(groups: list[SortedGroup]) -> tuple[pd.DataFrame, list[str]]:
    """One row per kept unit, in global cluster order: ids, shank, metrics, labels, ``label``."""
    notes: list[str] = []
    parts, first = [], 0
    for grp in groups:
        parts.append(_metrics_rows(grp, first))
        first += len(parts[-1])
    metric_cols = list(dict.fromkeys(c for g in groups for c in g.spikes.metrics.columns))
    label_cols = [c for c in LABEL_COLUMNS if any(c in g.curation.labels for g in groups)]
    table = pd.concat(parts, ignore_index=True)
    table = table.reindex(columns=["cluster_id", "unit_id", "shank", *metric_cols, *label_cols])
    lacking = {
        g.spikes.ref.where: m for g in groups if (m := missing_metrics(g.spikes.metrics.columns))
    }
    if lacking:
        notes.append(
            "no IBL label column: it needs the quality metrics sliding_rp_violation, "
            f"noise_cutoff and amplitude_median, and these analyzers lack {lacking}"
        )
    else:
        table["label"] = ibl_label(table).to_numpy()
    return table, notes


def _group_arrays(
    grp: SortedGroup, table: ChannelTable, n_w: int, offset: int
) -> tuple[dict[str, np.ndarray], list[str]]:
    """One analyzer's kept spikes and clusters, clusters numbered from ``offset``."""
    sp, meta = grp.spikes, grp.spikes.meta
    kept = _kept(grp)
    keep = np.zeros(len(meta.unit_ids), bool)
    keep[kept] = True
    rows = channel_rows(meta, table)
    peak = np.argmax(np.ptp(sp.templates_uv, axis=1), axis=1)  # largest swing, per unit
    peak_rows = rows[peak[kept]]
    if (peak_rows < 0).any():
        bad = [meta.unit_ids[k] for k in kept[peak_rows < 0]][:5]
        raise ValueError(
            f"{sp.ref.where}: peak channels of units {bad} are not in channels.localCoordinates"
        )
    waveforms, wf_rows = _cluster_waveforms(sp.templates_uv[kept], rows, n_w)
    notes = []
    if (wf_rows < 0).any():
        notes.append(f"{sp.ref.where}: some waveform channels are not in channels.*: -1 there")
    to_global = np.full(len(keep), -1, dtype=np.int64)
    to_global[kept] = offset + np.arange(len(kept))
    mine = keep[sp.unit_index]
    fs_hz = meta.sampling_frequency_hz
    return {
        "times": sp.sample_index[mine] / fs_hz,
        "clusters": to_global[sp.unit_index[mine]],
        "amps": np.abs(sp.amplitudes_uv[mine]) * UV_TO_V,
        "depths": sp.depths_um[mine],
        "peak": peak_rows,
        "ptt": _peak_to_trough_ms(sp.templates_uv[kept], peak[kept], fs_hz),
        "wf": waveforms,
        "wf_rows": wf_rows,
        "flipped": np.array([_flipped(sp, peak)]),
    }, notes


def normalise(groups: list[SortedGroup], table: ChannelTable) -> tuple[dict[str, Any], list[str]]:
    """IBL ALF arrays (file name -> value) of a probe's analyzers, and warnings.

    Raises
    ------
    ValueError
        When the analyzers do not fit the channel table or each other (channels, template
        lengths), or when no unit is left.
    """
    if len({g.spikes.templates_uv.shape[1] for g in groups}) > 1:
        raise ValueError("the analyzers' templates have different numbers of samples")
    n_w = min(g.spikes.templates_uv.shape[2] for g in groups)
    parts, notes, offset = [], [], 0
    for grp in groups:
        part, more = _group_arrays(grp, table, n_w, offset)
        parts.append(part)
        notes += more
        offset += len(part["peak"])
    if offset == 0:
        raise ValueError("no unit left: the curation removed every unit of the probe")
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if cat["flipped"].sum():
        log.info(
            "%d of %d spikes have a SpikeInterface amplitude of the opposite sign to their "
            "template's peak (units near the noise); spikes.amps holds magnitudes",
            int(cat["flipped"].sum()),
            sum(len(g.spikes.unit_index) for g in groups),
        )
    peak_rows = cat["peak"].astype(np.int64)
    unit_shank = x_groups(table.local_coordinates_um[:, 0])[peak_rows]
    order = np.argsort(cat["times"], kind="stable")
    clusters = cat["clusters"][order]
    metrics, more = metrics_table(groups)
    arrays: dict[str, Any] = {
        "spikes.times.npy": cat["times"][order].astype(np.float64),
        "spikes.clusters.npy": clusters.astype(np.uint32),
        "spikes.amps.npy": cat["amps"][order].astype(np.float64),
        "spikes.depths.npy": cat["depths"][order].astype(np.float64),
        "spike_shank_indices.npy": unit_shank[clusters].astype(np.int64),
        "clusters.channels.npy": peak_rows,
        "clusters.peakToTrough.npy": cat["ptt"].astype(np.float64),
        "clusters.waveforms.npy": cat["wf"].astype(np.float32),
        "clusters.waveformsChannels.npy": cat["wf_rows"].astype(np.int64),
        "clusters.metrics.csv": metrics,
        "unit_shank_indices.npy": unit_shank.astype(np.int64),
    }
    return arrays, notes + more


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
