"""Probe summary: a picture per probe folder and GUI shank, like the IBL alignment GUI's first view.

Panels side by side share one vertical axis, the channels' axial position
(``channels.localCoordinates[:, 1]``, um, tip at the bottom), limited to the shank's channels
(half a channel pitch beyond the lowest and highest):

1. every spike's amplitude (uV) at its depth, coloured by its unit's firing rate;
2. every unit's mean spike amplitude (uV) and 3. firing rate (Hz) at its depth;
4. AP RMS (uV): the median over time windows of ``_iblqc_ephysTimeRmsAP.rms`` per channel
   (the GUI's "rms AP" probe plot takes the mean; the median ignores a noisy window), with
   the ``_iblqc_*`` columns taken at ``channels.rawInd`` as the GUI does;
5. LFP power (dB) in :data:`LFP_BAND_HZ`, computed as the IBL GUI's "Probe Plots" LFP bands;
6. the channels' regions before alignment (``regions_from_histology_track/``), in Allen colours.

A unit's depth is its spikes' mean depth (IBL GUI: ``compute_spike_average``), or the axial
position of its peak channel (``clusters.channels``) when it has no spike with a depth. A unit
belongs to the GUI shank of its peak channel; its spikes go with it (as ``spike_shank_indices``
does). Firing rate = number of spikes / the last spike time (s) of the folder, as in the GUI.
Missing optional files give a panel that says so; only a missing channel table is an error.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..logs import get_logger
from .probe_data import (
    LFP_BAND_HZ,
    ProbeSummaryData,
    Units,
    load_probe_summary,
    shank_rows,
    shank_units,
    summary_shanks,
)
from .render import DPI, new_figure

log = get_logger("qc.probe_summary")

__all__ = [
    "LFP_BAND_HZ",
    "ProbeSummaryData",
    "draw_probe_summary",
    "load_probe_summary",
    "summary_shanks",
]

#: Spikes drawn at most (evenly spaced in time order beyond this; deterministic).
MAX_SPIKES_DRAWN = 50_000

#: The axes labels of the figure (``Axes.get_label()``), for whoever inspects a drawn figure.
PANELS = ("spikes", "unit_amp", "unit_fr", "ap_rms", "lfp", "regions")

FIG_SIZE_IN = (12.0, 7.0)
_LEFT_IN, _BOTTOM_IN, _TOP_IN = 0.8, 0.7, 0.95
# (panel or gap, width in inches) from left to right; the rest of the width holds region labels.
_LAYOUT_IN = (
    ("spikes", 2.3),
    (None, 0.15),
    ("unit_amp", 1.45),
    (None, 0.15),
    ("unit_fr", 1.45),
    (None, 0.1),
    ("fr_colorbar", 0.12),
    (None, 0.7),
    ("ap_rms", 1.45),
    (None, 0.15),
    ("lfp", 1.45),
    (None, 0.15),
    ("regions", 0.45),
)
_FONT_PT = 8.5
_LABEL_PT = 8.0
_FR_CMAP = "viridis"
_UNKNOWN_RGB = (0.6, 0.6, 0.6)


# --- drawing ---------------------------------------------------------------------------------


def _panel_rects() -> dict[str, tuple[float, float, float, float]]:
    width_in, height_in = FIG_SIZE_IN
    bottom = _BOTTOM_IN / height_in
    height = (height_in - _BOTTOM_IN - _TOP_IN) / height_in
    rects, x_in = {}, _LEFT_IN
    for name, w_in in _LAYOUT_IN:
        if name is not None:
            rects[name] = (x_in / width_in, bottom, w_in / width_in, height)
        x_in += w_in
    return rects


def _not_available(ax: Axes, text: str, rotation: float = 0.0) -> None:
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        rotation=rotation,
        fontsize=_FONT_PT,
        color="0.35",
    )
    ax.set_xticks([])


def _evenly(n: int, at_most: int) -> np.ndarray:
    """At most ``at_most`` indices of ``range(n)``, evenly spaced (all when n is small)."""
    if n <= at_most:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, at_most)).astype(np.int64))


def _draw_units(axes: dict[str, Axes], units: Units | None, fig: Figure) -> None:
    cax = axes["fr_colorbar"]
    if units is None or units.spike_depth_um.size == 0:
        why = "no spikes\n(not available)" if units is None else "no spikes\non this shank"
        for key in ("spikes", "unit_amp", "unit_fr"):
            _not_available(axes[key], why)
        cax.set_axis_off()
        return
    fr_max = float(np.nanmax(units.fr_hz)) if np.isfinite(units.fr_hz).any() else 1.0
    norm = Normalize(vmin=0.0, vmax=max(fr_max, 1e-9))
    cmap = colormaps[_FR_CMAP]
    keep = _evenly(len(units.spike_depth_um), MAX_SPIKES_DRAWN)
    if len(keep) < len(units.spike_depth_um):
        log.info("drawing %d of %d spikes (evenly spaced)", len(keep), len(units.spike_depth_um))
    ax = axes["spikes"]
    ax.scatter(
        units.spike_amp_uv[keep],
        units.spike_depth_um[keep],
        c=units.spike_fr_hz[keep],
        cmap=cmap,
        norm=norm,
        s=3,
        linewidths=0,
        alpha=0.6,
    )
    shown = (
        f"{len(keep)} of {len(units.spike_depth_um)}"
        if len(keep) < len(units.spike_depth_um)
        else f"{len(keep)}"
    )
    ax.set_title(f"spikes ({shown})", fontsize=_FONT_PT + 0.5)
    ax.set_xlabel("spike amplitude (µV)", fontsize=_FONT_PT)
    ax.set_xlim(left=0.0)
    drawn = np.isfinite(units.amp_uv) | np.isfinite(units.fr_hz)
    for key, x, label in (
        ("unit_amp", units.amp_uv, "mean amplitude (µV)"),
        ("unit_fr", units.fr_hz, "firing rate (Hz)"),
    ):
        a = axes[key]
        a.scatter(
            x[drawn],
            units.depth_um[drawn],
            c=units.fr_hz[drawn],
            cmap=cmap,
            norm=norm,
            s=22,
            edgecolors="k",
            linewidths=0.5,
        )
        a.set_xlabel(label, fontsize=_FONT_PT)
        right = max(1.1 * float(np.nanmax(np.r_[x[drawn], 0.0])), 1e-9)
        a.set_xlim(-0.04 * right, right)  # a unit at 0 stays visible
    axes["unit_amp"].set_title(f"units ({int(drawn.sum())}): amplitude", fontsize=_FONT_PT + 0.5)
    axes["unit_fr"].set_title("units: firing rate", fontsize=_FONT_PT + 0.5)
    bar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    bar.set_label("unit firing rate (Hz)", fontsize=_FONT_PT)
    bar.ax.tick_params(labelsize=_FONT_PT - 0.5)


def _depth_profile(y_um: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` per unique depth (NaN ignored), sorted by depth."""
    depths, inverse = np.unique(y_um, return_inverse=True)
    ok = np.isfinite(values)
    sums = np.bincount(inverse[ok], weights=values[ok], minlength=len(depths))
    counts = np.bincount(inverse[ok], minlength=len(depths))
    with np.errstate(invalid="ignore"):
        return depths, np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def _draw_channel_values(
    ax: Axes, y_um: np.ndarray, values: np.ndarray | None, title: str, xlabel: str, color: str
) -> None:
    ax.set_title(title, fontsize=_FONT_PT + 0.5)
    if values is None or not np.isfinite(values).any():
        _not_available(ax, f"{title}\nnot available")
        return
    depths, profile = _depth_profile(y_um, values)
    ax.plot(values, y_um, linestyle="none", marker="o", ms=2.0, color=color, alpha=0.5)
    ax.plot(profile, depths, color=color, lw=1.2)
    ax.set_xlabel(xlabel, fontsize=_FONT_PT)
    lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
    pad = 0.05 * (hi - lo) if hi > lo else max(abs(hi) * 0.05, 1.0)
    ax.set_xlim(lo - pad, hi + pad)


