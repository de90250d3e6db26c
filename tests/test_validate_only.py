"""``--validate-only``: each bad input is caught, named, and nothing is run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from alignprep.synthetic import SyntheticSpec

from .datasets import cached_dataset
from .test_pipeline import MOUSE, RECORDING, _break_layer, _run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A synthetic dataset with voxel data and ephys assets (built once)."""
    return cached_dataset(
        tmp_path_factory.mktemp("validate") / "ds", SyntheticSpec(ephys_preset="test")
    )


def _bad_layer_scale(data: Path) -> str:
    path = data / "probe_annotations" / "ProbeA_annotations.json"
    state = json.loads(path.read_text())
    state["layers"][0]["source"]["transform"]["outputDimensions"]["x"] = [3.6e-6, "m"]
    path.write_text(json.dumps(state))
    return "x: Neuroglancer scale 3.6 um vs OME-Zarr level-0 spacing 1.8 um"


def _bad_one_point(data: Path) -> str:
    path = data / "probe_annotations" / "ProbeB_annotations.json"
    state = json.loads(path.read_text())
    state["layers"][2]["annotations"] = state["layers"][2]["annotations"][:1]
    path.write_text(json.dumps(state))
    return "found 1 point annotation(s); at least 2 are needed"


def _bad_dimension(data: Path) -> str:
    path = data / "probe_annotations" / "ProbeB_annotations.json"
    state = json.loads(path.read_text())
    dims = state["layers"][3]["source"]["transform"]["outputDimensions"]
    state["layers"][3]["source"]["transform"]["outputDimensions"] = {
        ("q" if k == "y" else k): v for k, v in dims.items()
    }
    path.write_text(json.dumps(state))
    return "'q'"


def _bad_missing_layer(data: Path) -> str:
    _break_layer(data, "ProbeB_a")
    return "no annotation layer of that name"


def _bad_missing_file(data: Path) -> str:
    (data / "probe_annotations" / "ProbeA_annotations.json").unlink()
    return "no annotation file matches"


def _manifest_rows(data: Path) -> list[str]:
    return (data / "manifest.csv").read_text().splitlines()


def _bad_missing_column(data: Path) -> str:
    lines = [
        ",".join(c for k, c in enumerate(line.split(",")) if k != 2)
        for line in _manifest_rows(data)
    ]
    (data / "manifest.csv").write_text("\n".join(lines) + "\n")
    return "probe_file"


def _bad_duplicate(data: Path) -> str:
    lines = _manifest_rows(data)
    lines.append(lines[3].replace("ProbeB_b", "ProbeB_b_again"))
    (data / "manifest.csv").write_text("\n".join(lines) + "\n")
    return "duplicate key"


def _bad_mixed_mouse(data: Path) -> str:
    lines = _manifest_rows(data)
    lines[4] = lines[4].replace("000123", "999999", 1)
    (data / "manifest.csv").write_text("\n".join(lines) + "\n")
    return "999999"


def _ephys_truth(data: Path) -> dict:
    return json.loads((data.parent / "ephys_truth.json").read_text())


def _bad_no_analyzer(data: Path) -> str:
    truth = _ephys_truth(data)
    group = truth["probes"]["ProbeA"]["groups"][0]
    shutil.rmtree(data / truth["sorted_recording"] / "postprocessed" / group["analyzer"])
    shutil.rmtree(data / truth["sorted_recording"] / "curated" / group["curated"])
    return "no spike-sorting analyzer for ProbeA"


def _bad_no_raw_stream(data: Path) -> str:
    from alignprep.synthetic.ephys import raw_zarr_path

    truth = _ephys_truth(data)
    stream = truth["probes"]["ProbeB"]["streams"]["ap"]
    shutil.rmtree(raw_zarr_path(data / truth["recording_id"] / "ecephys", stream))
    return "found none"


def _bad_no_extension(data: Path) -> str:
    truth = _ephys_truth(data)
    name = truth["probes"]["ProbeB"]["groups"][1]["analyzer"]
    folder = data / truth["sorted_recording"] / "postprocessed" / name
    shutil.rmtree(folder / "extensions" / "templates")
    return "['templates']"


def _sorted_path(data: Path, probe: str, group: int, sub: str = "postprocessed") -> Path:
    truth = _ephys_truth(data)
    g = truth["probes"][probe]["groups"][group]
    return data / truth["sorted_recording"] / sub / g["analyzer" if sub == "postprocessed" else sub]


def _bad_empty_analyzer(data: Path) -> str:
    from alignprep.synthetic.ephys_sorted import empty_the_analyzer

    empty_the_analyzer(_sorted_path(data, "ProbeA", 0))
    return "single analyzer: the analyzer has 0 units"


def _bad_unreadable_analyzer(data: Path) -> str:
    from alignprep.synthetic.ephys_sorted import corrupt_the_analyzer

    corrupt_the_analyzer(path := _sorted_path(data, "ProbeB", 2))
    return f"{path}: {RECORDING}/ProbeB, shank group 2: cannot open the analyzer"


def _bad_curated_ids(data: Path) -> str:
    from alignprep.synthetic.ephys_sorted import rename_a_curated_unit

    rename_a_curated_unit(path := _sorted_path(data, "ProbeB", 1, "curated"))
    return f"{path}: {RECORDING}/ProbeB, shank group 1: the curated sorting's unit ids"


def _bad_short_recording(data: Path) -> str:
    import spikeinterface as si

    from alignprep.synthetic.ephys import raw_zarr_path

    truth = _ephys_truth(data)
    session = data / truth["recording_id"] / "ecephys"
    zarr = raw_zarr_path(session, truth["probes"]["ProbeA"]["streams"]["lf"])
    rec = si.read_zarr(zarr)
    short = rec.frame_slice(0, int(2.5 * rec.get_sampling_frequency()))
    short.save(format="zarr", folder=zarr.with_name("short.zarr"), progress_bar=False)
    shutil.rmtree(zarr)
    zarr.with_name("short.zarr").rename(zarr)
    return "shorter than one RMS/LFP window"


@pytest.mark.parametrize(
    "breaker",
    [
        _bad_missing_layer,
        _bad_one_point,
        _bad_layer_scale,
        _bad_dimension,
        _bad_missing_column,
        _bad_duplicate,
        _bad_mixed_mouse,
        _bad_missing_file,
        _bad_no_analyzer,
        _bad_no_raw_stream,
        _bad_no_extension,
        _bad_short_recording,
        _bad_empty_analyzer,
        _bad_unreadable_analyzer,
        _bad_curated_ids,
    ],
)
def test_validate_only_catches_each_bad_input_without_running(dataset, tmp_path, breaker):
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    shutil.copy(dataset.root / "ephys_truth.json", tmp_path / "ephys_truth.json")
    needle = breaker(data)
    results = tmp_path / "out"
    proc = _run(data, results, "--validate-only")
    assert proc.returncode == 3, proc.stderr[-3000:]
    report = json.loads((results / "validation_report.json").read_text())
    errors = [c for c in report["checks"] if c["status"] == "error"]
    assert any(needle in c["message"] for c in errors), errors
    assert sorted(p.name for p in results.rglob("*") if p.is_file()) == [
        "alignprep.log",
        "effective_config.json",
        "validation_report.json",
    ]  # nothing was run


def test_validate_only_passes_a_good_dataset(dataset, tmp_path):
    proc = _run(dataset.data_root, tmp_path / "out", "--validate-only")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (tmp_path / "out" / MOUSE).exists()
