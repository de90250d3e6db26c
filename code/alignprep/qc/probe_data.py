"""What one probe folder holds for its summary figure (:mod:`alignprep.qc.probe_summary`).

The channel table (``channels.localCoordinates``) is required; spikes and units (ALF, through
``one.alf.io``), AP RMS (the median over windows of ``_iblqc_ephysTimeRmsAP.rms``), LFP power in
:data:`LFP_BAND_HZ` and the channels' regions before alignment are read when present, each
``_iblqc_`` column at ``channels.rawInd``; what is missing or unreadable is ``None`` with a note.
GUI shanks are the x-groups of :func:`alignprep.stages.shanks.x_groups`; a unit belongs to the
shank of its peak channel (``clusters.channels``) and its spikes go with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..logs import get_logger
from ..outputs import CHANNEL_REGIONS_DIR
from ..stages.channel_regions import LOCAL_COORDINATES, read_local_coordinates
from ..stages.shanks import x_groups

log = get_logger("qc.probe_data")

#: LFP band of the power panel (Hz, ``lo <= f < hi``). One of the five bands of the IBL GUI's
#: probe plots, ``freq_bands = [[0, 4], [4, 10], [10, 30], [30, 80], [80, 200]]``
#: (int-brain-lab/iblapps ``atlaselectrophysiology/plot_data.py`` ``get_lfp_spectrum_data``
#: and ``loaders/plot_loader.py`` ``probe_lfp_spectrum``). Theta (4-10 Hz) power is high in
#: the hippocampus, a common landmark when aligning.
LFP_BAND_HZ = (4.0, 10.0)
V_TO_UV = 1e6
REGION_IDS = "channels.brainLocationIds_ccf_2017.npy"


@dataclass(frozen=True, eq=False)
class ProbeSummaryData:
    """What one probe folder holds for its summary figure, as arrays (one row per channel).

    ``None`` marks what the folder does not have (or could not be read: see ``notes``).
    """

    name: str
    local_coordinates_um: np.ndarray  # (n_channels, 2) x, y
    spike_times_s: np.ndarray | None = None
    spike_clusters: np.ndarray | None = None
    spike_amps_uv: np.ndarray | None = None
    spike_depths_um: np.ndarray | None = None
    cluster_channels: np.ndarray | None = None  # peak channel (row of channels.*) per unit
    ap_rms_uv: np.ndarray | None = None  # (n_channels,) median over windows
    lfp_power_db: np.ndarray | None = None  # (n_channels,) 10 log10 mean PSD in LFP_BAND_HZ
    region_ids: np.ndarray | None = None  # (n_channels,) Allen id (absolute value)
    notes: tuple[str, ...] = ()

    @property
    def n_channels(self) -> int:
        """Number of channels (rows of ``channels.*``)."""
        return len(self.local_coordinates_um)

    @property
    def has_spikes(self) -> bool:
        """Whether spikes and their units' peak channels were read."""
        return self.spike_clusters is not None and self.cluster_channels is not None


# --- reading ---------------------------------------------------------------------------------


def _qc_columns(n_cols: int, raw_ind: np.ndarray | None, n_ch: int) -> np.ndarray:
    """Columns of an ``_iblqc_*`` array for the channel rows (the GUI takes ``rawInd``)."""
    if raw_ind is not None and len(raw_ind) == n_ch and raw_ind.size and raw_ind.max() < n_cols:
        return raw_ind.astype(np.int64)
    if n_cols == n_ch:
        return np.arange(n_ch)
    raise ValueError(f"{n_cols} columns for {n_ch} channels and no usable channels.rawInd")


def _read_raw_ind(probe: Path, n_ch: int) -> np.ndarray | None:
    path = probe / "channels.rawInd.npy"
    if not path.is_file():
        return None
    try:
        raw = np.load(path, allow_pickle=False)
    except (ValueError, OSError):
        return None
    ok = raw.shape == (n_ch,) and raw.dtype.kind in "iu" and (raw.size == 0 or raw.min() >= 0)
    return raw if ok else None


