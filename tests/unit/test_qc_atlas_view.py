"""The "track in the atlas" QC figure: tracks land where their CCF points are, on the right side.

Independent truth: the IBL bregma frame written out from iblatlas's own constant (coordinates.md
§6: x = ML - bregma_ML, y = bregma_AP - AP, z = bregma_DV - DV, in um; ML toward the animal's
right), analytic ellipsoid "brains" on a coarse CCF-like grid, and the pixels of the rendered PNG
(found by colour) compared with ``data_to_pixel``.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from iblatlas.atlas import ALLEN_CCF_LANDMARKS_MLAPDV_UM
from matplotlib.image import imread

from alignprep.inputs.references import CcfLabels
from alignprep.qc import atlas_view
from alignprep.qc.atlas_view import (
    OUTLINE_FILL_RGB,
    PROBE_COLOURS,
    SIDE_VIEW,
    TOP_VIEW,
    AtlasTrack,
    BrainOutline,
    brain_outline,
    brain_outline_of,
    draw_tracks_in_atlas,
    track_colours,
)
from alignprep.qc.render import DPI, data_to_pixel, png_bytes
from alignprep.space.atlas import ccf_header

BREGMA_UM = np.asarray(ALLEN_CCF_LANDMARKS_MLAPDV_UM["bregma"], dtype=float)  # (ML, AP, DV)
VOXEL_UM = 200.0
SHAPE_APDVML = (66, 40, 57)  # the CCF's 13.2 x 8 x 11.4 mm at 200 um
# (centre ML, AP, DV um; radii ML, AP, DV um): a brain and a left-only anterior lobe, so that
# the silhouette is asymmetric both left/right and anterior/posterior. DV centres on voxels.
ELLIPSOIDS = (
    ((5739.0, 7000.0, 4000.0), (4300.0, 4800.0, 3000.0)),
    ((3500.0, 2200.0, 2000.0), (1200.0, 1300.0, 1000.0)),
)


def bregma_mm(ccf_mlapdv_um) -> np.ndarray:
    """IBL bregma mm (x ML right+, y AP anterior+, z DV dorsal+), written out independently."""
    p = np.atleast_2d(np.asarray(ccf_mlapdv_um, dtype=float))
    return (
        np.stack([p[:, 0] - BREGMA_UM[0], BREGMA_UM[1] - p[:, 1], BREGMA_UM[2] - p[:, 2]], axis=1)
        / 1e3
    )


def ellipsoid_labels() -> np.ndarray:
    """Compact-label-like volume (AP, DV, ML): nonzero (several labels) inside the ellipsoids."""
    ap, dv, ml = (np.arange(n) * VOXEL_UM for n in SHAPE_APDVML)
    ap, dv, ml = np.meshgrid(ap, dv, ml, indexing="ij")
    labels = np.zeros(SHAPE_APDVML, dtype=np.uint16)
    rng = np.random.default_rng(12)
    for (cml, cap, cdv), (rml, rap, rdv) in ELLIPSOIDS:
        inside = ((ml - cml) / rml) ** 2 + ((ap - cap) / rap) ** 2 + ((dv - cdv) / rdv) ** 2 <= 1
        labels[inside] = rng.integers(1, 50, size=int(inside.sum()))
    return labels


def analytic_projections() -> tuple[np.ndarray, np.ndarray]:
    """Top (AP, ML) and side (AP, DV) silhouettes of the ellipsoids, without any voxel volume.

    Each ellipsoid's DV (resp. ML-maximising) cross-section is largest at its centre; the DV
    centres are voxel centres, so the top view is exactly the 2-D ellipse test. The side view
    projects along ML: nearest ML voxel centre to the ellipsoid's ML centre.
    """
    ap = np.arange(SHAPE_APDVML[0]) * VOXEL_UM
    dv = np.arange(SHAPE_APDVML[1]) * VOXEL_UM
    ml = np.arange(SHAPE_APDVML[2]) * VOXEL_UM
    top = np.zeros((len(ap), len(ml)), bool)
    side = np.zeros((len(ap), len(dv)), bool)
    for (cml, cap, cdv), (rml, rap, rdv) in ELLIPSOIDS:
        assert (cdv / VOXEL_UM).is_integer()
        top |= ((ap[:, None] - cap) / rap) ** 2 + ((ml[None, :] - cml) / rml) ** 2 <= 1
        best_ml = ml[np.argmin(np.abs(ml - cml))]
        side |= ((ap[:, None] - cap) / rap) ** 2 + ((dv[None, :] - cdv) / rdv) ** 2 + (
            (best_ml - cml) / rml
        ) ** 2 <= 1
    return top, side


@pytest.fixture(scope="module")
def outline() -> BrainOutline:
    return brain_outline(ellipsoid_labels(), VOXEL_UM)


def straight(start, end, n: int = 8) -> np.ndarray:
    """n CCF um points from start to end (ML, AP, DV)."""
    return np.linspace(np.asarray(start, float), np.asarray(end, float), n)


def render(outline: BrainOutline, tracks: list[AtlasTrack]):
    """(RGB pixels, top axes, side axes) of one render."""
    fig = draw_tracks_in_atlas(outline, tracks, "test mouse")
    rgb = imread(io.BytesIO(png_bytes(fig)))[:, :, :3]
    axes = {ax.get_label(): ax for ax in fig.axes}
    assert rgb.shape[:2] == (
        round(fig.get_size_inches()[1] * DPI),
        round(fig.get_size_inches()[0] * DPI),
    )
    return rgb, axes[TOP_VIEW], axes[SIDE_VIEW]


def axes_rows_cols(ax, height_px: int) -> tuple[slice, slice]:
    """The PNG rows and columns inside the axes' frame."""
    box = ax.get_window_extent()
    rows = slice(int(np.ceil(height_px - box.y1)) + 1, int(np.floor(height_px - box.y0)) - 1)
    cols = slice(int(np.ceil(box.x0)) + 1, int(np.floor(box.x1)) - 1)
    return rows, cols


