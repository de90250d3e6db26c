"""Neuroglancer image layers: source URL forms -> asset and channel; placement (transforms)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.inputs.neuroglancer import ImageSources, drawn_over, image_sources
from alignprep.inputs.ng_sources import asset_channel, parse_source
from alignprep.inputs.ng_transform import IDENTITY

from .ng_states import DIMS_ZYX, FILE, SRC, ann_layer, image, make_state

# ------------------------------------------------------------------------------ source URLs

ASSET = "SmartSPIM_123_stitched"
TAIL = f"{ASSET}/image_tile_fusing/OMEZarr"


@pytest.mark.parametrize(
    ("url", "channel"),
    [
        (f"s3://aind-open-data/{TAIL}/Ex_639_Em_667.zarr", "Ex_639_Em_667"),  # plain string
        (f"zarr://s3://aind-open-data/{TAIL}/Ex_639_Em_667.zarr", "Ex_639_Em_667"),
        (f"zarr2://s3://aind-open-data/{TAIL}/Ex_639_Em_667.zarr/", "Ex_639_Em_667"),
        (f"zarr3://s3://aind-open-data/{TAIL}/Ex_639_Em_667.ome.zarr", "Ex_639_Em_667"),
        (f"zarr:s3://aind-open-data/{TAIL}/Ex_639_Em_667.zarr", "Ex_639_Em_667"),
        (f"s3://aind-open-data/{TAIL}/Ex_639_Em_667.zarr/|zarr2:", "Ex_639_Em_667"),
        (
            f"s3://aind-open-data/{TAIL}/Ex_639_Em_667.zarr/|zarr:#dimension_separator=/",
            "Ex_639_Em_667",
        ),
        (f"s3://aind-open-data/{TAIL}|zarr2:Ex_639_Em_667.zarr/", "Ex_639_Em_667"),  # extra path
        (f"zarr://s3://bucket/a/b/c/{TAIL}/Ex_488_Em_525.zarr", "Ex_488_Em_525"),  # nested
        (f"zarr://gs://bucket/{TAIL}/Ex_561_Em_593.ome.zarr//", "Ex_561_Em_593"),
        (
            f"zarr://https://aind-open-data.s3.amazonaws.com/{TAIL}/Ex_639_Em_667.zarr",
            "Ex_639_Em_667",
        ),
        (
            f"https://storage.googleapis.com/b/{TAIL}/Ex_639_Em_667.zarr/?x=1|zarr2:",
            "Ex_639_Em_667",
        ),
        (f"zarr://file:///data/{TAIL}/Ex_639_Em_667.zarr", "Ex_639_Em_667"),
        (f"/data/{TAIL}/Ex_639_Em_667.zarr/|zarr2:", "Ex_639_Em_667"),
        (f"zarr://s3://b/{ASSET}/image_tile_fusing/OMEZarr/Ex%20639.zarr", "Ex 639"),
    ],
)
def test_source_url_forms_resolve_asset_and_channel(url: str, channel: str):
    where, why = asset_channel(parse_source(url))
    assert why == "" and where is not None
    assert (where.asset, where.channel) == (ASSET, channel)
    assert where.folder.startswith(channel) and where.folder.endswith(".zarr")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        (f"precomputed://s3://b/{TAIL}/Ex_639_Em_667", "format is precomputed"),
        (f"n5://s3://b/{TAIL}/Ex_639_Em_667.n5", "format is n5"),
        (f"s3://b/{TAIL}/Ex_639_Em_667.zarr/|n5:", "format is n5"),
        (f"s3://b/{TAIL}/Ex_639_Em_667/|neuroglancer-precomputed:", "format is precomputed"),
        (f"s3://b/{TAIL}/x.zip|zip:Ex_639_Em_667.zarr|zarr2:", "goes through zip"),
        (f"zarr://s3://b/{TAIL}/Ex_639_Em_667.zarr/0", "'OMEZarr/Ex_639_Em_667.zarr/0'"),
        ("zarr://s3://b/SmartSPIM_123/fused/x.zarr", "no '<asset>/image_tile_fusing/'"),
        ("zarr://s3://b/image_tile_fusing/OMEZarr/x.zarr", "no '<asset>/image_tile_fusing/'"),
    ],
)
def test_sources_that_are_not_asset_channels(url: str, why: str):
    where, reason = asset_channel(parse_source(url))
    assert where is None and why in reason


def test_local_paths_are_reported_as_local():
    for url in (f"zarr://file:///mnt/{TAIL}/c.zarr", f"/mnt/{TAIL}/c.zarr/|zarr2:"):
        where, _ = asset_channel(parse_source(url))
        assert where is not None and where.local_asset == f"/mnt/{ASSET}"
    where, _ = asset_channel(parse_source(f"s3://mnt/{TAIL}/c.zarr"))
    assert where is not None and where.local_asset is None


# ------------------------------------------------------------------------------ image_sources


def test_image_source_zarr_s3(tmp_path: Path):
    res = image_sources(make_state(image("Ex_639", SRC)), tmp_path, FILE)
    assert (res.asset_name, res.asset_path) == (ASSET, tmp_path / ASSET)
    assert res.layer_names == ("Ex_639",) and res.warnings == () and res.file == FILE
    assert [(lay.channel, lay.placement) for lay in res.layers] == [("Ex_639_Em_667", IDENTITY)]


def test_image_source_object_and_list(tmp_path: Path):
    other = SRC.replace("Ex_639_Em_667", "Ex_488_Em_525")
    state = make_state(
        image("a", {"url": SRC}),
        ann_layer("track", [[0, 0, 0]]),
        image("b", [{"url": other}, other]),
    )
    res = image_sources(state, tmp_path, FILE)
    assert res.asset_name == ASSET
    assert res.asset_path == tmp_path / ASSET
    assert res.layer_names == ("a", "b")
    # one entry per asset source: layer b has two (an object and a plain string)
    assert [lay.channel for lay in res.layers] == ["Ex_639_Em_667"] + ["Ex_488_Em_525"] * 2


def test_two_assets_is_error_listing_layers(tmp_path: Path):
    other = SRC.replace("SmartSPIM_123_stitched", "SmartSPIM_456_stitched")
    with pytest.raises(InputError, match="different assets") as info:
        image_sources(make_state(image("a", SRC), image("b", other)), tmp_path, FILE)
    msg = str(info.value)
    assert "'a' -> 'SmartSPIM_123_stitched'" in msg and "'b' -> 'SmartSPIM_456_stitched'" in msg
    assert info.value.file == str(FILE)


def test_sources_outside_the_layout_are_ignored_with_a_log_line(tmp_path: Path, caplog):
    bad = "zarr://s3://bucket/SmartSPIM_123/fused/x.zarr"
    sibling = f"precomputed://s3://b/{TAIL}/Ex_639_Em_667"
    empty = {"type": "image", "name": "d"}  # a layer without a source shows nothing
    state = make_state(image("a", SRC), image("b", bad), image("c", sibling), empty)
    with caplog.at_level("INFO", logger="alignprep.inputs.neuroglancer"):
        res = image_sources(state, tmp_path, FILE)
    assert res.layer_names == ("a",) and res.asset_name == ASSET
    text = caplog.text
    assert "ignored layer 'b'" in text and "ignored layer 'c'" in text and str(FILE) in text
    assert "ignored layer 'd': it has no source" in text


def test_nothing_usable_is_error_naming_the_expected_layout(tmp_path: Path):
    sibling = f"n5://s3://b/{TAIL}/Ex_639_Em_667.n5"
    with pytest.raises(InputError, match="no image layer shows a SmartSPIM asset") as info:
        image_sources(make_state(image("c", sibling)), tmp_path, FILE)
    assert "format is n5" in str(info.value)
    assert "<asset>/image_tile_fusing/OMEZarr/<channel>.zarr" in str(info.value)
    assert info.value.file == str(FILE)


def test_no_image_layer_is_error(tmp_path: Path):
    with pytest.raises(InputError, match="no image layer") as info:
        image_sources(make_state(ann_layer("t", [])), tmp_path, FILE)
    assert info.value.file == str(FILE)


def test_asset_without_prefix_resolves_and_warns_about_the_allen_gui(tmp_path: Path):
    src = "zarr://s3://b/123_stitched/image_tile_fusing/OMEZarr/Ex_639_Em_667.zarr"
    res = image_sources(make_state(image("a", src)), tmp_path, FILE)
    assert res.asset_name == "123_stitched" and res.asset_path == tmp_path / "123_stitched"
    assert len(res.warnings) == 1 and "'SmartSPIM_' prefix" in res.warnings[0]


@pytest.mark.parametrize("as_file_url", [False, True])
def test_existing_absolute_local_path(tmp_path: Path, as_file_url: bool):
    asset = tmp_path / "mnt" / "SmartSPIM_9_stitched"
    zarr = asset / "image_tile_fusing" / "OMEZarr" / "Ex_639_Em_667.zarr"
    zarr.mkdir(parents=True)
    url = f"zarr://file://{zarr}/|zarr2:" if as_file_url else f"{zarr}/|zarr2:"
    res = image_sources(make_state(image("a", url)), tmp_path / "data", FILE)
    assert res.asset_name == "SmartSPIM_9_stitched"
    assert res.asset_path == asset


def test_missing_absolute_local_path_falls_back_to_data_root(tmp_path: Path):
    src = "/nowhere/SmartSPIM_9_stitched/image_tile_fusing/OMEZarr/x.zarr"
    res = image_sources(make_state(image("a", src)), tmp_path, FILE)
    assert res.asset_path == tmp_path / "SmartSPIM_9_stitched"


# ---------------------------------------------------------------------- image-layer transforms

DIMS_TCZYX = {"t": [0.001, "s"], "c'": [1, ""], **DIMS_ZYX}


def _shifted(url: str, x: float = 0.0, y: float = 0.0, z: float = 0.0, **extra) -> dict:
    """An image source translated by (x, y, z) output units, 5-D like SmartSPIM (t, c', z, y, x)."""
    matrix = np.eye(5, 6)
    matrix[2:, 5] = [z, y, x]
    return {
        "url": url,
        "transform": {"outputDimensions": DIMS_TCZYX, "matrix": matrix.tolist(), **extra},
    }


def test_image_placement_translation_read_by_name(tmp_path: Path):
    res = image_sources(make_state(image("a", _shifted(SRC, x=2, z=-1))), tmp_path, FILE)
    placement = res.layers[0].placement
    assert placement.translation_zyx == (-1.0, 0.0, 2.0) and placement.problem == ""
    np.testing.assert_allclose(placement.offset_um_zyx, [-2.0, 0.0, 3.6], rtol=0, atol=1e-12)
    assert res.warnings == ()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda m: m.__setitem__((4, 4), 2.0), "row 'x'"),  # scale
        (lambda m: (m.__setitem__((3, 3), 0.0), m.__setitem__((3, 4), 1.0)), "row 'y'"),  # swap
        (lambda m: m.__setitem__((2, 3), 0.5), "row 'z'"),  # shear
    ],
)
def test_image_placement_rotation_scale_shear_are_problems(tmp_path: Path, change, expected):
    entry = _shifted(SRC, x=1)
    matrix = np.array(entry["transform"]["matrix"])
    change(matrix)
    entry["transform"]["matrix"] = matrix.tolist()
    placement = image_sources(make_state(image("a", entry)), tmp_path, FILE).layers[0].placement
    assert expected in placement.problem and "translation only" in placement.problem


