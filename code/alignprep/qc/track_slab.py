"""A track on its histology: an oblique slab resliced along the fitted line, picks drawn on it.

The picks (LPS mm, the image-space frame) are fitted with a line (their centroid and first
principal direction, pointing from the brain surface toward the tip: the deepest pick is the one
furthest along it). The slab is the plane through that line and the direction perpendicular to
it and to the AP axis (close to a coronal plane for a usual insertion; the ML axis when the track
runs along AP), oriented so the animal's right is on the right. Each pixel is the maximum of the
channel over ``thickness_um`` across the plane (trilinear samples one voxel apart). In the
picture the vertical axis is the distance along the track above the deepest pick (the tip at
the bottom, as in the probe summary), the horizontal axis the distance from the line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from scipy import ndimage

from .grid import DisplayVolume
from .render import PICK_RGB, TRACK_RGB, new_figure

AP_LPS = np.array([0.0, 1.0, 0.0])
ML_LPS = np.array([-1.0, 0.0, 0.0])  # toward the animal's right


@dataclass(frozen=True)
class TrackLine:
    """A fitted line: ``centre`` (LPS mm) and unit ``direction`` toward the tip."""

    centre: np.ndarray
    direction: np.ndarray

    def along_mm(self, points_lps_mm: np.ndarray) -> np.ndarray:
        """Signed distance of points along the line from the centre (mm, + toward the tip)."""
        return (np.asarray(points_lps_mm, dtype=float) - self.centre) @ self.direction


def fit_line(picks_lps_mm: np.ndarray) -> TrackLine:
    """The picks' centroid and principal direction, pointing from the first pick's end (the
    surface: picks are listed from the brain surface down) toward the last."""
    pts = np.asarray(picks_lps_mm, dtype=float)
    centre = pts.mean(axis=0)
    _, _, vt = np.linalg.svd(pts - centre, full_matrices=False)
    direction = vt[0] / np.linalg.norm(vt[0])
    if (pts[-1] - pts[0]) @ direction < 0:
        direction = -direction
    return TrackLine(centre, direction)


@dataclass(frozen=True)
class Slab:
    """The resliced slab and where the picks fall on it.

    ``image[row, col]``: row ``r`` is ``height_um[r]`` above the deepest pick, column ``c`` is
    ``lateral_um[c]`` from the line (+ toward the animal's right).
    """

    image: np.ndarray
    height_um: np.ndarray
    lateral_um: np.ndarray
    picks_um: np.ndarray  # (n, 2): lateral, height of each pick projected on the plane
    line: TrackLine
    lateral: np.ndarray  # unit vector (LPS) of the columns
    length_um: float  # deepest pick to the most superficial one, along the line


def plane_axes(direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lateral, normal) unit vectors: the slab's in-plane lateral axis and its thickness axis."""
    lateral = np.cross(direction, AP_LPS)
    if np.linalg.norm(lateral) < 0.2:  # the track runs along AP: use the ML axis instead
        lateral = ML_LPS - (ML_LPS @ direction) * direction
    lateral /= np.linalg.norm(lateral)
    if lateral @ ML_LPS < 0:
        lateral = -lateral
    normal = np.cross(direction, lateral)
    return lateral, normal / np.linalg.norm(normal)


def track_slab(
    volume: DisplayVolume,
    picks_lps_mm: np.ndarray,
    thickness_um: float = 300.0,
    margin_um: float = 600.0,
    half_width_um: float = 1500.0,
) -> Slab:
    """Reslice ``volume`` along the picks' fitted line (see the module docstring)."""
    picks = np.asarray(picks_lps_mm, dtype=float)
    line = fit_line(picks)
    lateral, normal = plane_axes(line.direction)
    step_um = float(volume.spacing_mm.min() * 1000.0)
    along_um = line.along_mm(picks) * 1000.0
    tip_um = float(along_um.max())
    length_um = float(tip_um - along_um.min())
    height_um = np.arange(-margin_um, length_um + margin_um + step_um / 2, step_um)[::-1]
    lateral_um = np.arange(-half_width_um, half_width_um + step_um / 2, step_um)
    half = max(round(thickness_um / 2 / step_um), 0)
    across_um = np.arange(-half, half + 1) * step_um
    along = (tip_um - height_um) / 1000.0  # mm from the centre, + toward the tip
    pts = (
        line.centre
        + along[:, None, None, None] * line.direction
        + (lateral_um / 1000.0)[None, :, None, None] * lateral
        + (across_um / 1000.0)[None, None, :, None] * normal
    )
    index = volume.index_of(pts.reshape(-1, 3))
    samples = _sample(volume.data, index)
    image = samples.reshape(len(height_um), len(lateral_um), len(across_um)).max(axis=2)
    rel = picks - line.centre
    picks_um = np.column_stack([rel @ lateral * 1000.0, tip_um - along_um])
    return Slab(image, height_um, lateral_um, picks_um, line, lateral, length_um)


def _sample(data: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Trilinear samples of ``data`` at continuous indices (n, 3); 0 outside. Only the box the
    samples touch is read (a slab is a few MB of a volume of hundreds)."""
    low = np.clip(np.floor(index.min(axis=0)).astype(int) - 1, 0, np.array(data.shape) - 1)
    high = np.clip(np.ceil(index.max(axis=0)).astype(int) + 2, 1, np.array(data.shape))
    if np.any(high <= low):
        return np.zeros(len(index), dtype=np.float32)
    box = data[tuple(slice(a, b) for a, b in zip(low, high, strict=True))]
    outside = np.any((index < -0.5) | (index > np.array(data.shape) - 0.5), axis=1)
    samples = ndimage.map_coordinates(
        box, (index - low).T, order=1, mode="nearest", output=np.float32
    )
    samples[outside] = 0.0
    return samples


def draw_track_slab(slabs: list[tuple[str, Slab]], title: str, tick_um: float = 500.0) -> Figure:
    """One panel per channel: the slab in grey, the fitted line with depth ticks along it, and
    the picks (magenta dots). Each panel's axes are labelled ``slab <channel>``."""
    panel_in = 3.6  # each panel's width; its height follows the slab's aspect
    aspect = slabs[0][1].image.shape[0] / max(slabs[0][1].image.shape[1], 1)
    left_in, gap_in, bottom_in, top_in = 0.9, 0.5, 0.75, 0.7
    width_in = left_in + len(slabs) * (panel_in + gap_in)
    height_in = bottom_in + panel_in * aspect + top_in
    fig = new_figure(width_in, height_in)
    fig.suptitle(title, fontsize=11)
    for n, (channel, slab) in enumerate(slabs):
        rect = (
            (left_in + n * (panel_in + gap_in)) / width_in, bottom_in / height_in,
            panel_in / width_in, panel_in * aspect / height_in,
        )  # fmt: skip
        ax = fig.add_axes(rect)
        _draw_panel(ax, slab, tick_um)
        ax.set_label(f"slab {channel}")
        ax.set_title(channel, fontsize=9)
        if n == 0:
            ax.set_ylabel("distance along the track above the deepest pick (um)", fontsize=8)
            ax.legend(loc="upper right", fontsize=7, framealpha=0.6)
    fig.text(
        0.5, 0.1 / height_in,
        "distance from the line (um; + toward the animal's right)\neach pixel: the maximum "
        "over the slab's thickness across the plane of the fitted line",
        ha="center", fontsize=8,
    )  # fmt: skip
    return fig


def _draw_panel(ax, slab: Slab, tick_um: float) -> None:
    step = abs(slab.height_um[0] - slab.height_um[1]) if len(slab.height_um) > 1 else 1.0
    extent = (
        slab.lateral_um[0] - step / 2, slab.lateral_um[-1] + step / 2,
        slab.height_um[-1] - step / 2, slab.height_um[0] + step / 2,
    )  # fmt: skip
    inside = slab.image[slab.image > 0]
    low, high = np.percentile(inside, [0.5, 99.5]) if inside.size else (0.0, 1.0)
    ax.imshow(slab.image, cmap="gray", vmin=low, vmax=max(high, low + 1), extent=extent,
              interpolation="nearest", origin="upper")  # fmt: skip
    ax.plot([0, 0], [0, slab.length_um], color=TRACK_RGB, linewidth=1.0, label="fitted line")
    for h in np.arange(0.0, slab.length_um + 1e-6, tick_um):
        ax.plot([-60, 60], [h, h], color=TRACK_RGB, linewidth=1.0)
        ax.text(80, h, f"{h:.0f}", color=TRACK_RGB, fontsize=7, va="center")
    ax.scatter(slab.picks_um[:, 0], slab.picks_um[:, 1], s=12, marker="o", color=[PICK_RGB],
               linewidths=0, zorder=3, label="picks")  # fmt: skip
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.tick_params(labelsize=7)