def _read_spikes(probe: Path, n_ch: int, notes: list[str]) -> dict[str, np.ndarray | None]:
    import one.alf.io as alfio
    from one.alf.exceptions import ALFObjectNotFound

    out: dict[str, np.ndarray | None] = dict.fromkeys(
        ("spike_times_s", "spike_clusters", "spike_amps_uv", "spike_depths_um", "cluster_channels")
    )
    try:
        spikes = alfio.load_object(
            probe, "spikes", attribute=["times", "clusters", "amps", "depths"]
        )
        clusters = alfio.load_object(probe, "clusters", attribute=["channels"])
    except ALFObjectNotFound:
        notes.append("no spikes.* / clusters.*")
        return out
    except (ValueError, OSError) as exc:
        notes.append(f"spikes.* / clusters.* unreadable: {exc}")
        return out
    missing = {"times", "clusters", "amps", "depths"} - set(spikes) or {"channels"} - set(clusters)
    if missing:
        notes.append(f"spikes/clusters attributes missing: {sorted(missing)}")
        return out
    n = len(spikes["times"])
    peak = np.asarray(clusters["channels"])
    if any(len(spikes[k]) != n for k in ("clusters", "amps", "depths")):
        notes.append("spikes.* arrays differ in length")
    elif peak.ndim != 1 or peak.dtype.kind not in "iu" or (peak.size and peak.max() >= n_ch):
        notes.append("clusters.channels are not rows of channels.*")
    else:
        out.update(
            spike_times_s=np.asarray(spikes["times"], dtype=float),
            spike_clusters=np.asarray(spikes["clusters"]).astype(np.int64),
            spike_amps_uv=np.asarray(spikes["amps"], dtype=float) * V_TO_UV,  # ALF: volts
            spike_depths_um=np.asarray(spikes["depths"], dtype=float),
            cluster_channels=peak.astype(np.int64),
        )
    return out


def _read_ap_rms(probe: Path, raw_ind: np.ndarray | None, n_ch: int) -> np.ndarray:
    rms_v = np.load(probe / "_iblqc_ephysTimeRmsAP.rms.npy", allow_pickle=False)
    if rms_v.ndim != 2:
        raise ValueError(f"shape {rms_v.shape}; expected (n_windows, n_channels)")
    cols = _qc_columns(rms_v.shape[1], raw_ind, n_ch)
    return np.median(rms_v.astype(float), axis=0)[cols] * V_TO_UV