def test_image_placement_columns_found_by_input_dimension_name(tmp_path: Path):
    # source dims written in another order (x, y, z, c', t): the matrix still maps by name
    dims_in = {"x": [1.8, "um"], "y": [1.8, "um"], "z": [2.0, "um"], "c'": [1, ""], "t": [1, "s"]}
    matrix = np.zeros((5, 6))
    for row, col in enumerate([4, 3, 2, 1, 0]):  # out t c' z y x <- in t c' z y x
        matrix[row, col] = 1.0
    matrix[:, 5] = [0, 0, 1.5, -1, 2]
    entry = {
        "url": SRC,
        "transform": {
            "outputDimensions": DIMS_TCZYX,
            "inputDimensions": dims_in,
            "matrix": matrix.tolist(),
        },
    }
    placement = image_sources(make_state(image("a", entry)), tmp_path, FILE).layers[0].placement
    assert placement.problem == ""
    assert placement.translation_zyx == (1.5, -1.0, 2.0)
    assert placement.in_um_zyx == (2.0, 1.8, 1.8)
    # the same matrix read positionally (no inputDimensions) would swap axes: refused
    del entry["transform"]["inputDimensions"]
    placement = image_sources(make_state(image("a", entry)), tmp_path, FILE).layers[0].placement
    assert "axis swap" in placement.problem