def region_runs(y_um: np.ndarray, ids: np.ndarray) -> list[tuple[int, float, float]]:
    """``(allen_id, lowest depth, highest depth)`` of each run of one region along the shank.

    A channel depth takes the region of its lowest-x channel; a run ends where the id changes.
    """
    order = np.lexsort((np.arange(len(y_um)), y_um))
    depths, first = np.unique(y_um[order], return_index=True)
    per_depth = ids[order][first]
    starts = np.flatnonzero(np.r_[True, per_depth[1:] != per_depth[:-1]])
    ends = np.r_[starts[1:], len(per_depth)] - 1
    return [
        (int(per_depth[a]), float(depths[a]), float(depths[b]))
        for a, b in zip(starts, ends, strict=True)
    ]


def _spread_labels(mids: np.ndarray, gap: float, lo: float, hi: float) -> np.ndarray:
    """Label heights near ``mids`` (sorted) at least ``gap`` apart inside ``[lo, hi]``."""
    y = np.clip(mids.astype(float), lo + gap / 2, hi - gap / 2)
    for i in range(1, len(y)):
        y[i] = max(y[i], y[i - 1] + gap)
    y[-1] = min(y[-1], hi - gap / 2)
    for i in range(len(y) - 2, -1, -1):
        y[i] = min(y[i], y[i + 1] - gap)
    return y


def _draw_regions(
    ax: Axes, y_um: np.ndarray, ids: np.ndarray | None, ylim: tuple[float, float]
) -> None:
    ax.set_title("regions\n(track, before\nalignment)", fontsize=_FONT_PT - 0.5)
    ax.set_xlim(0.0, 1.0)
    ax.set_xticks([])
    if ids is None:
        _not_available(ax, "regions not computed", rotation=90)
        return
    from iblatlas.regions import BrainRegions

    regions = BrainRegions()
    runs = region_runs(y_um, ids)
    edges = [ylim[0], *((top + bottom) / 2 for (_, _, top), (_, bottom, _) in pairwise(runs))]
    edges.append(ylim[1])
    lookup = {int(i): k for k, i in enumerate(regions.id)}
    names, colours = [], []
    for (allen_id, _, _), lo, hi in zip(runs, edges[:-1], edges[1:], strict=True):
        k = lookup.get(allen_id)
        rgb = _UNKNOWN_RGB if k is None else tuple(regions.rgb[k] / 255.0)
        names.append(f"? ({allen_id})" if k is None else str(regions.acronym[k]))
        colours.append(rgb)
        ax.axhspan(lo, hi, xmin=0, xmax=1, facecolor=rgb, edgecolor="none", antialiased=False)
    for edge in edges[1:-1]:
        ax.axhline(edge, color="k", lw=0.6)
    _label_regions(ax, names, np.asarray(edges), ylim)


