"""Figures without pyplot, and their deterministic PNG bytes.

A figure is a :class:`matplotlib.figure.Figure` on the Agg canvas (no GUI backend, no global
state, safe in worker threads and processes). :func:`png_bytes` renders it at a fixed DPI with
no timestamp or software tag, so the same figure gives the same bytes in every run.
"""

from __future__ import annotations

import io

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

#: Every QC figure is rendered at this resolution (pixels per inch).
DPI = 100

#: The colour of everything the run drew over an image (picks, lines, boundaries).
PICK_RGB = (1.0, 0.0, 1.0)  # magenta: absent from grey images and from the Allen palette's greys
#: The colour of a track's line (fitted, or its picks projected) beside the magenta.
TRACK_RGB = (0.0, 0.85, 1.0)


def new_figure(width_in: float, height_in: float) -> Figure:
    """A blank figure of that size (inches) at :data:`DPI`, on its own Agg canvas."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes: identical for identical figures (no date, no software tag)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def data_to_pixel(ax, xy) -> tuple[float, float]:
    """Where data point ``xy`` of ``ax`` lands in the PNG: (column, row) from the top left."""
    x_px, y_px = ax.transData.transform(xy)
    height_px = ax.figure.get_size_inches()[1] * DPI
    return float(x_px), float(height_px - y_px)