def test_image_placement_without_spatial_outputs_is_a_problem(tmp_path: Path):
    entry = {
        "url": SRC,
        "transform": {"outputDimensions": {"a": [1, "m"], "b": [1, "m"], "c": [1, "m"]}},
    }
    placement = image_sources(make_state(image("a", entry)), tmp_path, FILE).layers[0].placement
    assert "not x, y and z" in placement.problem


# --------------------------------------------------------------------------------- drawn_over

ANN = Path("/data/annotations/probeA.json")


def _main(tmp_path: Path, *layers: dict) -> ImageSources:
    return image_sources(make_state(*layers), tmp_path, FILE)


def test_drawn_over_identity_without_any_transform(tmp_path: Path):
    main = _main(tmp_path, image("a", SRC))
    ann_state = make_state(ann_layer("T", [[0, 0, 0]] * 2, DIMS_ZYX))
    assert drawn_over(ann_state, ANN, "T", main, "Ex_639_Em_667") == IDENTITY


def test_drawn_over_uses_the_annotation_files_own_image_layers(tmp_path: Path):
    main = _main(tmp_path, image("a", SRC))  # untranslated in the main state
    ann_state = make_state(
        image("reg", _shifted(SRC, x=2)), ann_layer("T", [[0, 0, 0]] * 2, DIMS_ZYX)
    )
    placement = drawn_over(ann_state, ANN, "T", main, "Ex_639_Em_667")
    assert placement.translation_zyx == (0.0, 0.0, 2.0)


