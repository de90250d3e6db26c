""" "Track in the atlas": every probe track of a mouse drawn over the Allen CCF brain outline.

Two panels, both in millimetres from bregma (IBL bregma frame F8, coordinates.md §6):

* **top view**, looking down on the dorsal surface: ML horizontal (the animal's left on the
  left of the page, right on the right), AP vertical with anterior at the top, the midline drawn
  at bregma ML;
* **side view** (sagittal, seen from the animal's left): AP horizontal with anterior on the
  left, DV vertical with dorsal at the top.

The outline is the run's own CCF labels volume (canonical PIR: numpy axes (AP, DV, ML), index
increasing toward posterior, ventral and the animal's right, voxel 0 centred at CCF 0 um),
projected along the viewing axis. Tracks are CCF micrometres (ML, AP, DV) exactly as written in
``track_data/ccf/<track>_ccf_um.json`` (frame F7: ML toward the right, so ML below bregma's
5739 um is the left hemisphere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.lines import Line2D

from ..logs import get_logger
from ..space.atlas import BREGMA_MLAPDV_UM, ccf_um_to_bregma_um
from .render import new_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from ..inputs.references import CcfLabels

log = get_logger("qc.atlas_view")

#: Axes labels of the two panels (``ax.get_label()``), for callers and tests.
TOP_VIEW = "top view"
SIDE_VIEW = "side view"

#: One hue per probe (matplotlib's tab10 without its grey, which is the outline's colour).
PROBE_COLOURS = tuple(
    to_rgb(f"tab:{c}")
    for c in ("blue", "orange", "green", "red", "purple", "brown", "pink", "olive", "cyan")
)
OUTLINE_FILL_RGB = (0.88, 0.88, 0.88)
OUTLINE_EDGE_RGB = (0.45, 0.45, 0.45)
TRACK_WIDTH_PT = 2.0
TIP_SIZE_PT = 4.5  # the black dot under each track's deepest point
SHADE_RANGE = 0.6  # shanks of one probe: from 30 % darker to 30 % lighter than the probe's hue

_PAD_MM = 0.3
_PANELS_WIDTH_IN = 9.0
_PANELS_HEIGHT_IN = 6.0
_MAX_SCALE_IN_PER_MM = 1.0
_LEFT_IN, _GAP_IN, _LEGEND_IN, _BOTTOM_IN, _TOP_IN = 0.8, 1.0, 2.2, 0.7, 0.9


@dataclass(frozen=True)
class AtlasTrack:
    """One probe track: its name, its probe, and its points in CCF um (ML, AP, DV), shape (n, 3)."""

    name: str
    probe: str
    ccf_mlapdv_um: np.ndarray


@dataclass(frozen=True)
class BrainOutline:
    """The brain's silhouette seen from above and from the side, on the CCF grid.

    ``top_apml[i, k]``: some voxel of AP row ``i`` and ML column ``k`` is inside the brain (any
    along DV); ``side_apdv[i, j]``: the same for AP ``i`` and DV ``j`` (any along ML). Voxel
    ``n`` is centred at ``n * voxel_um`` CCF um on every axis.
    """

    top_apml: np.ndarray
    side_apdv: np.ndarray
    voxel_um: float


def brain_outline(inside_apdvml: np.ndarray, voxel_um: float = 25.0) -> BrainOutline:
    """Project a CCF-grid volume (numpy axes AP, DV, ML; nonzero inside the brain).

    Parameters
    ----------
    inside_apdvml
        Labels (or a mask) in the canonical PIR layout of :class:`CcfLabels.compact`; any
        nonzero value counts as brain.
    voxel_um
        Isotropic grid spacing; voxel 0 is centred at CCF 0 um.
    """
    vol = np.asarray(inside_apdvml)
    if vol.ndim != 3:
        raise ValueError(f"expected a 3-D (AP, DV, ML) volume, got shape {vol.shape}")
    if not voxel_um > 0:
        raise ValueError(f"voxel_um must be positive, got {voxel_um}")
    inside = vol != 0
    return BrainOutline(inside.any(axis=1), inside.any(axis=2), float(voxel_um))


def brain_outline_of(labels: CcfLabels) -> BrainOutline:
    """:func:`brain_outline` of the run's compact CCF labels (void = Allen id 0)."""
    spacing_um = np.asarray(labels.header.spacing, dtype=float) * 1e3
    if not np.allclose(spacing_um, spacing_um[0]) or not np.allclose(labels.header.origin, 0):
        raise ValueError(f"not a CCF grid (origin 0, isotropic): {labels.header}")
    brain_lut = np.asarray(labels.unique_labels) != 0  # compact index -> inside the brain
    return brain_outline(brain_lut[labels.compact], float(spacing_um[0]))


