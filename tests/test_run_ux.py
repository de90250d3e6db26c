"""What a user sees: the log file, validation wording, provenance, the demo twice in a row."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from alignprep.synthetic import SyntheticSpec

from .datasets import cached_dataset
from .test_pipeline import MOUSE, _hashes, _report, _run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return cached_dataset(tmp_path_factory.mktemp("ux") / "ds", SyntheticSpec())


@pytest.fixture(scope="module")
def finished(dataset, tmp_path_factory):
    results = tmp_path_factory.mktemp("ux_run") / "out"
    proc = _run(dataset.data_root, results, "--skip-ephys")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results, proc


def test_the_log_file_holds_the_console_lines(finished):
    results, proc = finished
    logged = (results / "alignprep.log").read_text().splitlines()
    console = proc.stderr.splitlines()
    start = next(i for i, line in enumerate(console) if "log file:" in line)
    assert logged and logged[0] == console[start]
    # the same lines; two workers' lines may interleave differently in the two streams
    assert Counter(line for line in console[start:] if line.strip()) == Counter(logged)


def test_every_ok_check_says_what_it_found(finished):
    results, _ = finished
    report = json.loads((results / "validation_report.json").read_text())
    silent = [c["name"] for c in report["checks"] if c["status"] == "ok" and not c["message"]]
    assert silent == []
    by_name = {c["name"]: c["message"] for c in report["checks"]}
    assert re.fullmatch(
        r"5 valid row\(s\), 0 rejected, mouse '000123'", by_name["manifest readable"]
    )
    assert "orientation RPI" in by_name["SmartSPIM asset, frames, transforms"]
    assert re.match(r"level 4 \(28\.8, 28\.8, 32 um", by_name["histology grid"])
    assert re.fullmatch(r"\d+ picks along \d+\.\d\d mm", by_name["track ProbeA_track"])


def test_the_parameter_dump_is_debug_only(finished, dataset, tmp_path):
    _, proc = finished
    assert '"output_voxel_size_um"' not in proc.stderr
    debug = _run(
        dataset.data_root,
        tmp_path / "out",
        "--validate-only",
        "--skip-ephys",
        "--log-level",
        "debug",
    )
    assert debug.returncode == 0
    assert '"output_voxel_size_um": 30.0' in debug.stderr


def test_an_empty_data_root_suggests_the_demo_and_the_contract(tmp_path):
    (tmp_path / "data").mkdir()
    proc = _run(tmp_path / "data", tmp_path / "out", "--validate-only")
    assert proc.returncode == 3
    assert "is empty" in proc.stderr and "--demo" in proc.stderr
    assert "docs/inputs.md" in proc.stderr


def test_a_missing_reference_names_its_flag(dataset, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    shutil.rmtree(data / "allen_mouse_ccf")
    proc = _run(data, tmp_path / "out", "--validate-only", "--skip-ephys")
    assert proc.returncode == 3
    assert "set --references-ccf-template (or references.ccf_template in --params)" in proc.stderr


def test_processing_json_names_real_code_and_the_inputs_read(finished, dataset):
    results, _ = finished
    text = (results / MOUSE / "processing.json").read_text()
    assert ".invalid" not in text
    processing = json.loads(text)
    by_name = {p["name"]: p for p in processing["data_processes"]}
    histology = by_name["alignprep histology"]["code"]
    assert (histology["url"] and histology["commit_hash"]) or histology["url"].startswith("file://")
    assets = {a["name"] for a in histology["input_data"]}
    asset = next(p.name for p in dataset.data_root.glob("SmartSPIM_*"))
    assert {asset, "allen_mouse_ccf", "spim_template_to_ccf"} <= assets
    tracks = {a["name"] for a in by_name["alignprep probe tracks"]["code"]["input_data"]}
    assert "probe_annotations" in tracks and "allen_mouse_ccf" in tracks
    assert "allen_mouse_ccf_annotations_lateralized_compact" in tracks  # labels: in-brain check


def test_demo_runs_the_stages_and_twice_in_a_row(run_cli, tmp_path):
    first = run_cli(
        "--demo", "--results-root", str(tmp_path / "r"), "--scratch-root", str(tmp_path / "s")
    )
    assert first.returncode == 0, first.stderr[-3000:]
    written = json.loads((tmp_path / "r" / "effective_config.json").read_text())
    assert written["data_root"] == str(tmp_path / "s" / "demo_dataset" / "data")
    picks = sorted(p.name for p in (tmp_path / "r").rglob("xyz_picks*.json"))
    assert len(picks) == 10 and "xyz_picks.json" in picks and "xyz_picks_shank4.json" in picks
    # 5 tracks, 4 histology (channels, atlas, 2 channels' CCF QC), 2 ephys, 2 probe folders'
    # channel regions, 4 QC figure items (the mouse, its tracks, 2 probe folders), package
    assert "18 ok, 0 unchanged, 0 failed" in first.stderr
    qc = tmp_path / "r" / "000123" / "qc"
    assert len(list(qc.glob("*.png"))) == 7 + 5 + 5  # 6 overlays + atlas, 5 slabs, 1 + 4 probes
    assert (qc / "index.html").is_file() and (qc.parent / "quality_control.json").is_file()
    histology = tmp_path / "r" / "000123" / "image_space_histology"
    assert (histology / "labels_in_000123.nrrd").is_file()
    assert (histology / "histology_registration_pipeline.nrrd").is_file()
    before = _hashes(tmp_path / "r")
    second = run_cli(
        "--demo", "--results-root", str(tmp_path / "r"), "--scratch-root", str(tmp_path / "s")
    )
    assert second.returncode == 0, second.stderr[-3000:]
    assert "demo dataset reused, built earlier by this code" in second.stderr
    report = _report(tmp_path / "r")
    assert report["counts"]["failed"] == 0 and report["counts"]["skipped"] >= 10
    assert _hashes(tmp_path / "r") == before