def coloured_pixels(rgb: np.ndarray, ax, colour, tol: float = 0.03) -> np.ndarray:
    """Centres (column, row) of the pixels of ``colour`` inside the axes, in data_to_pixel units."""
    rows, cols = axes_rows_cols(ax, rgb.shape[0])
    hit = np.all(np.abs(rgb[rows, cols] - np.asarray(colour)) <= tol, axis=-1)
    r, c = np.nonzero(hit)
    return np.stack([c + cols.start + 0.5, r + rows.start + 0.5], axis=1)


def midline_column(ax) -> float:
    """PNG column of the drawn midline: bregma ML, x = 0 mm."""
    return data_to_pixel(ax, (0.0, 0.0))[0]


# ------------------------------------------------------------------------------- (a) left/right


LEFT = AtlasTrack("L_probe_track", "L_probe", straight((3900, 6000, 800), (4300, 6600, 3800)))
RIGHT = AtlasTrack("R_probe_track", "R_probe", straight((7400, 6200, 900), (7100, 6900, 3600)))


def mirrored(track: AtlasTrack) -> AtlasTrack:
    """The same track in the other hemisphere (ML reflected about bregma ML)."""
    pts = track.ccf_mlapdv_um.copy()
    pts[:, 0] = 2 * BREGMA_UM[0] - pts[:, 0]
    return AtlasTrack(track.name, track.probe, pts)


