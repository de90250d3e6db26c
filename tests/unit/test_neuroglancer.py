"""Neuroglancer annotation layers -> picks -> level-0 voxel indices; finding annotation files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.inputs.neuroglancer import (
    TrackPoints,
    find_probe_file,
    read_state,
    to_level0_index,
    track_points,
)
from alignprep.inputs.ng_transform import Placement

from .ng_states import DIMS_XYZT, DIMS_ZYX, FILE, SRC, ann_layer, image, make_state

# ---------------------------------------------------------------------------------- read_state


def test_read_state_ok(tmp_path: Path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"layers": []}))
    assert read_state(path) == {"layers": []}


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "file not found"), ("{\n  oops", "invalid JSON"), ("[1, 2]", "expected an object")],
)
def test_read_state_errors_name_the_file(tmp_path: Path, content: str | None, expected: str):
    path = tmp_path / "s.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=expected) as info:
        read_state(path)
    assert info.value.file == str(path)
    assert str(path) in str(info.value)
    if content is not None and "oops" in content:
        assert info.value.row == 2


# -------------------------------------------------------------------------------- track_points


def test_reorder_by_name_xyzt_and_zyx_give_same_point():
    # physical point x=100, y=200, z=300 (in layer units), t=7
    a = track_points(make_state(ann_layer("A", [[100, 200, 300, 7]] * 2, DIMS_XYZT)), "A", FILE)
    b = track_points(make_state(ann_layer("B", [[300, 200, 100]] * 2, DIMS_ZYX)), "B", FILE)
    for tp in (a, b):
        assert isinstance(tp, TrackPoints)
        assert tp.coords_zyx.dtype == np.float64
        np.testing.assert_array_equal(tp.coords_zyx, [[300, 200, 100], [300, 200, 100]])
        np.testing.assert_array_equal(tp.scale_um_zyx, [2.0, 1.8, 1.8])
        assert tp.dimension_source == "layer source.transform.outputDimensions"
    assert a.layer == "A" and a.file == FILE


def test_global_dimensions_fallback_drops_t():
    layer = ann_layer("T", [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [0, 0, 0, 0]])
    dims = {"t": [1, "s"], "x": [1.8, "um"], "z": [2, "um"], "y": [1.8, "um"]}
    tp = track_points(make_state(layer, dims=dims), "T", FILE)
    assert tp.dimension_source == "global dimensions"
    # names in order t, x, z, y -> (z, y, x) = columns 2, 3, 1
    np.testing.assert_array_equal(tp.coords_zyx, [[3, 4, 2], [7, 8, 6], [11, 12, 10], [0, 0, 0]])
    assert tp.warnings == ()


def test_layer_transform_wins_over_global_dimensions():
    layer = ann_layer("T", [[1, 2, 3], [4, 5, 6]], DIMS_ZYX)
    tp = track_points(
        make_state(layer, dims={"x": [1, "m"], "y": [1, "m"], "z": [1, "m"]}), "T", FILE
    )
    assert tp.dimension_source == "layer source.transform.outputDimensions"
    np.testing.assert_array_equal(tp.coords_zyx, [[1, 2, 3], [4, 5, 6]])


def test_source_list_uses_the_local_annotations_entry():
    # Only the local://annotations source holds the layer's annotations: another source's
    # transform does not apply to them (Neuroglancer layer/annotation/index.ts).
    layer = ann_layer("T", [[1, 2, 3], [4, 5, 6]])
    layer["source"] = [
        "local://annotations",
        {"url": "precomputed://gs://b/ann", "transform": {"outputDimensions": DIMS_XYZT}},
    ]
    tp = track_points(make_state(layer, dims=DIMS_ZYX), "T", FILE)
    assert tp.dimension_source == "global dimensions"
    np.testing.assert_array_equal(tp.coords_zyx, [[1, 2, 3], [4, 5, 6]])
    layer["source"][0] = {"url": "local://annotations", "transform": {"outputDimensions": DIMS_ZYX}}
    tp = track_points(
        make_state(layer, dims={"x": [1, "m"], "y": [1, "m"], "z": [1, "m"]}), "T", FILE
    )
    assert tp.dimension_source == "layer source.transform.outputDimensions"
    np.testing.assert_array_equal(tp.scale_um_zyx, [2.0, 1.8, 1.8])


def test_no_or_two_local_sources_refused():
    layer = ann_layer("T", [[1, 2, 3], [4, 5, 6]])
    layer["source"] = ["precomputed://gs://b/ann"]
    with pytest.raises(InputError, match="expected exactly one 'local://annotations'") as info:
        track_points(make_state(layer, dims=DIMS_ZYX), "T", FILE)
    assert info.value.key == "source" and info.value.file == str(FILE)
    layer["source"] = ["local://annotations", "local://annotations"]
    with pytest.raises(InputError, match="exactly one"):
        track_points(make_state(layer, dims=DIMS_ZYX), "T", FILE)


@pytest.mark.parametrize(
    ("scale", "unit", "um"),
    [
        (1.8e-6, "m", 1.8),
        (1800, "nm", 1.8),
        (1.8, "um", 1.8),
        (1.8, "\u00b5m", 1.8),
        (1.8, "\u03bcm", 1.8),
        (0.002, "mm", 2.0),
        (2e-6, "m", 2.0),
    ],
)
def test_unit_conversion_to_um(scale: float, unit: str, um: float):
    dims = {"x": [scale, unit], "y": [scale, unit], "z": [scale, unit]}
    tp = track_points(make_state(ann_layer("T", [[0, 0, 0]] * 4, dims)), "T", FILE)
    np.testing.assert_array_equal(tp.scale_um_zyx, [um, um, um])


def test_unsupported_unit_is_error():
    dims = {"x": [1.8, "um"], "y": [1.8, "um"], "z": [1.8, "in"]}
    with pytest.raises(InputError, match="unit of 'z' is 'in'") as info:
        track_points(make_state(ann_layer("T", [[0, 0, 0]] * 4, dims)), "T", FILE)
    assert info.value.layer == "T" and info.value.file == str(FILE)


def test_order_kept_no_sort_no_dedup():
    pts = [[5, 5, 5], [1, 1, 1], [1, 1, 1], [9, 0, 3]]
    tp = track_points(make_state(ann_layer("T", pts, DIMS_ZYX)), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, pts)


def test_missing_layer_lists_available_annotation_layers():
    state = make_state(
        ann_layer("probe_A", [[0, 0, 0]] * 2, DIMS_ZYX),
        ann_layer("probe_B", [[0, 0, 0]] * 2, DIMS_ZYX),
        image("probe_C", SRC),
    )
    with pytest.raises(InputError, match=r"\['probe_A', 'probe_B'\]") as info:
        track_points(state, "probe_X", FILE)
    assert info.value.layer == "probe_X"
    assert str(FILE) in str(info.value)
    assert "probe_C" not in str(info.value)


def test_one_point_is_error():
    with pytest.raises(
        InputError, match=r"found 1 point annotation\(s\); at least 2.*entry and tip"
    ) as info:
        track_points(make_state(ann_layer("T", [[1, 2, 3]], DIMS_ZYX)), "T", FILE)
    assert info.value.layer == "T" and info.value.file == str(FILE)


def test_three_points_warn_four_do_not():
    three = track_points(make_state(ann_layer("T", [[1, 2, 3]] * 3, DIMS_ZYX)), "T", FILE)
    assert len(three.warnings) == 1 and "only 3 points" in three.warnings[0]
    four = track_points(make_state(ann_layer("T", [[1, 2, 3]] * 4, DIMS_ZYX)), "T", FILE)
    assert four.warnings == ()


def test_unknown_dimension_names():
    dims = {"a": [1, "m"], "b": [1, "m"], "c": [1, "m"]}
    with pytest.raises(InputError, match=r"unknown dimension names \['a', 'b', 'c'\].*x, y and z"):
        track_points(make_state(ann_layer("T", [[0, 0, 0]] * 2, dims)), "T", FILE)


def test_no_dimensions_anywhere_is_error():
    with pytest.raises(InputError, match="no dimension names") as info:
        track_points(make_state(ann_layer("T", [[0, 0, 0]] * 2)), "T", FILE)
    assert info.value.layer == "T"


def test_point_with_wrong_number_of_coordinates():
    layer = ann_layer("T", [[1, 2, 3, 0], [1, 2, 3], [4, 5, 6, 0]], DIMS_XYZT)
    with pytest.raises(InputError, match="expected 4 finite numbers") as info:
        track_points(make_state(layer), "T", FILE)
    assert info.value.key == "annotations[1]" and info.value.layer == "T"


@pytest.mark.parametrize(
    "annotation",
    [
        {"type": "axis_aligned_bounding_box", "pointA": [0, 0, 0], "pointB": [1, 1, 1]},
        {"type": "ellipsoid", "center": [0, 0, 0], "radii": [1, 1, 1]},
        {"pointA": [0, 0, 0], "pointB": [1, 1, 1]},  # no type: a box or a line?
        {"type": "point", "point": [0, 0, 0], "pointB": [1, 1, 1]},
        {"type": "spline", "points": [[0, 0, 0], [1, 1, 1]]},
    ],
)
def test_non_track_annotation_refused(annotation: dict):
    layer = ann_layer("T", [[0, 0, 0], [1, 1, 1]], DIMS_ZYX)
    layer["annotations"].append(annotation)
    with pytest.raises(InputError, match=r"not supported.*expected point annotations") as info:
        track_points(make_state(layer), "T", FILE)
    assert info.value.key == "annotations[2]"
    assert info.value.file == str(FILE) and info.value.layer == "T"


def _segments_layer(*annotations: dict) -> dict:
    layer = ann_layer("T", [], DIMS_ZYX)
    layer["annotations"] = list(annotations)
    return layer


def test_chained_lines_give_each_shared_vertex_once():
    layer = _segments_layer(
        {"type": "line", "pointA": [0, 0, 0], "pointB": [1, 1, 1]},
        {"type": "line", "pointA": [1, 1, 1], "pointB": [2, 2, 2]},
        {"type": "LINE", "pointA": [2, 2, 2], "pointB": [3, 3, 3]},  # type case-insensitive
    )
    tp = track_points(make_state(layer), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, [[0] * 3, [1] * 3, [2] * 3, [3] * 3])
    assert tp.kind == "segment" and tp.warnings == ()


def test_disjoint_lines_keep_every_end_point_in_annotation_order():
    layer = _segments_layer(
        {"type": "line", "pointA": [0, 0, 0], "pointB": [1, 1, 1]},
        {"type": "line", "pointA": [5, 5, 5], "pointB": [6, 6, 6]},
        {"type": "line", "pointA": [6, 6, 6.5], "pointB": [7, 7, 7]},  # near, not equal: kept
    )
    tp = track_points(make_state(layer), "T", FILE)
    want = [[0] * 3, [1] * 3, [5] * 3, [6] * 3, [6, 6, 6.5], [7] * 3]
    np.testing.assert_array_equal(tp.coords_zyx, want)


def test_polylines_and_lines_in_any_order():
    layer = _segments_layer(
        {"type": "polyline", "points": [[0, 0, 0], [1, 1, 1], [2, 2, 2]]},
        {"type": "line", "pointA": [2, 2, 2], "pointB": [3, 3, 3]},
        {"type": "polyline", "points": [[3, 3, 3], [4, 4, 4]]},
    )
    tp = track_points(make_state(layer), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, [[k] * 3 for k in range(5)])
    # a reversed drawing keeps its own order: picks follow the annotator, nothing is sorted
    layer["annotations"][2]["points"] = [[4, 4, 4], [3, 3, 3]]
    tp = track_points(make_state(layer), "T", FILE)
    np.testing.assert_array_equal(
        tp.coords_zyx, [[0] * 3, [1] * 3, [2] * 3, [3] * 3, [4] * 3, [3] * 3]
    )


def test_a_single_line_is_entry_and_tip_with_a_warning():
    layer = _segments_layer({"type": "line", "pointA": [0, 0, 0], "pointB": [9, 9, 9]})
    tp = track_points(make_state(layer), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, [[0] * 3, [9] * 3])
    assert "only 2 points" in tp.warnings[0]


def test_points_mixed_with_segments_refused_naming_both():
    layer = ann_layer("T", [[0, 0, 0], [1, 1, 1]], DIMS_ZYX)
    layer["annotations"].append({"type": "line", "pointA": [1, 1, 1], "pointB": [2, 2, 2]})
    with pytest.raises(InputError, match="mixes point annotations") as info:
        track_points(make_state(layer), "T", FILE)
    msg = str(info.value)
    assert "first: annotations[0]" in msg and "first: annotations[2]" in msg
    assert "expected only points (one pick each) or only lines and polylines" in msg
    assert info.value.file == str(FILE) and info.value.layer == "T"


@pytest.mark.parametrize(
    ("annotation", "key", "expected"),
    [
        ({"type": "polyline", "points": [[0, 0, 0]]}, "annotations[0]", "at least 2 vertices"),
        ({"type": "polyline", "points": "x"}, "annotations[0]", "at least 2 vertices"),
        (
            {"type": "polyline", "points": [[0, 0, 0], [1, 1]]},
            "annotations[0].points[1]",
            "3 finite",
        ),
        ({"type": "line", "pointA": [0, 0, 0]}, "annotations[0].pointB", "3 finite numbers"),
    ],
)
def test_malformed_segments_name_the_key(annotation: dict, key: str, expected: str):
    layer = _segments_layer(annotation, {"type": "line", "pointA": [5, 5, 5], "pointB": [6, 6, 6]})
    with pytest.raises(InputError, match=expected) as info:
        track_points(make_state(layer), "T", FILE)
    assert info.value.key == key and info.value.file == str(FILE)


def test_point_key_without_type_accepted():
    layer = ann_layer("T", [], DIMS_ZYX)
    layer["annotations"] = [{"point": [1, 2, 3]}, {"point": [4, 5, 6]}]
    tp = track_points(make_state(layer), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, [[1, 2, 3], [4, 5, 6]])


def test_layer_matrix_translation_is_applied():
    # stored p, displayed at p + t (translation in output units): what the annotator saw
    layer = ann_layer("T", [[1, 2, 3], [4, 5, 6]], DIMS_ZYX)
    layer["source"]["transform"]["matrix"] = [[1, 0, 0, 10], [0, 1, 0, -2], [0, 0, 1, 0.5]]
    tp = track_points(make_state(layer), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, [[11, 0, 3.5], [14, 3, 6.5]])


def test_layer_matrix_linear_part_uses_input_and_output_scales():
    # inputDimensions in um, outputDimensions at the voxel size: a source coordinate of 3.6 um
    # along x is 2 output units; a 90-degree swap of x and y is applied as written.
    dims_in = {"z": [1, "um"], "y": [1, "um"], "x": [1, "um"]}
    layer = ann_layer("T", [[2.0, 3.6, 7.2], [4.0, 0.0, 1.8]], DIMS_ZYX)
    layer["source"]["transform"]["inputDimensions"] = dims_in
    layer["source"]["transform"]["matrix"] = [[1, 0, 0, 0], [0, 0, 1, 0], [0, 1, 0, 0]]
    tp = track_points(make_state(layer), "T", FILE)
    # z: 2 um / 2 um = 1; y <- x: 7.2 um / 1.8 = 4; x <- y: 3.6 um / 1.8 = 2
    np.testing.assert_allclose(tp.coords_zyx, [[1, 4, 2], [2, 1, 0]], rtol=0, atol=1e-12)


def test_layer_matrix_malformed_or_mixing_time_into_space_refused():
    layer = ann_layer("T", [[0, 0, 0, 0]] * 2, DIMS_XYZT)
    layer["source"]["transform"]["matrix"] = [[1, 0, 0], [0, 1, 0]]
    with pytest.raises(InputError, match=r"expected 4 rows.*5 finite numbers") as info:
        track_points(make_state(layer), "T", FILE)
    assert info.value.key == "source.transform.matrix"
    mix = [[1, 0, 0, 5, 0], [0, 1, 0, 0, 0], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0]]
    layer["source"]["transform"]["matrix"] = mix
    with pytest.raises(InputError, match="dimension 't' \\(s\\) onto output dimension 'x'"):
        track_points(make_state(layer), "T", FILE)


def test_non_spatial_dimensions_may_be_anything_spatial_ones_may_not():
    dims = {"x": [1.8, "um"], "y": [1.8, "um"], "z": [2, "um"], "t": {"coordinates": [0]}}
    layer = ann_layer("T", [[1, 2, 3, 0], [4, 5, 6, 0]])
    tp = track_points(make_state(layer, dims=dims), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, [[3, 2, 1], [6, 5, 4]])
    dims["x"] = [0, "um"]
    with pytest.raises(
        InputError, match="entry 'x' is \\[0, 'um'\\]; expected \\[scale > 0, unit\\]"
    ):
        track_points(make_state(layer, dims=dims), "T", FILE)


# ---------------------------------------------------------------------------- to_level0_index


def _points(coords, scale) -> TrackPoints:
    return TrackPoints(FILE, "T", np.array(coords, float), np.array(scale, float), "x", ())


def test_level0_center_identity_and_itk_order():
    tp = track_points(make_state(ann_layer("T", [[10, 20, 30, 0]] * 2, DIMS_XYZT)), "T", FILE)
    idx = to_level0_index(tp, [2.0, 1.8, 1.8], "center")
    # coords_zyx = (30, 20, 10) -> ITK (x, y, z) = (10, 20, 30)
    np.testing.assert_array_equal(idx, [[10, 20, 30], [10, 20, 30]])
    assert idx.dtype == np.float64 and idx.shape == (2, 3)


def test_level0_corner_is_half_voxel_less():
    tp = _points([[3, 2, 1], [6.5, 5.25, 4]], [1.8, 1.8, 1.8])
    center = to_level0_index(tp, [1.8, 1.8, 1.8], "center")
    corner = to_level0_index(tp, [1.8, 1.8, 1.8], "corner")
    np.testing.assert_array_equal(center, [[1, 2, 3], [4, 5.25, 6.5]])
    np.testing.assert_array_equal(corner, [[0.5, 1.5, 2.5], [3.5, 4.75, 6.0]])
    np.testing.assert_array_equal(center - corner, np.full((2, 3), 0.5))


def test_level0_ratio_within_tolerance_is_applied():
    tp = _points([[1000.0, 2000.0, 3000.0]], [1.8, 1.8, 1.8])
    idx = to_level0_index(tp, [1.8000001, 1.8, 1.8], "center")
    assert idx[0, 0] == 3000.0 and idx[0, 1] == 2000.0
    assert idx[0, 2] == pytest.approx(1000.0 * 1.8 / 1.8000001, rel=1e-15)
    assert idx[0, 2] != 1000.0


def test_level0_ratio_scales_exactly_with_loose_tolerance():
    tp = _points([[10, 20, 30]], [4.0, 4.0, 4.0])
    idx = to_level0_index(tp, [2.0, 2.0, 2.0], "center", rel_tol=1.5)
    np.testing.assert_array_equal(idx, [[60, 40, 20]])


def test_level0_mismatch_names_axis_and_both_values():
    tp = _points([[1, 2, 3]], [2.0, 1.8, 1.8])
    with pytest.raises(InputError) as info:
        to_level0_index(tp, [1.8, 1.8, 1.8], "center")
    msg = str(info.value)
    assert "z: Neuroglancer scale 2 um" in msg and "level-0 spacing 1.8 um" in msg
    assert "y:" not in msg and "x:" not in msg
    assert info.value.file == str(FILE) and info.value.layer == "T"


def test_level0_bad_arguments():
    tp = _points([[1, 2, 3]], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="voxel_origin"):
        to_level0_index(tp, [1.0, 1.0, 1.0], "edge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spacing0_um_zyx"):
        to_level0_index(tp, [1.0, 1.0], "center")


def test_level0_image_translation_moves_picks_by_exactly_that_many_voxels():
    # registration layer translated by (x 2, y 0, z -3) output units of one voxel each
    tp = _points([[30.25, 20.5, 10.75], [31, 21, 11]], [2.0, 1.8, 1.8])
    placed = Placement((-3.0, 0.0, 2.0), (2.0, 1.8, 1.8))
    plain = to_level0_index(tp, [2.0, 1.8, 1.8], "center")
    moved = to_level0_index(tp, [2.0, 1.8, 1.8], "center", placement=placed)
    np.testing.assert_array_equal(moved - plain, [[-2, 0, 3], [-2, 0, 3]])
    # the same 3.6 um shift written in um output units moves x by 2 voxels too
    in_um = Placement((0.0, 0.0, 3.6), (1.0, 1.0, 1.0))
    moved_um = to_level0_index(tp, [2.0, 1.8, 1.8], "center", placement=in_um)
    np.testing.assert_allclose(moved_um - plain, [[-2, 0, 0]] * 2, rtol=0, atol=1e-12)


def test_level0_rescaled_image_layer_refused():
    tp = _points([[1, 2, 3]], [1.8, 1.8, 1.8])
    same = Placement((0.0, 0.0, 0.0), (1.8,) * 3, (1.8, 1.8, 1.8))
    np.testing.assert_array_equal(
        to_level0_index(tp, [1.8] * 3, "center", placement=same), [[3, 2, 1]]
    )
    rescaled = Placement((0.0, 0.0, 0.0), (1.8,) * 3, (3.6, 1.8, 1.8))
    with pytest.raises(InputError, match="overrides the source voxel size") as info:
        to_level0_index(tp, [1.8] * 3, "center", placement=rescaled)
    assert info.value.file == str(FILE) and info.value.layer == "T"


# ---------------------------------------------------------------------------- find_probe_file


def test_find_probe_file_one_match(tmp_path: Path):
    (tmp_path / "annotations").mkdir()
    target = tmp_path / "annotations" / "probeA.json"
    target.write_text("{}")
    (tmp_path / "probeA.json").write_text("{}")  # zero levels down: ignored
    assert find_probe_file(tmp_path, "probeA") == target


def test_find_probe_file_zero_names_pattern(tmp_path: Path):
    (tmp_path / "a" / "deeper").mkdir(parents=True)
    (tmp_path / "a" / "deeper" / "probeA.json").write_text("{}")  # two levels down: not found
    with pytest.raises(InputError, match="no annotation file matches") as info:
        find_probe_file(tmp_path, "probeA")
    assert info.value.file == str(tmp_path / "*" / "probeA.json")


def test_find_probe_file_two_matches_lists_both(tmp_path: Path):
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "probeA.json").write_text("{}")
    with pytest.raises(InputError, match="2 annotation files match") as info:
        find_probe_file(tmp_path, "probeA")
    msg = str(info.value)
    assert str(tmp_path / "a" / "probeA.json") in msg and str(tmp_path / "b" / "probeA.json") in msg
