"""Whole runs on tracks traced with other tools: without light-sheet data, and mixed manifests."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from alignprep import outputs
from alignprep.stages.datapackage import schema_errors
from alignprep.synthetic.ccf_dataset import build_ccf_dataset

from .test_pipeline import MOUSE, RECORDING, _report, _run, dataset  # noqa: F401

CCF_MOUSE = "000456"


def _entry_first(bregma_um) -> np.ndarray:
    """Picks as the run orders a tracing tool's track: by depth, the most dorsal first."""
    points = np.asarray(bregma_um, dtype=float)
    return points[np.argsort(-points[:, 2], kind="stable")]


@pytest.fixture(scope="module")
def ccf_run(tmp_path_factory):
    """``--demo ccf``'s dataset (AP_histology and ccf_csv tracks, ephys, no SmartSPIM), run."""
    root = tmp_path_factory.mktemp("ccf")
    ds = build_ccf_dataset(root / "ds")
    results = root / "out"
    proc = _run(ds.data_root, results, "--n-jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ds, results


def test_a_run_without_light_sheet_data_writes_the_ibl_inputs_equal_to_the_truth(ccf_run):
    ds, results = ccf_run
    mouse = outputs.mouse_dir(results, CCF_MOUSE)
    recording = f"ecephys_{CCF_MOUSE}_2025-01-15_10-00-00"
    truth = ds.truth["tracks"]
    files = {
        "ProbeA_track": mouse / recording / "ProbeA" / "xyz_picks.json",
        **{
            f"ProbeB_{c}": mouse / recording / "ProbeB" / f"xyz_picks_shank{k + 1}.json"
            for k, c in enumerate("abcd")
        },
    }
    for track, path in files.items():
        got = np.asarray(json.loads(path.read_text())["xyz_picks"])
        want = _entry_first(truth[track]["bregma_um"])
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-3, err_msg=track)
        assert (got[:, 0] < 0).all() == track.startswith("ProbeA")  # left / right hemisphere
    assert not list(mouse.rglob("*_image_space.json"))
    assert not (mouse / "image_space_histology").exists()
    assert not (mouse / "track_data" / "spim").exists()
    for probe in ("ProbeA", "ProbeB"):
        regions = outputs.channel_regions_dir(mouse / recording / probe)
        assert (regions / "channels.brainLocationIds_ccf_2017.npy").is_file()
        assert (mouse / recording / probe / "spikes.times.npy").is_file()


def test_the_run_says_what_it_did_not_write_and_why(ccf_run):
    _, results = ccf_run
    mouse = outputs.mouse_dir(results, CCF_MOUSE)
    report = json.loads((mouse / "run_report.json").read_text())
    assert report["counts"]["failed"] == 0
    assert not [i for i in report["items"] if i["name"].startswith("histology")]
    assert any("no light-sheet data" in n and "image-space" in n for n in report["notes"])
    readme = (results / "README.md").read_text()
    assert "No light-sheet data" in readme and "not produced (traced in the CCF)" in readme
    package = json.loads((mouse / "datapackage.json").read_text())
    assert schema_errors(package) == []
    assert package["light_sheet"] is False
    assert package["transforms"] is None and package["histology"] is None
    picks = [p for c in package["probes"].values() for e in c.values() for p in e["xyz_picks"]]
    assert len(picks) == 5 and all(p["image_space"] is None for p in picks)
    processing = json.loads((mouse / "processing.json").read_text())
    names = [p["name"] for p in processing["data_processes"]]
    assert not any("histology" in n for n in names)
    qc = sorted(p.name for p in outputs.qc_dir(results, CCF_MOUSE).glob("*.png"))
    assert "tracks_ccf.png" in qc and not any(n.startswith(("registration_", "track_")) for n in qc)
    page = (outputs.qc_dir(results, CCF_MOUSE) / "index.html").read_text()
    assert "no light-sheet data: the tracks, traced with other tools in the CCF" in page
    document = json.loads((mouse / "quality_control.json").read_text())
    numbers = {m["name"]: m["value"] for m in document["metrics"] if m.get("reference") is None}
    assert numbers["tracks inside the brain"] == 5
    n_picks = len(ccf_run[0].truth["tracks"]["ProbeA_track"]["ccf_um"])
    assert numbers["picks probe1"] == n_picks  # AP_histology's probe 1


def _mixed(dataset, root: Path, probe_a: str, probe_b: str = "right") -> Path:  # noqa: F811
    """The light-sheet test dataset with ProbeA traced in the CCF (a ccf_csv of its truth)."""
    data = root / "data"
    shutil.copytree(dataset.data_root, data, symlinks=True)
    truth = dataset.truth["tracks"]
    ccf_um = np.asarray(truth["ProbeA_track"]["ccf_um"])
    lines = ["ml_um,ap_um,dv_um", *(",".join(f"{v:.4f}" for v in p) for p in ccf_um)]
    (data / "probe_annotations" / "ProbeA_track.csv").write_text("\n".join(lines) + "\n")
    manifest = data / "manifest.csv"
    with manifest.open() as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        if row["ephys_collection"] == "ProbeA":
            row.update(probe_file="ProbeA_track.csv", annotation_format="ccf_csv")
        row["hemisphere"] = probe_a if row["ephys_collection"] == "ProbeA" else probe_b
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return data


