"""SmartSPIM asset discovery: orientation, processing.json and registration files (inputs.md §5-§7).

Truth: the spec's example and the layout written by ``alignprep.synthetic.build_dataset``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from alignprep.errors import InputError
from alignprep.inputs.smartspim import discover, find_channels, orientation_code, read_processing
from alignprep.space.frames import direction_from_code
from alignprep.synthetic import SyntheticSpec

from ..datasets import cached_dataset

REG = "Ex_639_Em_667"
OTHER = "Ex_488_Em_525"
NOTES = "Template based registration: LS -> template -> Allen CCFv3 Atlas"


def _write(path: Path, obj: object) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def _metadata(tmp_path: Path, axes: list[dict]) -> Path:
    return _write(tmp_path / "metadata.nd.json", {"acquisition": {"axes": axes}})


def _processing(tmp_path: Path, version="3.1.0", import_version="0.0.25",
                input_location=f"/data/a/image_tile_fusing/OMEZarr/{REG}.zarr",
                extra: list | None = None, drop_import: bool = False) -> Path:  # fmt: skip
    processes = [] if drop_import else [{"name": "Image importing", "code_version": import_version}]
    processes += [
        {
            "name": "Image atlas alignment",
            "notes": "other notes",
            "input_location": "/x/wrong.zarr",
        },
        {"name": "Image atlas alignment", "notes": NOTES, "input_location": input_location},
        *(extra or []),
    ]
    obj = {"processing_pipeline": {"pipeline_version": version, "data_processes": processes}}
    return _write(tmp_path / "processing.json", obj)


# ----------------------------------------------------------------------------- orientation


def test_orientation_spec_example(tmp_path: Path):
    path = _metadata(tmp_path, [
        {"name": "Z", "dimension": 0, "direction": "Superior_to_inferior"},
        {"name": "Y", "dimension": 1, "direction": "Anterior_to_posterior"},
        {"name": "X", "dimension": 2, "direction": "Left_to_right"},
    ])  # fmt: skip
    code = orientation_code(path)
    assert code == "RPI"
    sitk_rpi = sitk.DICOMOrientImageFilter.GetDirectionCosinesFromOrientation("RPI")
    np.testing.assert_array_equal(direction_from_code(code).reshape(9), sitk_rpi)
    np.testing.assert_array_equal(direction_from_code(code), np.diag([-1.0, 1.0, -1.0]))


def test_orientation_axes_in_other_order(tmp_path: Path):
    path = _metadata(tmp_path, [
        {"name": "X", "dimension": 2, "direction": "Anterior_to_posterior"},
        {"name": "z", "dimension": 0, "direction": "Right_to_left"},
        {"name": "y", "dimension": 1, "direction": "Inferior_to_superior"},
    ])  # fmt: skip
    assert orientation_code(path) == "PSL"


def test_orientation_invalid_combination(tmp_path: Path):
    path = _metadata(tmp_path, [
        {"name": "X", "dimension": 2, "direction": "Left_to_right"},
        {"name": "Y", "dimension": 1, "direction": "Right_to_left"},
        {"name": "Z", "dimension": 0, "direction": "Superior_to_inferior"},
    ])  # fmt: skip
    with pytest.raises(InputError) as err:
        orientation_code(path)
    assert err.value.file == str(path)
    assert str(path) in str(err.value)


_LR = {"name": "X", "direction": "Left_to_right"}
_AP = {"name": "Y", "direction": "Anterior_to_posterior"}


@pytest.mark.parametrize(
    "axes",
    [
        [_LR, {"name": "Y", "direction": "Left_to_right"}],  # two axes only
        [_LR, _AP, {"name": "X", "direction": "Superior_to_inferior"}],  # no z, x twice
        [_LR, {"name": "Y"}, {"name": "Z"}],  # no direction
    ],
)
def test_orientation_malformed_axes(tmp_path: Path, axes: list):
    with pytest.raises(InputError) as err:
        orientation_code(_metadata(tmp_path, axes))
    assert err.value.file == str(tmp_path / "metadata.nd.json")


def test_orientation_missing_file(tmp_path: Path):
    with pytest.raises(InputError, match="not found"):
        orientation_code(tmp_path / "metadata.nd.json")


# ----------------------------------------------------------------------------- processing


def test_read_processing_ok(tmp_path: Path):
    proc = read_processing(_processing(tmp_path, input_location="/d/x/OMEZarr/Ex_561_Em_593.zarr/"))
    assert proc.pipeline_version == "3.1.0"
    assert proc.import_version == "0.0.25"
    assert proc.registration_channel == "Ex_561_Em_593"
    assert proc.warnings == ()


@pytest.mark.parametrize("version", ["3.0.0", "4.2", "5.9.1", "v3.0.0"])
def test_read_processing_accepted_versions(tmp_path: Path, version: str):
    assert read_processing(_processing(tmp_path, version=version)).warnings == ()


@pytest.mark.parametrize("version", ["1.0.0", "2.9.9", "", "not-a-version"])
def test_read_processing_rejects_old_or_bad_versions(tmp_path: Path, version: str):
    path = _processing(tmp_path, version=version)
    with pytest.raises(InputError) as err:
        read_processing(path)
    assert err.value.file == str(path)


def test_read_processing_warns_above_5(tmp_path: Path):
    proc = read_processing(_processing(tmp_path, version="6.0.0"))
    assert len(proc.warnings) == 1
    assert "6.0.0" in proc.warnings[0]


def test_read_processing_missing_import(tmp_path: Path):
    with pytest.raises(InputError, match="Image importing"):
        read_processing(_processing(tmp_path, drop_import=True))
    with pytest.raises(InputError, match="Image importing"):
        read_processing(_processing(tmp_path, import_version=""))


def test_read_processing_missing_alignment(tmp_path: Path):
    obj = {"processing_pipeline": {"pipeline_version": "3.0.0", "data_processes": [
        {"name": "Image importing", "code_version": "0.0.25"}]}}  # fmt: skip
    with pytest.raises(InputError, match="Image atlas alignment"):
        read_processing(_write(tmp_path / "processing.json", obj))
    with pytest.raises(InputError):
        read_processing(_write(tmp_path / "processing.json", {"other": 1}))


@pytest.mark.parametrize(
    "location",
    [
        f"/data/a/image_tile_fusing/OMEZarr/{REG}.ome.zarr",
        f"s3://b/a/image_tile_fusing/OMEZarr/{REG}.zarr/",
        f"/data/a/image_tile_fusing/OMEZarr/{REG}",
    ],
)
def test_read_processing_channel_from_zarr_or_ome_zarr_location(tmp_path: Path, location: str):
    assert (
        read_processing(_processing(tmp_path, input_location=location)).registration_channel == REG
    )


def _zarr_dirs(tmp_path: Path, *names: str) -> Path:
    for name in names:
        (tmp_path / name).mkdir()
    return tmp_path


def test_find_channels_zarr_and_ome_zarr_names(tmp_path: Path):
    zdir = _zarr_dirs(tmp_path, f"{REG}.ome.zarr", f"{OTHER}.zarr", "Ex_561_Em_593.ome.zarr")
    (tmp_path / "notes.zarr").write_text("a file, not a channel folder")
    channels = find_channels(zdir)
    assert channels == {
        OTHER: zdir / f"{OTHER}.zarr",
        REG: zdir / f"{REG}.ome.zarr",
        "Ex_561_Em_593": zdir / "Ex_561_Em_593.ome.zarr",
    }
    assert list(channels) == [OTHER, "Ex_561_Em_593", REG]  # sorted by channel name


def test_find_channels_same_channel_twice_or_none_refused(tmp_path: Path):
    zdir = _zarr_dirs(tmp_path, f"{REG}.zarr", f"{REG}.ome.zarr", f"{OTHER}.zarr")
    with pytest.raises(InputError, match="more than one folder") as info:
        find_channels(zdir)
    assert f"{REG}: {REG}.ome.zarr, {REG}.zarr" in str(info.value) and info.value.file == str(zdir)
    empty = tmp_path / "empty"  # no <channel>.zarr folder at all
    empty.mkdir()
    with pytest.raises(
        InputError, match=r"expected <channel>\.zarr or <channel>\.ome\.zarr"
    ) as info:
        find_channels(empty)
    assert info.value.file == str(empty)


# ----------------------------------------------------------------------------- discover


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return cached_dataset(tmp_path_factory.mktemp("spim"), SyntheticSpec(content_level=None))


def test_discover_synthetic_asset(dataset):
    asset = discover(dataset.asset)
    zdir = dataset.asset / "image_tile_fusing" / "OMEZarr"
    assert asset.path == dataset.asset
    assert asset.orientation == "RPI"
    assert asset.processing.import_version == "0.0.25"
    assert asset.registration_channel == REG
    assert asset.channels == {OTHER: zdir / f"{OTHER}.zarr", REG: zdir / f"{REG}.zarr"}
    assert list(asset.channels) == sorted(asset.channels)
    assert asset.registration_zarr == zdir / f"{REG}.zarr"
    reg_dir = dataset.asset / "image_atlas_alignment" / REG
    assert asset.registration_dir == reg_dir
    ls = asset.ls_to_template
    assert ls.affine == reg_dir / "ls_to_template_SyN_0GenericAffine.mat"
    assert ls.inverse_warp == reg_dir / "ls_to_template_SyN_1InverseWarp.nii.gz"
    assert ls.warp == reg_dir / "ls_to_template_SyN_1Warp.nii.gz"
    assert all(p.is_file() for p in ls.files())
    assert asset.sidecar is None
    assert asset.sidecar_path is None
    ms = asset.multiscale()
    assert ms.name == REG
    assert len(ms.levels) == 5
    np.testing.assert_allclose(ms.levels[0].spacing_mm, [0.0018, 0.0018, 0.002], rtol=1e-12)
    assert tuple(dataset.truth["level0_size_xyz"]) == ms.levels[0].size
    others = asset.additional_channels()
    assert [m.name for m in others] == [OTHER]


def _copy_registration(dataset, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for f in (dataset.asset / "image_atlas_alignment" / REG).glob("ls_to_template_SyN_*"):
        shutil.copy(f, dest / f.name)
    return dest


def test_discover_override_without_sidecar(dataset, tmp_path: Path):
    override = _copy_registration(dataset, tmp_path / REG)
    with pytest.raises(InputError, match="sidecar") as err:
        discover(dataset.asset, registration_override=override)
    assert err.value.file == str(override)


def test_discover_override_with_sidecar(dataset, tmp_path: Path):
    override = _copy_registration(dataset, tmp_path / f"ccf_{REG}")
    sidecar = {"schema": "1.0", "moving_domain": {"bbox": {"L": [0, 1], "P": [0, 1], "S": [0, 1]}}}
    _write(override / "transform_information.json", sidecar)
    asset = discover(dataset.asset, registration_override=override)
    assert asset.registration_channel == REG  # "ccf_" prefix removed
    assert asset.registration_dir == override
    assert asset.sidecar == sidecar
    assert asset.sidecar_path == override / "transform_information.json"
    assert asset.ls_to_template.affine.parent == override


def test_discover_override_unknown_channel(dataset, tmp_path: Path):
    override = _copy_registration(dataset, tmp_path / "Ex_999_Em_999")
    _write(override / "transform_information.json", {"moving_domain": {}})
    with pytest.raises(InputError, match="Ex_999_Em_999"):
        discover(dataset.asset, registration_override=override)


def test_discover_missing_asset(tmp_path: Path):
    with pytest.raises(InputError):
        discover(tmp_path / "nope")