def lfp_band_db(
    power: np.ndarray, freqs_hz: np.ndarray, band_hz: tuple[float, float]
) -> np.ndarray:
    """``10 log10`` of the mean PSD over ``lo <= f < hi`` per column (the IBL GUI's formula).

    iblapps ``atlaselectrophysiology/plot_data.py`` ``get_lfp_spectrum_data``:
    ``lfp_avg_dB = 10 * np.log10(np.mean(power[freq_idx], axis=0))``. Non-positive power gives NaN.
    """
    sel = (freqs_hz >= band_hz[0]) & (freqs_hz < band_hz[1])
    if not sel.any():
        raise ValueError(f"no frequency in [{band_hz[0]}, {band_hz[1]}) Hz")
    mean_power = np.mean(power[sel].astype(float), axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        db = 10.0 * np.log10(mean_power)
    return np.where(np.isfinite(db), db, np.nan)


def _read_lfp(probe: Path, raw_ind: np.ndarray | None, n_ch: int) -> np.ndarray:
    power = np.load(probe / "_iblqc_ephysSpectralDensityLF.power.npy", allow_pickle=False)
    freqs = np.load(probe / "_iblqc_ephysSpectralDensityLF.freqs.npy", allow_pickle=False)
    if power.ndim != 2 or freqs.shape != (power.shape[0],):
        raise ValueError(f"power {power.shape}, freqs {freqs.shape}; expected (n_freqs, n_ch)")
    cols = _qc_columns(power.shape[1], raw_ind, n_ch)
    return lfp_band_db(power, freqs.astype(float), LFP_BAND_HZ)[cols]


def _read_regions(probe: Path, n_ch: int) -> np.ndarray:
    ids = np.load(probe / CHANNEL_REGIONS_DIR / REGION_IDS, allow_pickle=False)
    if ids.shape != (n_ch,) or ids.dtype.kind not in "iu":
        raise ValueError(f"shape {ids.shape} dtype {ids.dtype}; expected ({n_ch},) Allen ids")
    # IBL's convention: the Allen id is the absolute value (left hemisphere ids are negative
    # in lateralized volumes; BrainRegions gives -id the same acronym and colour).
    return np.abs(ids.astype(np.int64))


def load_probe_summary(probe_dir: Path) -> ProbeSummaryData:
    """Read what the summary figure shows from one probe folder (and nothing else).

    Raises
    ------
    InputError
        When the folder has no usable ``channels.localCoordinates``; every other file is
        optional (``None`` in the result, with a note).
    """
    probe = Path(probe_dir)
    table = read_local_coordinates(probe)
    if table is None:
        raise InputError(
            "missing: the probe summary needs the channel table", file=probe / LOCAL_COORDINATES
        )
    xy_um = table[0]
    n_ch = len(xy_um)
    notes: list[str] = []
    raw_ind = _read_raw_ind(probe, n_ch)
    fields = _read_spikes(probe, n_ch, notes)
    optional = {
        "ap_rms_uv": ("AP RMS", "_iblqc_ephysTimeRmsAP.rms.npy", _read_ap_rms),
        "lfp_power_db": ("LFP PSD", "_iblqc_ephysSpectralDensityLF.power.npy", _read_lfp),
    }
    for key, (what, name, reader) in optional.items():
        fields[key] = None
        if not (probe / name).is_file():
            notes.append(f"no {what} ({name})")
            continue
        try:
            fields[key] = reader(probe, raw_ind, n_ch)
        except (ValueError, OSError) as exc:
            notes.append(f"{what} unreadable: {exc}")
    fields["region_ids"] = None
    if (probe / CHANNEL_REGIONS_DIR / REGION_IDS).is_file():
        try:
            fields["region_ids"] = _read_regions(probe, n_ch)
        except (ValueError, OSError) as exc:
            notes.append(f"regions unreadable: {exc}")
    else:
        notes.append(f"no {CHANNEL_REGIONS_DIR}/{REGION_IDS} (regions not computed)")
    for note in notes:
        log.info("%s: %s", probe, note)
    return ProbeSummaryData(
        name=probe.name, local_coordinates_um=xy_um, notes=tuple(notes), **fields
    )


# --- shanks ----------------------------------------------------------------------------------


def summary_shanks(data: ProbeSummaryData) -> list[tuple[str, np.ndarray]]:
    """``(suffix, channel rows)`` per GUI shank, in GUI order (``""`` for a one-shank folder).

    Shanks are the x-groups of :func:`alignprep.stages.shanks.x_groups`, as both GUIs and the
    channel-regions stage group channels; the suffix is the ``_shank{N}`` of the pick files.
    """
    groups = x_groups(data.local_coordinates_um[:, 0])
    n_shanks = int(groups.max()) + 1
    return [
        ("" if n_shanks == 1 else f"_shank{g + 1}", np.flatnonzero(groups == g))
        for g in range(n_shanks)
    ]


def shank_rows(data: ProbeSummaryData, suffix: str) -> tuple[int, np.ndarray]:
    for k, (sfx, rows) in enumerate(summary_shanks(data)):
        if sfx == suffix:
            return k, rows
    known = [s for s, _ in summary_shanks(data)]
    raise ValueError(f"{data.name}: no GUI shank {suffix!r}; the folder has {known}")


@dataclass(frozen=True)
class Units:
    """The units of one shank with their spikes (valid depth and amplitude only)."""

    ids: np.ndarray
    depth_um: np.ndarray
    amp_uv: np.ndarray
    fr_hz: np.ndarray
    spike_depth_um: np.ndarray
    spike_amp_uv: np.ndarray
    spike_fr_hz: np.ndarray  # the firing rate of each spike's unit


def shank_units(data: ProbeSummaryData, gui_shank: int) -> Units | None:
    if not data.has_spikes:
        return None
    xy = data.local_coordinates_um
    peak = data.cluster_channels
    n_clu = len(peak)
    clu = data.spike_clusters
    known = (clu >= 0) & (clu < n_clu)
    if not known.all():
        log.warning("%s: %d spikes of unknown clusters ignored", data.name, int((~known).sum()))
    unit_shank = x_groups(xy[:, 0])[peak]
    duration_s = float(np.max(data.spike_times_s)) if len(data.spike_times_s) else 0.0
    mine = known.copy()
    mine[known] = unit_shank[clu[known]] == gui_shank
    valid = mine & np.isfinite(data.spike_depths_um) & np.isfinite(data.spike_amps_uv)
    s_clu, s_depth, s_amp = clu[valid], data.spike_depths_um[valid], data.spike_amps_uv[valid]
    ids = np.flatnonzero(unit_shank == gui_shank)
    counts = np.bincount(s_clu, minlength=n_clu).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        depth = np.bincount(s_clu, weights=s_depth, minlength=n_clu) / counts
        amp = np.bincount(s_clu, weights=s_amp, minlength=n_clu) / counts
        fr = counts / duration_s if duration_s > 0 else np.full(n_clu, np.nan)
    depth = np.where(counts > 0, depth, xy[peak, 1])  # no spike with a depth: the peak channel
    return Units(
        ids=ids,
        depth_um=depth[ids],
        amp_uv=amp[ids],
        fr_hz=fr[ids],
        spike_depth_um=s_depth,
        spike_amp_uv=s_amp,
        spike_fr_hz=fr[s_clu],
    )