def assert_hemispheres(outline: BrainOutline, left: AtlasTrack, right: AtlasTrack) -> None:
    """``left`` entirely left of the midline in the top view, ``right`` entirely right of it."""
    rgb, top, _ = render(outline, [left, right])
    colours = track_colours([left, right])
    mid = midline_column(top)
    px_left = coloured_pixels(rgb, top, colours[left.name])
    px_right = coloured_pixels(rgb, top, colours[right.name])
    assert len(px_left) > 20 and len(px_right) > 20
    assert px_left[:, 0].max() < mid, "a left-hemisphere track is drawn right of the midline"
    assert px_right[:, 0].min() > mid, "a right-hemisphere track is drawn left of the midline"


def test_left_track_left_of_midline_right_track_right(outline):
    assert bregma_mm(LEFT.ccf_mlapdv_um)[:, 0].max() < 0  # truth: left hemisphere (x < 0)
    assert bregma_mm(RIGHT.ccf_mlapdv_um)[:, 0].min() > 0
    assert_hemispheres(outline, LEFT, RIGHT)


def test_drawn_midline_is_at_bregma_ml(outline):
    rgb, top, _ = render(outline, [LEFT, RIGHT])
    rows, cols = axes_rows_cols(top, rgb.shape[0])
    dark = np.all(rgb[rows, cols] < 0.2, axis=-1).sum(axis=0)  # dark pixels per column
    col = cols.start + int(np.argmax(dark)) + 0.5
    assert dark.max() > 0.3 * (rows.stop - rows.start)  # a dashed line down the panel
    assert abs(col - midline_column(top)) <= 1.0
    # L and R are written on their own halves
    texts = {t.get_text(): t.get_window_extent() for t in top.texts}
    assert texts["L"].x1 < midline_column(top) < texts["R"].x0


def test_mirrored_tracks_move_to_the_other_side(outline):
    # the swapped pair: the left-drawn track now carries right-hemisphere points
    left_m, right_m = mirrored(RIGHT), mirrored(LEFT)
    assert_hemispheres(outline, left_m, right_m)
    with pytest.raises(AssertionError, match="left-hemisphere track"):
        assert_hemispheres(outline, mirrored(LEFT), mirrored(RIGHT))


def test_negative_control_a_mirrored_ml_axis_fails(outline, monkeypatch):
    real = atlas_view.ccf_um_to_bregma_um

    def ml_mirrored(ccf_mlapdv_um):
        xyz = real(ccf_mlapdv_um)
        return xyz * np.array([-1.0, 1.0, 1.0])

    monkeypatch.setattr(atlas_view, "ccf_um_to_bregma_um", ml_mirrored)
    with pytest.raises(AssertionError, match="hemisphere track is drawn"):
        assert_hemispheres(outline, LEFT, RIGHT)


# ------------------------------------------------------------------------ (b) up is anterior/dorsal


def test_anterior_is_up_in_top_view_and_left_in_side_view_dorsal_is_up(outline):
    anterior = AtlasTrack("ant", "ant", straight((5000, 3500, 1500), (5300, 3900, 2500)))
    posterior = AtlasTrack("post", "post", straight((6500, 10000, 1500), (6700, 10400, 2500)))
    dorsal = AtlasTrack("dors", "dors", straight((4600, 7000, 1000), (4900, 7600, 1600)))
    ventral = AtlasTrack("vent", "vent", straight((7000, 7000, 5600), (6800, 7600, 6200)))
    tracks = [anterior, posterior, dorsal, ventral]
    assert (
        bregma_mm(anterior.ccf_mlapdv_um)[:, 1].min()
        > bregma_mm(posterior.ccf_mlapdv_um)[:, 1].max()
    )
    rgb, top, side = render(outline, tracks)
    colours = track_colours(tracks)
    px = {
        (view, t.name): coloured_pixels(rgb, ax, colours[t.name])
        for view, ax in (("top", top), ("side", side))
        for t in tracks
    }
    assert all(len(p) > 10 for p in px.values())
    # top view: anterior higher on the page (smaller row)
    assert px["top", "ant"][:, 1].max() < px["top", "post"][:, 1].min()
    # side view: anterior on the left, dorsal higher on the page
    assert px["side", "ant"][:, 0].max() < px["side", "post"][:, 0].min()
    assert px["side", "dors"][:, 1].max() < px["side", "vent"][:, 1].min()
    # within one track of the side view, the dorsal end is the top end
    first = data_to_pixel(side, bregma_mm(ventral.ccf_mlapdv_um[0])[0, 1:])
    last = data_to_pixel(side, bregma_mm(ventral.ccf_mlapdv_um[-1])[0, 1:])
    assert first[1] < last[1]