def track_colours(tracks: Sequence[AtlasTrack]) -> dict[str, tuple[float, float, float]]:
    """Colour of each track (by name): one hue per probe, shanks of a probe in shades of it."""
    probes = list(dict.fromkeys(t.probe for t in tracks))
    out: dict[str, tuple[float, float, float]] = {}
    for p, probe in enumerate(probes):
        base = np.asarray(PROBE_COLOURS[p % len(PROBE_COLOURS)])
        names = [t.name for t in tracks if t.probe == probe]
        for j, name in enumerate(names):
            shade = (j / (len(names) - 1) - 0.5) * SHADE_RANGE if len(names) > 1 else 0.0
            rgb = base * (1 + shade) if shade < 0 else base + (1 - base) * shade
            out[name] = tuple(float(c) for c in rgb)
    return out


def draw_tracks_in_atlas(outline: BrainOutline, tracks: Sequence[AtlasTrack], title: str) -> Figure:
    """Top and side views of the CCF brain outline with every track, in mm from bregma.

    The deepest point (largest CCF DV) of each track is marked with a black dot. Panels are
    labelled :data:`TOP_VIEW` and :data:`SIDE_VIEW` (``ax.get_label()``).
    """
    names = [t.name for t in tracks]
    if len(set(names)) != len(names):
        raise ValueError(f"track names must be unique: {names}")
    points_mm = [_track_bregma_mm(t) for t in tracks]
    colours = track_colours(tracks)

    # bregma mm of the voxel centres along each CCF axis
    ml_x = _axis_mm(outline.top_apml.shape[1], 0, outline.voxel_um)
    ap_y = _axis_mm(outline.top_apml.shape[0], 1, outline.voxel_um)
    dv_z = _axis_mm(outline.side_apdv.shape[1], 2, outline.voxel_um)
    ml_lim = _limits(ml_x, outline.top_apml.any(axis=0), [p[:, 0] for p in points_mm])
    ap_lim = _limits(ap_y, outline.top_apml.any(axis=1), [p[:, 1] for p in points_mm])
    dv_lim = _limits(dv_z, outline.side_apdv.any(axis=0), [p[:, 2] for p in points_mm])

    fig, ax_top, ax_side = _layout(ml_lim, ap_lim, dv_lim, n_legend=len(tracks) + 3)
    _draw_silhouette(ax_top, outline.top_apml, ml_x, ap_y)
    _draw_silhouette(ax_side, outline.side_apdv.T, ap_y, dv_z)
    ax_top.axvline(0.0, color="black", linestyle="--", linewidth=1.0, zorder=2)
    for ax in (ax_top, ax_side):
        ax.plot([0.0], [0.0], marker="+", color="black", markersize=9, mew=1.2, zorder=5)

    handles: list[Line2D] = []
    for track, pts in zip(tracks, points_mm, strict=True):
        colour = colours[track.name]
        tip = pts[int(np.argmin(pts[:, 2]))]  # dorsal +: the deepest point has the lowest z
        for ax, (a, b) in ((ax_top, (0, 1)), (ax_side, (1, 2))):
            ax.plot(tip[a], tip[b], "o", color="black", markersize=TIP_SIZE_PT, zorder=3)
            ax.plot(
                pts[:, a],
                pts[:, b],
                color=colour,
                linewidth=TRACK_WIDTH_PT,
                solid_capstyle="butt",
                solid_joinstyle="round",
                zorder=4,
            )
        folder = track.probe.rsplit("/", 1)[-1]  # the probe folder; the recording is the mouse's
        label = track.name if folder in track.name else f"{track.name} ({folder})"
        handles.append(Line2D([], [], color=colour, linewidth=3.0, label=label))
    handles += [
        Line2D(
            [],
            [],
            color="black",
            marker="o",
            linestyle="",
            markersize=TIP_SIZE_PT,
            label="deepest point",
        ),
        Line2D([], [], color="black", linestyle="--", linewidth=1.0, label="midline (bregma ML)"),
    ]
    if ml_lim[0] < 0 < ml_lim[1] and ap_lim[0] < 0 < ap_lim[1]:
        handles.append(
            Line2D([], [], color="black", marker="+", linestyle="", markersize=9, label="bregma")
        )

    ax_top.set_xlim(*ml_lim)
    ax_top.set_ylim(*ap_lim)  # anterior (+) at the top
    ax_side.set_xlim(ap_lim[1], ap_lim[0])  # anterior (+) on the left
    ax_side.set_ylim(*dv_lim)  # dorsal (+) at the top
    ax_top.set_xlabel("ML from bregma (mm): ← left | right →")
    ax_top.set_ylabel("AP from bregma (mm), anterior ↑")
    ax_side.set_xlabel("AP from bregma (mm), ← anterior")
    ax_side.set_ylabel("DV from bregma (mm), dorsal ↑")
    ax_top.set_title("Top view (dorsal surface, anterior up)", fontsize=10)
    ax_side.set_title("Side view (sagittal, seen from the left)", fontsize=10)
    for text, x, ha in (("L", 0.03, "left"), ("R", 0.97, "right")):
        ax_top.text(
            x,
            0.97,
            text,
            transform=ax_top.transAxes,
            ha=ha,
            va="top",
            fontsize=16,
            fontweight="bold",
            color="black",
            zorder=6,
        )
    for ax in (ax_top, ax_side):
        ax.tick_params(labelsize=8)
    side_box = ax_side.get_position()
    fig.legend(
        handles=handles,
        loc="upper left",
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(side_box.x1 + 0.15 / fig.get_size_inches()[0], side_box.y1),
    )
    fig.suptitle(title, fontsize=11)
    log.debug("atlas view %r: %d tracks", title, len(tracks))
    return fig