def test_drawn_over_agreeing_channels_give_their_common_translation(tmp_path: Path):
    other = SRC.replace("Ex_639_Em_667", "Ex_488_Em_525")
    ann_state = make_state(image("reg", _shifted(SRC, y=1)), image("o", _shifted(other, y=1)))
    main = _main(tmp_path, image("a", SRC))
    assert drawn_over(ann_state, ANN, "T", main, "Ex_639_Em_667").translation_zyx == (0, 1, 0)


def test_drawn_over_disagreeing_layers_refused_naming_them(tmp_path: Path):
    other = SRC.replace("Ex_639_Em_667", "Ex_488_Em_525")
    ann_state = make_state(image("reg", _shifted(SRC, x=2)), image("o", other))
    with pytest.raises(InputError, match="placed differently") as info:
        drawn_over(ann_state, ANN, "T", _main(tmp_path, image("a", SRC)), "Ex_639_Em_667")
    msg = str(info.value)
    assert "'reg' (Ex_639_Em_667): translated by" in msg and "'o' (Ex_488_Em_525): identity" in msg
    assert "expected every image layer of the asset to have the same source transform" in msg
    assert info.value.file == str(ANN) and info.value.layer == "T"


def test_drawn_over_rotated_registration_layer_refused(tmp_path: Path):
    entry = _shifted(SRC)
    entry["transform"]["matrix"][3][3:5] = [0.0, 1.0]
    entry["transform"]["matrix"][4][3:5] = [1.0, 0.0]
    with pytest.raises(InputError, match="a rotation, scale, shear or axis swap") as info:
        drawn_over(make_state(image("reg", entry)), ANN, "T", _main(tmp_path, image("a", SRC)), "c")
    assert "expected at most a translation" in str(info.value) and info.value.file == str(ANN)


def test_drawn_over_main_state_transform_without_image_layers_here_refused(tmp_path: Path):
    main = _main(tmp_path, image("a", _shifted(SRC, x=2)))
    ann_state = make_state(ann_layer("T", [[0, 0, 0]] * 2, DIMS_ZYX))
    with pytest.raises(InputError, match="has no image layer of the asset") as info:
        drawn_over(ann_state, ANN, "T", main, "Ex_639_Em_667")
    assert "Expected the annotation file to hold the image layers" in str(info.value)
    assert info.value.file == str(ANN)


def test_drawn_over_another_asset_refused(tmp_path: Path):
    other = SRC.replace("SmartSPIM_123_stitched", "SmartSPIM_456_stitched")
    with pytest.raises(InputError, match="show asset\\(s\\) \\['SmartSPIM_456_stitched'\\]"):
        drawn_over(make_state(image("x", other)), ANN, "T", _main(tmp_path, image("a", SRC)), "c")