# -------------------------------------------------------------------------------- (c) endpoints


def test_track_endpoints_land_on_their_first_and_last_points(outline):
    rng = np.random.default_rng(3)
    tracks = []
    for i, (ml, ap) in enumerate(((3600, 3400), (7600, 5800), (4800, 8200), (6900, 10600))):
        start = np.array([ml, ap, 700.0]) + rng.uniform(-200, 200, 3)
        end = start + np.array([rng.uniform(-1000, 1000), rng.uniform(1000, 1600), 3000.0])
        tracks.append(AtlasTrack(f"p{i}_track", f"p{i}", straight(start, end, 11)))
    rgb, top, side = render(outline, tracks)
    colours = track_colours(tracks)
    half_width_px = atlas_view.TRACK_WIDTH_PT * DPI / 72 / 2
    for track in tracks:
        pts = bregma_mm(track.ccf_mlapdv_um)
        for ax, dims in ((top, [0, 1]), (side, [1, 2])):
            a = np.array(data_to_pixel(ax, pts[0, dims]))
            b = np.array(data_to_pixel(ax, pts[-1, dims]))
            px = coloured_pixels(rgb, ax, colours[track.name])
            length = np.linalg.norm(b - a)
            assert length > 30 and len(px) > length
            u = (b - a) / length
            along = (px - a) @ u
            across = np.abs((px - a) @ np.array([-u[1], u[0]]))
            assert abs(along.min()) <= 2.0, (track.name, ax.get_label(), along.min())
            assert abs(along.max() - length) <= 2.0, (track.name, ax.get_label())
            assert across.max() <= half_width_px + 1.0


# ---------------------------------------------------------------------------------- (d) outline


def test_outline_projections_match_the_analytic_ellipsoids(outline):
    top, side = analytic_projections()
    assert outline.voxel_um == VOXEL_UM
    np.testing.assert_array_equal(outline.top_apml, top)
    np.testing.assert_array_equal(outline.side_apdv, side)


def _erode(mask: np.ndarray, n: int) -> np.ndarray:
    out = mask.copy()
    for _ in range(n):
        p = np.pad(out, 1, constant_values=False)
        out = out & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    return out


def test_silhouette_covers_the_projected_brain(outline):
    rgb, top, side = render(outline, [])
    top_mask, side_mask = analytic_projections()
    ap_mm = (BREGMA_UM[1] - np.arange(SHAPE_APDVML[0]) * VOXEL_UM) / 1e3
    dv_mm = (BREGMA_UM[2] - np.arange(SHAPE_APDVML[1]) * VOXEL_UM) / 1e3
    ml_mm = (np.arange(SHAPE_APDVML[2]) * VOXEL_UM - BREGMA_UM[0]) / 1e3
    checked = {True: 0, False: 0}
    # rows of each mask along the panel's vertical axis, columns along its horizontal axis
    for ax, mask, x_mm, y_mm in ((top, top_mask, ml_mm, ap_mm), (side, side_mask.T, ap_mm, dv_mm)):
        bregma_px = data_to_pixel(ax, (0.0, 0.0))
        boxes = [t.get_window_extent() for t in ax.texts]  # the L / R letters
        rows, cols = axes_rows_cols(ax, rgb.shape[0])
        for want_inside, sel in ((True, _erode(mask, 1)), (False, _erode(~mask, 1))):
            want = OUTLINE_FILL_RGB if want_inside else (1.0, 1.0, 1.0)
            for r, c in zip(*np.nonzero(sel), strict=True):
                col, row = data_to_pixel(ax, (x_mm[c], y_mm[r]))
                if not (
                    cols.start + 2 <= col < cols.stop - 2 and rows.start + 2 <= row < rows.stop - 2
                ):
                    continue  # beyond the panel's limits (it shows the brain's bounding box)
                if ax is top and abs(col - midline_column(top)) <= 3:
                    continue
                if abs(col - bregma_px[0]) <= 8 and abs(row - bregma_px[1]) <= 8:
                    continue
                y_up = rgb.shape[0] - row
                if any(b.x0 - 2 <= col <= b.x1 + 2 and b.y0 - 2 <= y_up <= b.y1 + 2 for b in boxes):
                    continue
                pixel = rgb[int(row), int(col)]
                assert np.abs(pixel - want).max() <= 0.02, (ax.get_label(), r, c, pixel)
                checked[want_inside] += 1
    assert checked[True] > 1500 and checked[False] > 500, checked


