"""The whole run through ``code/run``: executors, failures, restarts, validate-only, layout."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nrrd
import numpy as np
import pytest

from alignprep import outputs
from alignprep.space.atlas import brain_regions, in_allen25_box
from alignprep.synthetic import SyntheticSpec

from .conftest import CODE_DIR
from .datasets import cached_dataset
from .digests import tree_digests

MOUSE = SyntheticSpec().mouse_id
RECORDING = "ecephys_000123_2025-01-15_10-00-00"
CHECKS = json.dumps(
    {"checks": {"min_free_disk_gb": 0.1, "warn_free_disk_gb": 0.1, "min_available_ram_gb": 0.5}}
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A synthetic dataset with voxel data and ephys assets (built once)."""
    spec = SyntheticSpec(ephys_preset="test")
    return cached_dataset(tmp_path_factory.mktemp("pipeline") / "ds", spec)


def _args(data: Path, results: Path, *extra: str) -> list[str]:
    return [
        "--data-root",
        str(data),
        "--results-root",
        str(results),
        "--scratch-root",
        str(results.parent / f"{results.name}_scratch"),
        "--params",
        CHECKS,
        *extra,
    ]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CO_CPUS"}
    env["ALIGNPREP_PYTHON"] = sys.executable
    return env


def _run(data: Path, results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CODE_DIR / "run"), *_args(data, results, *extra)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def _report(results: Path) -> dict:
    return json.loads((outputs.mouse_dir(results, MOUSE) / "run_report.json").read_text())


def _hashes(results: Path) -> dict[str, str]:
    return tree_digests(results)


def _temp_files(results: Path) -> list[Path]:
    return [p for p in results.rglob("*") if p.is_file() and outputs.is_temp_name(p.name)]


def test_serial_processes_and_async_give_identical_outputs(dataset, tmp_path):
    runs = {
        "serial": ("--n-jobs", "1"),
        "processes": ("--n-jobs", "2"),
        "async": ("--async", "--n-jobs", "2"),
    }
    hashes = {}
    for name, extra in runs.items():
        proc = _run(dataset.data_root, tmp_path / name, *extra)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert _report(tmp_path / name)["executor"] == name
        hashes[name] = _hashes(tmp_path / name)
    assert len(hashes["serial"]) > 30
    assert hashes["processes"] == hashes["serial"]
    assert hashes["async"] == hashes["serial"]


def _break_layer(data: Path, layer: str) -> Path:
    path = data / "probe_annotations" / "ProbeB_annotations.json"
    state = json.loads(path.read_text())
    state["layers"] = [x for x in state["layers"] if x["name"] != layer]
    path.write_text(json.dumps(state))
    return path


