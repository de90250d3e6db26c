"""Neuroglancer states: image layers -> asset, annotation layers -> level-0 voxel indices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.inputs.neuroglancer import (
    ImageSources,
    TrackPoints,
    clean_source_url,
    find_probe_file,
    image_sources,
    read_state,
    to_level0_index,
    track_points,
)

FILE = Path("/states/probe.json")
SRC = (
    "zarr://s3://bucket/SmartSPIM_123_stitched/image_tile_fusing/OMEZarr/Ex_639_Em_667.zarr|zarr2:"
)
DIMS_XYZT = {"x": [1.8e-6, "m"], "y": [1.8e-6, "m"], "z": [2e-6, "m"], "t": [0.001, "s"]}
DIMS_ZYX = {"z": [2e-6, "m"], "y": [1.8e-6, "m"], "x": [1.8e-6, "m"]}


def _ann_layer(name: str, points: list, dims: dict | None = None, **source_extra) -> dict:
    source: dict = {"url": "local://annotations", **source_extra}
    if dims is not None:
        source.setdefault("transform", {})["outputDimensions"] = dims
    return {
        "type": "annotation",
        "name": name,
        "source": source,
        "annotations": [{"point": p, "type": "point", "id": str(i)} for i, p in enumerate(points)],
    }


def _state(*layers: dict, dims: dict | None = None) -> dict:
    state: dict = {"layers": list(layers)}
    if dims is not None:
        state["dimensions"] = dims
    return state


def _image(name: str, source) -> dict:
    return {"type": "image", "name": name, "source": source}


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
    a = track_points(_state(_ann_layer("A", [[100, 200, 300, 7]] * 2, DIMS_XYZT)), "A", FILE)
    b = track_points(_state(_ann_layer("B", [[300, 200, 100]] * 2, DIMS_ZYX)), "B", FILE)
    for tp in (a, b):
        assert isinstance(tp, TrackPoints)
        assert tp.coords_zyx.dtype == np.float64
        np.testing.assert_array_equal(tp.coords_zyx, [[300, 200, 100], [300, 200, 100]])
        np.testing.assert_array_equal(tp.scale_um_zyx, [2.0, 1.8, 1.8])
        assert tp.dimension_source == "layer source.transform.outputDimensions"
    assert a.layer == "A" and a.file == FILE


def test_global_dimensions_fallback_drops_t():
    layer = _ann_layer("T", [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [0, 0, 0, 0]])
    dims = {"t": [1, "s"], "x": [1.8, "um"], "z": [2, "um"], "y": [1.8, "um"]}
    tp = track_points(_state(layer, dims=dims), "T", FILE)
    assert tp.dimension_source == "global dimensions"
    # names in order t, x, z, y -> (z, y, x) = columns 2, 3, 1
    np.testing.assert_array_equal(tp.coords_zyx, [[3, 4, 2], [7, 8, 6], [11, 12, 10], [0, 0, 0]])
    assert tp.warnings == ()


def test_layer_transform_wins_over_global_dimensions():
    layer = _ann_layer("T", [[1, 2, 3], [4, 5, 6]], DIMS_ZYX)
    tp = track_points(_state(layer, dims={"x": [1, "m"], "y": [1, "m"], "z": [1, "m"]}), "T", FILE)
    assert tp.dimension_source == "layer source.transform.outputDimensions"
    np.testing.assert_array_equal(tp.coords_zyx, [[1, 2, 3], [4, 5, 6]])


def test_source_list_uses_first_entry_with_transform():
    layer = _ann_layer("T", [[1, 2, 3], [4, 5, 6]])
    layer["source"] = [
        "local://annotations",
        {"url": "x", "transform": {"outputDimensions": DIMS_ZYX}},
    ]
    tp = track_points(_state(layer, dims={"x": [1, "m"], "y": [1, "m"], "z": [1, "m"]}), "T", FILE)
    assert tp.dimension_source == "layer source.transform.outputDimensions"
    np.testing.assert_array_equal(tp.scale_um_zyx, [2.0, 1.8, 1.8])


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
    tp = track_points(_state(_ann_layer("T", [[0, 0, 0]] * 4, dims)), "T", FILE)
    np.testing.assert_array_equal(tp.scale_um_zyx, [um, um, um])


def test_unsupported_unit_is_error():
    dims = {"x": [1.8, "um"], "y": [1.8, "um"], "z": [1.8, "in"]}
    with pytest.raises(InputError, match="unit of 'z' is 'in'") as info:
        track_points(_state(_ann_layer("T", [[0, 0, 0]] * 4, dims)), "T", FILE)
    assert info.value.layer == "T" and info.value.file == str(FILE)


def test_order_kept_no_sort_no_dedup():
    pts = [[5, 5, 5], [1, 1, 1], [1, 1, 1], [9, 0, 3]]
    tp = track_points(_state(_ann_layer("T", pts, DIMS_ZYX)), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, pts)


def test_missing_layer_lists_available_annotation_layers():
    state = _state(
        _ann_layer("probe_A", [[0, 0, 0]] * 2, DIMS_ZYX),
        _ann_layer("probe_B", [[0, 0, 0]] * 2, DIMS_ZYX),
        _image("probe_C", SRC),
    )
    with pytest.raises(InputError, match=r"\['probe_A', 'probe_B'\]") as info:
        track_points(state, "probe_X", FILE)
    assert info.value.layer == "probe_X"
    assert str(FILE) in str(info.value)
    assert "probe_C" not in str(info.value)


def test_one_point_is_error():
    with pytest.raises(InputError, match=r"found 1 point.*at least 2.*entry and tip") as info:
        track_points(_state(_ann_layer("T", [[1, 2, 3]], DIMS_ZYX)), "T", FILE)
    assert info.value.layer == "T" and info.value.file == str(FILE)


def test_three_points_warn_four_do_not():
    three = track_points(_state(_ann_layer("T", [[1, 2, 3]] * 3, DIMS_ZYX)), "T", FILE)
    assert len(three.warnings) == 1 and "only 3 points" in three.warnings[0]
    four = track_points(_state(_ann_layer("T", [[1, 2, 3]] * 4, DIMS_ZYX)), "T", FILE)
    assert four.warnings == ()


def test_unknown_dimension_names():
    dims = {"a": [1, "m"], "b": [1, "m"], "c": [1, "m"]}
    with pytest.raises(InputError, match=r"unknown dimension names \['a', 'b', 'c'\].*x, y and z"):
        track_points(_state(_ann_layer("T", [[0, 0, 0]] * 2, dims)), "T", FILE)


def test_no_dimensions_anywhere_is_error():
    with pytest.raises(InputError, match="no dimension names") as info:
        track_points(_state(_ann_layer("T", [[0, 0, 0]] * 2)), "T", FILE)
    assert info.value.layer == "T"


def test_point_with_wrong_number_of_coordinates():
    layer = _ann_layer("T", [[1, 2, 3, 0], [1, 2, 3], [4, 5, 6, 0]], DIMS_XYZT)
    with pytest.raises(InputError, match="expected 4 finite numbers") as info:
        track_points(_state(layer), "T", FILE)
    assert info.value.key == "annotations[1]" and info.value.layer == "T"


@pytest.mark.parametrize(
    "annotation",
    [
        {"type": "line", "pointA": [0, 0, 0], "pointB": [1, 1, 1]},
        {"type": "axis_aligned_bounding_box", "pointA": [0, 0, 0], "pointB": [1, 1, 1]},
        {"type": "ellipsoid", "center": [0, 0, 0], "radii": [1, 1, 1]},
        {"pointA": [0, 0, 0], "pointB": [1, 1, 1]},
    ],
)
def test_non_point_annotation_refused(annotation: dict):
    layer = _ann_layer("T", [[0, 0, 0], [1, 1, 1]], DIMS_ZYX)
    layer["annotations"].append(annotation)
    with pytest.raises(InputError, match="not supported") as info:
        track_points(_state(layer), "T", FILE)
    assert info.value.key == "annotations[2]"


def test_point_key_without_type_accepted():
    layer = _ann_layer("T", [], DIMS_ZYX)
    layer["annotations"] = [{"point": [1, 2, 3]}, {"point": [4, 5, 6]}]
    tp = track_points(_state(layer), "T", FILE)
    np.testing.assert_array_equal(tp.coords_zyx, [[1, 2, 3], [4, 5, 6]])


def test_layer_matrix_refused_identity_accepted():
    shift = [[1, 0, 0, 10], [0, 1, 0, 0], [0, 0, 1, 0]]
    layer = _ann_layer("T", [[0, 0, 0]] * 2, DIMS_ZYX)
    layer["source"]["transform"]["matrix"] = shift
    with pytest.raises(InputError, match="matrix") as info:
        track_points(_state(layer), "T", FILE)
    assert info.value.layer == "T" and info.value.file == str(FILE)
    layer["source"]["transform"]["matrix"] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]
    assert track_points(_state(layer), "T", FILE).coords_zyx.shape == (2, 3)


# ---------------------------------------------------------------------------- to_level0_index


def _points(coords, scale) -> TrackPoints:
    return TrackPoints(FILE, "T", np.array(coords, float), np.array(scale, float), "x", ())


def test_level0_center_identity_and_itk_order():
    tp = track_points(_state(_ann_layer("T", [[10, 20, 30, 0]] * 2, DIMS_XYZT)), "T", FILE)
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


# ------------------------------------------------------------------------------ image_sources


@pytest.mark.parametrize(
    ("url", "clean"),
    [
        ("zarr://s3://bucket/x.zarr|zarr2:", "s3://bucket/x.zarr"),
        ("zarr://http://host/a/x.zarr", "http://host/a/x.zarr"),
        ("s3://bucket/x.zarr/|zarr2:", "s3://bucket/x.zarr"),
        ("s3://bucket/x.zarr/", "s3://bucket/x.zarr"),
        ("zarr:///data/x.zarr", "zarr:///data/x.zarr"),  # no scheme follows: kept
        ("s3://bucket/x.zarr|zarr2:extra", "s3://bucket/x.zarr|zarr2:extra"),
    ],
)
def test_clean_source_url(url: str, clean: str):
    assert clean_source_url(url) == clean


def test_image_source_zarr_s3(tmp_path: Path):
    res = image_sources(_state(_image("Ex_639", SRC)), tmp_path, FILE)
    assert res == ImageSources(
        "SmartSPIM_123_stitched", tmp_path / "SmartSPIM_123_stitched", ("Ex_639",), ()
    )


def test_image_source_object_and_list(tmp_path: Path):
    other = SRC.replace("Ex_639_Em_667", "Ex_488_Em_525")
    state = _state(
        _image("a", {"url": SRC}),
        _ann_layer("track", [[0, 0, 0]]),
        _image("b", [{"url": other}, other]),
    )
    res = image_sources(state, tmp_path, FILE)
    assert res.asset_name == "SmartSPIM_123_stitched"
    assert res.asset_path == tmp_path / "SmartSPIM_123_stitched"
    assert res.layer_names == ("a", "b")


def test_two_assets_is_error_listing_layers(tmp_path: Path):
    other = SRC.replace("SmartSPIM_123_stitched", "SmartSPIM_456_stitched")
    with pytest.raises(InputError, match="different assets") as info:
        image_sources(_state(_image("a", SRC), _image("b", other)), tmp_path, FILE)
    msg = str(info.value)
    assert "'a' -> 'SmartSPIM_123_stitched'" in msg and "'b' -> 'SmartSPIM_456_stitched'" in msg
    assert info.value.file == str(FILE)


def test_layer_without_image_tile_fusing_is_error(tmp_path: Path):
    bad = "zarr://s3://bucket/SmartSPIM_123/fused/x.zarr"
    with pytest.raises(InputError, match="image_tile_fusing") as info:
        image_sources(_state(_image("a", SRC), _image("b", bad)), tmp_path, FILE)
    assert info.value.layer == "b" and bad in str(info.value)
    assert info.value.file == str(FILE)


def test_no_image_layer_is_error(tmp_path: Path):
    with pytest.raises(InputError, match="no image layer") as info:
        image_sources(_state(_ann_layer("t", [])), tmp_path, FILE)
    assert info.value.file == str(FILE)


@pytest.mark.parametrize("as_file_url", [False, True])
def test_existing_absolute_local_path(tmp_path: Path, as_file_url: bool):
    asset = tmp_path / "mnt" / "SmartSPIM_9_stitched"
    zarr = asset / "image_tile_fusing" / "OMEZarr" / "Ex_639_Em_667.zarr"
    zarr.mkdir(parents=True)
    url = f"zarr://file://{zarr}/|zarr2:" if as_file_url else f"{zarr}/|zarr2:"
    res = image_sources(_state(_image("a", url)), tmp_path / "data", FILE)
    assert res.asset_name == "SmartSPIM_9_stitched"
    assert res.asset_path == asset


def test_missing_absolute_local_path_falls_back_to_data_root(tmp_path: Path):
    src = "/nowhere/SmartSPIM_9_stitched/image_tile_fusing/OMEZarr/x.zarr"
    res = image_sources(_state(_image("a", src)), tmp_path, FILE)
    assert res.asset_path == tmp_path / "SmartSPIM_9_stitched"


def test_non_identity_image_transform_warns(tmp_path: Path):
    shifted = {"url": SRC, "transform": {"matrix": [[1, 0, 0, 5], [0, 1, 0, 0], [0, 0, 1, 0]]}}
    ident = {"url": SRC, "transform": {"matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]}}
    res = image_sources(_state(_image("shift", shifted), _image("id", ident)), tmp_path, FILE)
    assert len(res.warnings) == 1
    assert "'shift' has a non-identity source.transform" in res.warnings[0]


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