# --- helpers ---------------------------------------------------------------------------------


def _track_bregma_mm(track: AtlasTrack) -> np.ndarray:
    """The track's points in IBL bregma mm (x ML right+, y AP anterior+, z DV dorsal+)."""
    pts = np.asarray(track.ccf_mlapdv_um, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0 or not np.isfinite(pts).all():
        raise ValueError(
            f"track {track.name}: expected finite CCF um points of shape (n, 3), got {pts.shape}"
        )
    return ccf_um_to_bregma_um(pts) / 1e3


def _axis_mm(n: int, axis: int, voxel_um: float) -> np.ndarray:
    """Bregma mm of the voxel centres 0..n-1 along CCF axis ``axis`` (0 ML, 1 AP, 2 DV)."""
    ccf = np.tile(BREGMA_MLAPDV_UM, (n, 1))
    ccf[:, axis] = np.arange(n) * voxel_um
    return ccf_um_to_bregma_um(ccf)[:, axis] / 1e3


def _limits(centres_mm: np.ndarray, occupied: np.ndarray, extra: list[np.ndarray]) -> tuple:
    """(low, high) mm covering the occupied voxels (half a voxel beyond) and the track points."""
    half = abs(centres_mm[1] - centres_mm[0]) / 2 if len(centres_mm) > 1 else 0.0
    values = [centres_mm[occupied] - half, centres_mm[occupied] + half, *extra]
    values = np.concatenate([np.ravel(v) for v in values])
    if values.size == 0:  # no brain and no track: the whole grid
        values = np.array([centres_mm.min() - half, centres_mm.max() + half])
    return float(values.min() - _PAD_MM), float(values.max() + _PAD_MM)


def _layout(ml_lim: tuple, ap_lim: tuple, dv_lim: tuple, n_legend: int) -> tuple:
    """A figure with the two panels at one common scale (inches per mm), legend on the right."""
    w_top, h_top = np.diff(ml_lim)[0], np.diff(ap_lim)[0]
    w_side, h_side = np.diff(ap_lim)[0], np.diff(dv_lim)[0]
    scale = min(
        _MAX_SCALE_IN_PER_MM,
        _PANELS_WIDTH_IN / (w_top + w_side),
        _PANELS_HEIGHT_IN / max(h_top, h_side),
    )
    panels_h = max(h_top, h_side) * scale
    width = _LEFT_IN + (w_top + w_side) * scale + _GAP_IN + _LEGEND_IN
    height = _BOTTOM_IN + max(panels_h, 0.2 * n_legend) + _TOP_IN
    fig = new_figure(width, height)
    top_edge = height - _TOP_IN
    axes = []
    x0 = _LEFT_IN
    for label, w, h in ((TOP_VIEW, w_top, h_top), (SIDE_VIEW, w_side, h_side)):
        rect = [x0 / width, (top_edge - h * scale) / height, w * scale / width, h * scale / height]
        axes.append(fig.add_axes(rect, label=label))
        x0 += w * scale + _GAP_IN
    return fig, axes[0], axes[1]


def _draw_silhouette(ax: Axes, mask: np.ndarray, x_mm: np.ndarray, y_mm: np.ndarray) -> None:
    """Filled silhouette of ``mask`` (rows along ``y_mm``, columns along ``x_mm``) and its edge."""
    rgba = np.zeros((*mask.shape, 4))
    rgba[mask] = (*OUTLINE_FILL_RGB, 1.0)
    half_x = (x_mm[1] - x_mm[0]) / 2 if len(x_mm) > 1 else 0.5
    half_y = (y_mm[1] - y_mm[0]) / 2 if len(y_mm) > 1 else 0.5
    extent = (x_mm[0] - half_x, x_mm[-1] + half_x, y_mm[-1] + half_y, y_mm[0] - half_y)
    ax.imshow(rgba, origin="upper", extent=extent, interpolation="nearest", zorder=0)
    if mask.any() and not mask.all() and min(mask.shape) > 1:
        ax.contour(
            x_mm,
            y_mm,
            mask.astype(float),
            levels=[0.5],
            colors=[OUTLINE_EDGE_RGB],
            linewidths=0.8,
            zorder=1,
        )
    ax.set_aspect("auto")