def test_one_broken_row_among_good_ones(dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    ann = _break_layer(data, "ProbeB_b")
    proc = _run(data, tmp_path / "out", "--skip-ephys")
    assert proc.returncode == 1, proc.stderr[-3000:]
    items = {i["name"]: i for i in _report(tmp_path / "out")["items"]}
    broken = items[f"track {RECORDING}/ProbeB/ProbeB_b_shank2"]
    assert broken["status"] == "failed"
    assert str(ann) in broken["reason"] and "'ProbeB_b'" in broken["reason"]
    good = [i for n, i in items.items() if n != broken["name"]]
    assert good and all(i["status"] == "ok" for i in good)
    assert {"histology", "datapackage"} <= set(items)
    probe_b = outputs.probe_dir(tmp_path / "out", MOUSE, RECORDING, "ProbeB")
    assert sorted(p.name for p in probe_b.glob("xyz_picks_shank?.json")) == [
        "xyz_picks_shank1.json",
        "xyz_picks_shank3.json",
        "xyz_picks_shank4.json",
    ]
    again = _run(data, tmp_path / "out", "--allow-partial", "--skip-ephys")
    assert again.returncode == 0, again.stderr[-3000:]
    counts = _report(tmp_path / "out")["counts"]
    assert counts["failed"] == 1 and counts["ok"] + counts["skipped"] == len(items) - 1


def _start_and_kill_after(data: Path, results: Path, marker: str) -> None:
    proc = subprocess.Popen(
        [str(CODE_DIR / "run"), *_args(data, results, "--skip-ephys")],
        env=_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if re.search(marker, line):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, f"never saw {marker!r}"


def test_killed_after_histology_restarts_without_redoing_it(dataset, tmp_path):
    results = tmp_path / "out"
    _start_and_kill_after(dataset.data_root, results, r"item histology: ok")
    proc = _run(dataset.data_root, results, "--skip-ephys")
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {i["name"]: i for i in _report(results)["items"]}
    assert items["histology"]["status"] == "skipped"
    assert items["histology"]["reason"] == "unchanged since the last run"
    assert not _temp_files(results)
    reference = tmp_path / "reference"
    assert _run(dataset.data_root, reference, "--skip-ephys").returncode == 0
    assert _hashes(results) == _hashes(reference)  # the restarted run equals an uninterrupted one


def test_killed_mid_write_leaves_no_partial_file(dataset, tmp_path):
    results = tmp_path / "out"
    _start_and_kill_after(dataset.data_root, results, r"CCF template and labels -> image: done")
    for path in results.rglob("*.nrrd"):  # whatever is there under a real name is complete
        if not outputs.is_temp_name(path.name):
            nrrd.read(str(path))
    proc = _run(dataset.data_root, results, "--skip-ephys")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not _temp_files(results)
    assert _report(results)["counts"]["failed"] == 0


def _check_alf(probe: Path) -> None:
    """The ALF objects both GUIs load, in IBL units, with consistent lengths."""
    from one.alf.io import check_dimensions, load_object

    spikes, clusters = load_object(probe, "spikes"), load_object(probe, "clusters")
    channels = load_object(probe, "channels")
    for obj in (spikes, clusters, channels):
        assert check_dimensions(obj) == 0
    n_clu = len(clusters["channels"])
    assert spikes["clusters"].max() < n_clu and np.all(np.diff(spikes["times"]) >= 0)
    assert 0 < np.median(spikes["amps"]) < 1e-3  # volts (tens of uV), not uV
    assert np.all(np.abs(clusters["peakToTrough"]) < 5)  # ms, not s or samples
    assert clusters["channels"].max() < len(channels["rawInd"])
    assert len(np.load(probe / "spike_shank_indices.npy")) == len(spikes["times"])
    rms = np.load(probe / "_iblqc_ephysTimeRmsAP.rms.npy")
    assert rms.shape[1] > channels["rawInd"].max()


def test_outputs_in_the_layouts_both_guis_walk(dataset, tmp_path):
    """Results attached as an asset beside the inputs, walked as the Allen GUI does (§6)."""
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    proc = _run(data, data / "alignprep_results")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _report(data / "alignprep_results")
    # 5 tracks, 4 histology items, 2 ephys, 2 channel regions, 4 QC figure items, the package
    assert report["counts"] == {"ok": 18, "skipped": 0, "failed": 0}
    assert {i["name"] for i in report["items"] if i["name"].startswith("channel regions")} == {
        f"channel regions {RECORDING}/ProbeA",
        f"channel regions {RECORDING}/ProbeB",
    }
    for collection, n_shanks in (("ProbeA", 1), ("ProbeB", 4)):
        probe = data / "alignprep_results" / MOUSE / RECORDING / collection
        assert probe.parents[3] == data
        mouse = probe.parent.parent
        assert mouse.name == MOUSE and (mouse / "image_space_histology").is_dir()
        assets = list(data.glob(f"SmartSPIM_{mouse.name}*"))
        assert len(assets) == 1
        for name in (
            "ls_to_template_SyN_0GenericAffine.mat",
            "ls_to_template_SyN_1InverseWarp.nii.gz",
        ):
            assert len(list(assets[0].glob(f"image_atlas_alignment/*/{name}"))) == 1
        for name in ("syn_0GenericAffine.mat", "syn_1InverseWarp.nii.gz"):
            assert (data / "spim_template_to_ccf" / name).is_file()
        assert len(RECORDING.split("_")) > 2  # the GUI reads subject = recording_id.split('_')[1]
        suffixes = [""] if n_shanks == 1 else [f"_shank{n}" for n in range(1, n_shanks + 1)]
        for sfx in suffixes:  # exactly one file per GUI glob
            assert len(list(probe.glob(f"*xyz_picks{sfx}_image_space.json"))) == 1
            assert len(list(probe.glob(f"*xyz_picks{sfx}.json"))) == 1
            bregma = np.array(json.loads((probe / f"xyz_picks{sfx}.json").read_text())["xyz_picks"])
            assert in_allen25_box(bregma).all()  # um, IBL bregma
            length_um = np.linalg.norm(bregma[-1] - bregma[0])
            assert 500 < length_um < 12000  # um, not mm or m
        assert not list(probe.glob("*channel_locations*")) and not list(probe.glob("prev_*"))
        _check_alf(probe)
    histology = data / "alignprep_results" / MOUSE / "image_space_histology"
    assert len(list(histology.glob("ccf_in_*.nrrd"))) == 1
    assert len(list(histology.glob("labels_in_*.nrrd"))) == 1
    extra = [
        p.name for p in histology.glob("*.nrrd") if re.fullmatch(r"Ex_\d+_Em_\d+\.nrrd", p.name)
    ]
    assert extra == ["Ex_488_Em_525.nrrd"]
    labels, header = nrrd.read(str(histology / f"labels_in_{MOUSE}.nrrd"))
    assert labels.dtype == np.int32 and set(np.unique(labels)) <= set(brain_regions().id.tolist())
    assert header["space"] == "left-posterior-superior"
    from alignprep.stages.datapackage import load_datapackage

    package = load_datapackage(data / "alignprep_results" / MOUSE, data_root=data)
    assert package.missing() == []
    for collection, n_shanks in (("ProbeA", 1), ("ProbeB", 4)):  # every shank's regions listed
        regions = package.document["probes"][RECORDING][collection]["channel_regions"]
        suffixes = [""] if n_shanks == 1 else [f"_shank{n}" for n in range(1, n_shanks + 1)]
        assert [s["suffix"] for s in regions["shanks"]] == suffixes
        assert regions["folder"]["path"].endswith(f"{collection}/regions_from_histology_track")


def test_changed_inputs_redo_exactly_what_depends_on_them(dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    results = tmp_path / "out"
    assert _run(data, results, "--skip-ephys").returncode == 0
    path = data / "probe_annotations" / "ProbeA_annotations.json"
    state = json.loads(path.read_text())
    state["layers"][0]["annotations"][-1]["point"][0] += 3.0  # move ProbeA's tip 5.4 um
    path.write_text(json.dumps(state))
    assert _run(data, results, "--skip-ephys").returncode == 0
    status = {i["name"]: i["status"] for i in _report(results)["items"]}
    assert status.pop(f"track {RECORDING}/ProbeA/ProbeA_track") == "ok"  # redone
    assert status.pop("datapackage") == "ok"  # the index is always rewritten
    assert status.pop("qc mouse") == status.pop("qc tracks") == "ok"  # they draw the track
    assert set(status.values()) == {"skipped"}  # histology and the other tracks
    params = json.dumps({**json.loads(CHECKS), "histology": {"output_voxel_size_um": 40}})
    assert _run(data, results, "--skip-ephys", "--params", params).returncode == 0
    status = {i["name"]: i["status"] for i in _report(results)["items"]}
    histology = [n for n in status if n.startswith("histology")]
    assert len(histology) == 4  # channels, atlas and each channel's CCF QC
    assert {status.pop(n) for n in histology} == {"ok"} and status.pop("datapackage") == "ok"
    assert status.pop("qc mouse") == status.pop("qc tracks") == "ok"  # they draw the volumes
    assert set(status.values()) == {"skipped"}  # tracks do not depend on the histology grid