def _label_regions(
    ax: Axes, names: list[str], edges: np.ndarray, ylim: tuple[float, float]
) -> None:
    """Acronyms right of the strip, at each run's middle, spread so that none overlap."""
    mids = (edges[:-1] + edges[1:]) / 2
    height_px = ax.get_position().height * FIG_SIZE_IN[1] * DPI
    gap = (_LABEL_PT * DPI / 72.0 * 1.25) * (ylim[1] - ylim[0]) / height_px
    n_fit = max(int((ylim[1] - ylim[0]) // gap), 1)
    keep = np.arange(len(names))
    if len(names) > n_fit:  # too many runs: label the thickest
        keep = np.sort(np.argsort(-(edges[1:] - edges[:-1]), kind="stable")[:n_fit])
        log.info("%d of %d region runs too thin to label", len(names) - n_fit, len(names))
    heights = _spread_labels(mids[keep], gap, *ylim)
    for k, y_text in zip(keep, heights, strict=True):
        ax.annotate(
            names[k],
            xy=(1.0, mids[k]),
            xycoords=("axes fraction", "data"),
            xytext=(1.45, y_text),
            textcoords=("axes fraction", "data"),
            fontsize=_LABEL_PT,
            va="center",
            ha="left",
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.3", "shrinkA": 0, "shrinkB": 0},
        )


def draw_probe_summary(data: ProbeSummaryData, suffix: str, title: str) -> Figure:
    """The summary figure of GUI shank ``suffix`` (``""`` for a one-shank folder).

    Raises ``ValueError`` when the folder has no such shank.
    """
    gui_shank, rows = shank_rows(data, suffix)
    y_um = data.local_coordinates_um[rows, 1]
    depths = np.unique(y_um)
    pitch_um = float(np.min(np.diff(depths))) if len(depths) > 1 else 20.0
    ylim = (float(depths[0]) - pitch_um / 2, float(depths[-1]) + pitch_um / 2)

    fig = new_figure(*FIG_SIZE_IN)
    rects = _panel_rects()
    axes: dict[str, Axes] = {}
    first: Axes | None = None
    for name in PANELS:
        ax = fig.add_axes(rects[name], sharey=first, label=name)
        first = first or ax
        axes[name] = ax
        ax.tick_params(labelsize=_FONT_PT - 0.5)
        ax.xaxis.set_major_locator(
            MaxNLocator(nbins=4 if name == "spikes" else 3, steps=[1, 2, 5, 10])
        )
        if ax is not first:
            ax.tick_params(labelleft=False)
        if name != "regions":
            ax.grid(axis="y", color="0.9", lw=0.6)
            ax.set_axisbelow(True)
    axes["fr_colorbar"] = fig.add_axes(rects["fr_colorbar"], label="fr_colorbar")
    first.set_ylim(*ylim)
    first.set_ylabel(
        "axial position from the first channel (µm, local y; tip down)", fontsize=_FONT_PT
    )

    _draw_units(axes, shank_units(data, gui_shank), fig)

    def pick(per_channel: np.ndarray | None) -> np.ndarray | None:
        return None if per_channel is None else per_channel[rows]

    _draw_channel_values(
        axes["ap_rms"], y_um, pick(data.ap_rms_uv), "AP RMS", "median RMS (µV)", "C3"
    )
    lo_hz, hi_hz = LFP_BAND_HZ
    _draw_channel_values(
        axes["lfp"],
        y_um,
        pick(data.lfp_power_db),
        f"LFP {lo_hz:g}-{hi_hz:g} Hz",
        "mean PSD (dB re 1 V²/Hz)",
        "C0",
    )
    _draw_regions(axes["regions"], y_um, pick(data.region_ids), ylim)
    first.set_ylim(*ylim)  # scatter autoscaling must not move the shared axis

    x_lo, x_hi = (
        np.min(data.local_coordinates_um[rows, 0]),
        np.max(data.local_coordinates_um[rows, 0]),
    )
    fig.suptitle(title, fontsize=12, y=1 - 0.12 / FIG_SIZE_IN[1], va="top")
    fig.text(
        0.5,
        1 - 0.38 / FIG_SIZE_IN[1],
        f"{len(rows)} channels at x {x_lo:g} to {x_hi:g} µm; "
        "unit firing rate = its spikes / the last spike time",
        ha="center",
        va="top",
        fontsize=_FONT_PT,
        color="0.3",
    )
    return fig