def test_a_mixed_manifest_runs_both_kinds_of_track_in_one_run(dataset, tmp_path):  # noqa: F811
    data = _mixed(dataset, tmp_path, "left")
    results = tmp_path / "out"
    proc = _run(data, results, "--n-jobs", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    mouse = outputs.mouse_dir(results, MOUSE)
    probe_a, probe_b = mouse / RECORDING / "ProbeA", mouse / RECORDING / "ProbeB"
    truth = dataset.truth["tracks"]
    got = np.asarray(json.loads((probe_a / "xyz_picks.json").read_text())["xyz_picks"])
    want = _entry_first(truth["ProbeA_track"]["bregma_um"])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-3)
    assert not (probe_a / "xyz_picks_image_space.json").exists()
    assert len(list(probe_b.glob("xyz_picks_shank*_image_space.json"))) == 4
    package = json.loads((mouse / "datapackage.json").read_text())
    assert schema_errors(package) == [] and package["light_sheet"] is True
    entries = package["probes"][RECORDING]
    assert [p["image_space"] for p in entries["ProbeA"]["xyz_picks"]] == [None]
    assert all(p["image_space"] for p in entries["ProbeB"]["xyz_picks"])
    notes = _report(results)["notes"]
    assert any("ProbeA_track (ccf_csv)" in n for n in notes)
    qc = {p.name for p in outputs.qc_dir(results, MOUSE).glob("*.png")}
    assert "registration_ProbeA_track.png" not in qc and "track_ProbeA_track.png" not in qc
    assert {"registration_ProbeB_a_shank1.png", "track_ProbeB_a_shank1.png"} <= qc
    page = (outputs.qc_dir(results, MOUSE) / "index.html").read_text()
    assert "track ProbeA_track: traced in the CCF with another tool" in page
    readme = (results / "README.md").read_text()
    assert "| all | not produced (traced in the CCF) | `xyz_picks.json` |" in readme


def test_a_hemisphere_that_disagrees_fails_those_tracks_of_either_kind(dataset, tmp_path):  # noqa: F811
    data = _mixed(dataset, tmp_path, "right", "left")  # ProbeA is left, ProbeB right
    results = tmp_path / "out"
    proc = _run(data, results, "--n-jobs", "1", "--skip-ephys")
    assert proc.returncode == 1, proc.stderr[-3000:]
    items = {i["name"]: i for i in _report(results)["items"]}
    failed = {n: i["reason"] for n, i in items.items() if i["status"] == "failed"}
    probe_b = [f"track {RECORDING}/ProbeB/ProbeB_{c}_shank{k + 1}" for k, c in enumerate("abcd")]
    assert sorted(failed) == sorted([f"track {RECORDING}/ProbeA/ProbeA_track", *probe_b])
    reason = failed[f"track {RECORDING}/ProbeA/ProbeA_track"]
    assert "ProbeA_track.csv" in reason and "lies in the left hemisphere" in reason
    assert "manifest's hemisphere says 'right'" in reason
    assert all("lies in the right hemisphere" in failed[n] for n in probe_b)  # Neuroglancer rows
    mouse = outputs.mouse_dir(results, MOUSE)
    assert not list(mouse.rglob("xyz_picks*.json"))
    assert items["histology"]["status"] == "ok"


def test_an_edited_track_file_reruns_only_what_reads_it(ccf_run, tmp_path):
    """The re-run fingerprint of a tool's track holds its file: editing the CSV re-runs its
    four tracks, its probe's regions and the figures that draw them; ProbeA stays unchanged."""
    ds, results = ccf_run
    data, out = tmp_path / "data", tmp_path / "out"
    shutil.copytree(ds.data_root, data, symlinks=True)
    shutil.copytree(results, out, symlinks=True)
    proc = _run(data, out, "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts = json.loads((outputs.mouse_dir(out, CCF_MOUSE) / "run_report.json").read_text())
    assert counts["counts"]["ok"] == 1  # the datapackage only: nothing else re-ran
    csv_path = data / "probe_tracks" / "ProbeB_tracks.csv"
    lines = csv_path.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = f"{float(cells[1]) + 5.0:.3f}"  # the first pick of ProbeB_a, 5 um to the right
    csv_path.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    proc = _run(data, out, "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((outputs.mouse_dir(out, CCF_MOUSE) / "run_report.json").read_text())
    rerun = sorted(i["name"] for i in report["items"] if i["status"] == "ok")
    recording = f"ecephys_{CCF_MOUSE}_2025-01-15_10-00-00"
    assert rerun == sorted(
        [
            *(f"track {recording}/ProbeB/ProbeB_{c}_shank{k + 1}" for k, c in enumerate("abcd")),
            f"channel regions {recording}/ProbeB",
            "qc mouse",
            f"qc probe {recording}/ProbeB",
            "datapackage",
        ]
    )
