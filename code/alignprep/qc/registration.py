"""Registration overlay: the registration channel with the warped CCF region boundaries over it.

Three orthogonal sections through one point (the brain's centre, or a track's centroid) of the
image-space grid: coronal (animal's left on the left, dorsal up), sagittal (anterior on the left,
dorsal up), horizontal (left on the left, anterior up). A voxel is a boundary voxel when its
label differs from the next voxel along either axis of the section; boundary voxels are painted
opaque :data:`~alignprep.qc.render.PICK_RGB`, so a reader (or a test) finds them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure

from .grid import DisplayVolume
from .render import DPI, PICK_RGB, TRACK_RGB, new_figure

#: (name, fixed array axis, (row axis, column axis), transpose the slice, axis labels)
SECTIONS = (
    ("coronal", 0, ("DV", "ML")),
    ("sagittal", 1, ("DV", "AP")),
    ("horizontal", 2, ("AP", "ML")),
)
_AXIS = {"AP": 0, "ML": 1, "DV": 2}
_WORDS = {"AP": "anterior → posterior", "ML": "left → right", "DV": "dorsal → ventral"}


@dataclass(frozen=True)
class Section:
    """One 2-D section: image rows and columns follow the named display axes."""

    name: str
    image: np.ndarray  # (rows, cols)
    labels: np.ndarray  # (rows, cols)
    row_axis: str
    col_axis: str
    extent_mm: tuple[float, float, float, float]  # left, right, bottom, top for imshow


def section(
    volume: DisplayVolume,
    labels: DisplayVolume,
    name: str,
    centre: Sequence[int],
    half_width_mm: float | None = None,
) -> Section:
    """The section ``name`` through the voxel ``centre`` (ap, ml, dv) of both volumes; with
    ``half_width_mm``, only the square of that half width around the centre (the extent stays
    in the grid's millimetres, so a cropped and a whole section share their coordinates)."""
    fixed, (row_axis, col_axis) = {s[0]: (s[1], s[2]) for s in SECTIONS}[name]
    index: list[object] = [slice(None)] * 3
    index[fixed] = int(np.clip(centre[fixed], 0, volume.data.shape[fixed] - 1))
    first = {}
    if half_width_mm is not None:
        for axis in (_AXIS[row_axis], _AXIS[col_axis]):
            half = int(np.ceil(half_width_mm / volume.spacing_mm[axis]))
            lo = int(np.clip(centre[axis] - half, 0, volume.data.shape[axis] - 1))
            hi = int(np.clip(centre[axis] + half + 1, lo + 1, volume.data.shape[axis]))
            index[axis], first[axis] = slice(lo, hi), lo
    image, lab = volume.data[tuple(index)], labels.data[tuple(index)]
    remaining = [a for a in range(3) if a != fixed]  # the slice's axes, in array order
    if remaining.index(_AXIS[row_axis]) == 1:
        image, lab = image.T, lab.T
    rows, cols = image.shape
    s_row = volume.spacing_mm[_AXIS[row_axis]]
    s_col = volume.spacing_mm[_AXIS[col_axis]]
    r0, c0 = first.get(_AXIS[row_axis], 0), first.get(_AXIS[col_axis], 0)
    extent = (
        (c0 - 0.5) * s_col, (c0 + cols - 0.5) * s_col, (r0 + rows - 0.5) * s_row,
        (r0 - 0.5) * s_row,
    )  # fmt: skip
    return Section(name, image, lab, row_axis, col_axis, extent)


def boundaries(labels: np.ndarray) -> np.ndarray:
    """Boundary pixels of a label image: the label differs from the next pixel down or right."""
    edge = np.zeros(labels.shape, dtype=bool)
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge


def display_range(image: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """Grey-level window: the 0.5th-99.5th percentile of the voxels inside the brain."""
    values = image[inside] if inside.any() else image.ravel()
    if values.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(values.astype(np.float64), [0.5, 99.5])
    return float(low), float(high if high > low else low + 1)


def draw_overlay(
    volume: DisplayVolume,
    labels: DisplayVolume,
    centre: Sequence[int],
    title: str,
    track_lps_mm: np.ndarray | None = None,
    half_width_mm: float | None = None,
) -> Figure:
    """The three sections through ``centre`` with boundaries; axes labelled by section name.

    ``track_lps_mm``: a track's picks, drawn projected onto each section (cyan);
    ``half_width_mm``: show only that far around the centre (a track's neighbourhood).
    """
    sections = [section(volume, labels, n, centre, half_width_mm) for n, _, _ in SECTIONS]
    fig, axes = _layout(sections, volume.spacing_mm)
    fig.suptitle(title, fontsize=12)
    for ax, sec in zip(axes, sections, strict=True):
        name = sec.name
        low, high = display_range(sec.image, sec.labels != 0)
        ax.imshow(
            sec.image, cmap="gray", vmin=low, vmax=high, extent=sec.extent_mm,
            interpolation="nearest", origin="upper",
        )  # fmt: skip
        rgba = np.zeros((*sec.labels.shape, 4), dtype=np.uint8)
        rgba[boundaries(sec.labels)] = (*(round(255 * c) for c in PICK_RGB), 255)
        ax.imshow(rgba, extent=sec.extent_mm, interpolation="nearest", origin="upper")
        if track_lps_mm is not None:
            idx = labels.index_of(track_lps_mm) * labels.spacing_mm
            rows, cols = idx[:, _AXIS[sec.row_axis]], idx[:, _AXIS[sec.col_axis]]
            ax.plot(cols, rows, "-o", color=TRACK_RGB, markersize=2.5, linewidth=0.8,
                    label="track (picks, projected)")  # fmt: skip
            ax.set_xlim(sec.extent_mm[0], sec.extent_mm[1])
            ax.set_ylim(sec.extent_mm[2], sec.extent_mm[3])
        ax.set_label(name)
        ax.set_title(f"{name} section", fontsize=10)
        ax.set_xlabel(f"{sec.col_axis} (mm, {_WORDS[sec.col_axis]})", fontsize=8)
        ax.set_ylabel(f"{sec.row_axis} (mm, {_WORDS[sec.row_axis]})", fontsize=8)
        ax.tick_params(labelsize=7)
        if sec.col_axis == "ML":
            for x, text in ((0.02, "L"), (0.98, "R")):
                ax.text(x, 0.97, text, transform=ax.transAxes, color="yellow", fontsize=12,
                        ha="left" if x < 0.5 else "right", va="top", weight="bold")  # fmt: skip
    legend = (
        "grey: registration channel (image space); magenta: CCF region boundaries warped into "
        "the image (labels_in_<mouse>.nrrd)"
    )
    if track_lps_mm is not None:
        legend += "; cyan: the track's picks, projected onto each section"
    fig.text(0.5, 0.1 / fig.get_size_inches()[1], legend, ha="center", fontsize=8)
    return fig


#: Smallest panel (pixels across its longer side); a larger grid gets a pixel per voxel at least.
MIN_PANEL_PX = 380
_LEFT_IN, _GAP_IN, _RIGHT_IN, _BOTTOM_IN, _TOP_IN = 0.7, 0.75, 0.2, 0.85, 0.75


def _layout(sections: list[Section], spacing_mm: np.ndarray) -> tuple[Figure, list]:
    """A figure whose panels show every voxel on at least one pixel (boundaries one voxel
    wide must not fall between pixels), side by side at one scale."""
    sizes_mm = [
        (abs(s.extent_mm[1] - s.extent_mm[0]), abs(s.extent_mm[2] - s.extent_mm[3]))
        for s in sections
    ]
    longest_mm = max(max(w, h) for w, h in sizes_mm)
    px_per_mm = max(1.0 / float(np.min(spacing_mm)), MIN_PANEL_PX / longest_mm)
    panels_in = [(w * px_per_mm / DPI, h * px_per_mm / DPI) for w, h in sizes_mm]
    width_in = _LEFT_IN + sum(w for w, _ in panels_in) + _GAP_IN * (len(panels_in) - 1)
    width_in += _RIGHT_IN
    height_in = _BOTTOM_IN + max(h for _, h in panels_in) + _TOP_IN
    fig = new_figure(width_in, height_in)
    axes, x_in = [], _LEFT_IN
    for w_in, h_in in panels_in:
        rect = (x_in / width_in, _BOTTOM_IN / height_in, w_in / width_in, h_in / height_in)
        axes.append(fig.add_axes(rect))
        x_in += w_in + _GAP_IN
    return fig, axes


def brain_centre(labels: DisplayVolume) -> tuple[int, int, int]:
    """The voxel at the centre of the labelled brain (the middle of its bounding box)."""
    inside = labels.data != 0
    centre = []
    for axis in range(3):
        others = tuple(a for a in range(3) if a != axis)
        occupied = np.flatnonzero(inside.any(axis=others))
        n = labels.data.shape[axis]
        centre.append(int((occupied[0] + occupied[-1]) // 2) if occupied.size else n // 2)
    return tuple(centre)  # type: ignore[return-value]