# ----------------------------------------------------------------------------- (e) determinism


def test_two_renders_give_identical_bytes(outline):
    tracks = [LEFT, RIGHT]
    first = png_bytes(draw_tracks_in_atlas(outline, tracks, "m"))
    second = png_bytes(
        draw_tracks_in_atlas(brain_outline(ellipsoid_labels(), VOXEL_UM), tracks, "m")
    )
    assert first == second


# ------------------------------------------------------------------------------- the small API


def test_colours_one_hue_per_probe_and_distinct_shanks():
    shanks = [AtlasTrack(f"ProbeB_{s}", "ProbeB", np.zeros((2, 3))) for s in ("a", "b", "c", "d")]
    single = AtlasTrack("ProbeA_track", "ProbeA", np.zeros((2, 3)))
    colours = track_colours([single, *shanks])
    assert colours["ProbeA_track"] == pytest.approx(PROBE_COLOURS[0])
    rgb = np.array([colours[t.name] for t in shanks])
    assert len({tuple(np.round(c, 3)) for c in colours.values()}) == 5
    # shades of the second hue: each shank is the hue darkened or lightened (same chroma ratio)
    base = np.asarray(PROBE_COLOURS[1])
    darker = rgb[:2] / base
    assert np.allclose(darker, darker[:, :1]) and (darker[:, 0] < 1).all()  # scaled to black
    free = base < 1  # channels that can still move toward white
    lighter = (rgb[2:, free] - base[free]) / (1 - base[free])
    assert np.allclose(lighter, lighter[:, :1]) and (lighter[:, 0] > 0).all()  # mixed to white


def test_outline_of_ccf_labels_uses_void_id_not_index():
    compact = np.zeros((20, 16, 24), dtype=np.uint16)
    compact[5:10, 4:8, 3:9] = 2  # a region
    compact[12:15, 4:6, 15:20] = 1  # compact index 1 is void (Allen id 0) in this lookup
    labels = CcfLabels(compact, np.array([0, 0, -315]), ccf_header(compact.shape))
    got = brain_outline_of(labels)
    assert got.voxel_um == pytest.approx(25.0)
    want_top = np.zeros((20, 24), bool)
    want_top[5:10, 3:9] = True
    want_side = np.zeros((20, 16), bool)
    want_side[5:10, 4:8] = True
    np.testing.assert_array_equal(got.top_apml, want_top)
    np.testing.assert_array_equal(got.side_apdv, want_side)


@pytest.mark.parametrize("points", [np.zeros((0, 3)), np.zeros((4, 2)), np.full((2, 3), np.nan)])
def test_bad_track_points_are_refused(outline, points):
    with pytest.raises(ValueError, match="CCF um points"):
        draw_tracks_in_atlas(outline, [AtlasTrack("t", "p", points)], "m")
