"""Registration overlay: the drawn boundaries are the label edges of the volume on disk."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import nrrd
import numpy as np
import pytest
from scipy import ndimage

from alignprep.qc.grid import read_display_volume
from alignprep.qc.registration import SECTIONS, brain_centre, draw_overlay
from alignprep.qc.render import png_bytes

SPACING_MM = 0.05
IRP = np.array([[0, 0, -1], [-1, 0, 0], [0, 1, 0]], float) * SPACING_MM  # rows: i, j, k


def _volumes(tmp_path):
    """An ellipsoid brain (label 1) with a left-hemisphere region (label 7), written IRP, and
    the same region's truth in LPS: x > 0 is the animal's left."""
    shape_c = (40, 50, 36)  # C order: (AP, ML, DV) for IRP
    origin = np.array([1.0, -1.0, 0.5])
    k, j, i = np.indices(shape_c)
    lps = origin + np.stack([i, j, k], -1) @ IRP  # (..., 3) LPS mm of every voxel
    centre = origin + np.array([17.5, 24.5, 19.5]) @ IRP
    rel = (lps - centre) / np.array([0.9, 0.8, 0.7])
    labels = np.where((rel**2).sum(-1) < 1, 1, 0).astype(np.int32)
    labels[(labels == 1) & (lps[..., 0] - centre[0] > 0.25) & (lps[..., 2] > centre[2])] = 7
    image = (labels * 100 + np.random.default_rng(3).normal(0, 5, shape_c)).astype(np.float32)
    header = {"space": "left-posterior-superior", "space directions": IRP, "space origin": origin}
    for name, data in (("labels.nrrd", labels), ("image.nrrd", image)):
        nrrd.write(str(tmp_path / name), data, header, index_order="C")
    return read_display_volume(tmp_path / "image.nrrd"), read_display_volume(
        tmp_path / "labels.nrrd"
    )


def _magenta(rgba: np.ndarray) -> np.ndarray:
    return (rgba[..., 0] > 0.99) & (rgba[..., 1] < 0.01) & (rgba[..., 2] > 0.99)


def _pixels_to_section_index(ax, rows_px, cols_px, height_px, spacing_mm):
    """PNG pixel centres -> (row, col) voxel indices of the section drawn in ``ax``."""
    display = np.column_stack([cols_px + 0.5, height_px - (rows_px + 0.5)])
    data = ax.transData.inverted().transform(display)  # (x mm, y mm)
    return np.round(data[:, 1] / spacing_mm).astype(int), np.round(data[:, 0] / spacing_mm).astype(
        int
    )


@pytest.fixture(scope="module", params=[None, 0.6], ids=["whole", "cropped"])
def drawn(tmp_path_factory, request):
    """The overlay through the brain centre, whole or cropped to 0.6 mm around it."""
    tmp = tmp_path_factory.mktemp("overlay")
    volume, labels = _volumes(tmp)
    centre = brain_centre(labels)
    fig = draw_overlay(volume, labels, centre, "test", half_width_mm=request.param)
    data = png_bytes(fig)
    return volume, labels, centre, fig, data, request.param


def _label_slice(labels, name, centre):
    fixed = {s[0]: s[1] for s in SECTIONS}[name]
    index = [slice(None)] * 3
    index[fixed] = centre[fixed]
    sl = labels.data[tuple(index)]
    return sl.T if name in ("coronal", "sagittal") else sl


@pytest.mark.parametrize("name", [s[0] for s in SECTIONS])
def test_boundaries_lie_on_label_edges_of_the_volume_on_disk(drawn, name):
    _, labels, centre, fig, data, _ = drawn
    rgba = mpimg.imread(io.BytesIO(data))
    ax = next(a for a in fig.axes if a.get_label() == name)
    bbox = ax.get_window_extent()
    rows, cols = np.nonzero(_magenta(rgba))
    height = rgba.shape[0]
    inside = (
        (cols >= bbox.x0)
        & (cols <= bbox.x1)
        & (height - rows >= bbox.y0)
        & (height - rows <= bbox.y1)
    )
    r, c = _pixels_to_section_index(ax, rows[inside], cols[inside], height, SPACING_MM)
    sl = _label_slice(labels, name, centre)
    # every voxel of the section is drawn on at least one pixel (a boundary cannot vanish)
    x0, x1 = sorted(ax.get_xlim())
    assert bbox.width >= (x1 - x0) / SPACING_MM - 1
    # independent truth: voxels with a 4-neighbour of another label, grown by one voxel
    edges = np.zeros(sl.shape, bool)
    for axis in (0, 1):
        diff = np.diff(sl, axis=axis) != 0
        pad = [(0, 0), (0, 0)]
        pad[axis] = (0, 1)
        edges |= np.pad(diff, pad)
        pad[axis] = (1, 0)
        edges |= np.pad(diff, pad)
    near = ndimage.binary_dilation(edges, iterations=1)
    assert r.size > 50
    ok = (r >= 0) & (r < sl.shape[0]) & (c >= 0) & (c < sl.shape[1])
    assert ok.all()
    assert near[r, c].all(), f"{np.sum(~near[r, c])} boundary pixels away from any label edge"
    # and every label edge inside the drawn window is drawn
    drawn_voxels = np.zeros(sl.shape, bool)
    drawn_voxels[r, c] = True
    (y_lo, y_hi), (x_lo, x_hi) = sorted(ax.get_ylim()), sorted(ax.get_xlim())
    rows_in = slice(round(y_lo / SPACING_MM + 0.5), round(y_hi / SPACING_MM + 0.5))
    cols_in = slice(round(x_lo / SPACING_MM + 0.5), round(x_hi / SPACING_MM + 0.5))
    window = np.zeros(sl.shape, bool)
    window[rows_in, cols_in] = True
    window = ndimage.binary_erosion(window)  # a crop cannot see past its own border
    assert np.mean(ndimage.binary_dilation(drawn_voxels)[edges & window]) > 0.99


def test_the_left_hemisphere_region_is_drawn_on_the_left(drawn):
    _, labels, centre, fig, data, _ = drawn
    rgba = mpimg.imread(io.BytesIO(data))
    for name in ("coronal", "horizontal"):  # the sections with ML across
        ax = next(a for a in fig.axes if a.get_label() == name)
        sl = _label_slice(labels, name, centre)
        assert (sl == 7).any()
        cols_mm = (np.nonzero(sl == 7)[1]) * SPACING_MM
        mid_mm = (sl.shape[1] - 1) / 2 * SPACING_MM
        x_region = ax.transData.transform([[cols_mm.mean(), 0]])[0, 0]
        x_mid = ax.transData.transform([[mid_mm, 0]])[0, 0]
        assert x_region < x_mid, f"{name}: the left-hemisphere region is drawn right of the middle"
    assert rgba.shape[2] in (3, 4)


def test_two_renders_give_the_same_bytes(drawn):
    volume, labels, centre, _, data, half_mm = drawn
    assert png_bytes(draw_overlay(volume, labels, centre, "test", half_width_mm=half_mm)) == data
