"""The QC figures in a whole run: what is drawn, listed and validated; failures; ``--no-qc``."""

from __future__ import annotations

import json
import shutil

import pytest
from aind_data_schema.core.quality_control import QualityControl

from alignprep import outputs
from alignprep.stages.datapackage import schema_errors

from .test_pipeline import MOUSE, RECORDING, _report, _run, dataset  # noqa: F401


@pytest.fixture(scope="module")
def finished(dataset, tmp_path_factory):  # noqa: F811
    results = tmp_path_factory.mktemp("qc") / "out"
    proc = _run(dataset.data_root, results, "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return results


def test_every_figure_is_listed_on_the_page_in_the_metadata_and_the_datapackage(finished):
    mouse = outputs.mouse_dir(finished, MOUSE)
    qc = outputs.qc_dir(finished, MOUSE)
    pngs = sorted(p.name for p in qc.glob("*.png"))
    tracks = sorted(p.stem for p in (mouse / "track_data" / "spim").glob("*.fcsv"))
    assert len(tracks) == 5
    want = {"registration_centre.png", "tracks_ccf.png"}
    want |= {f"registration_{t}.png" for t in tracks} | {f"track_{t}.png" for t in tracks}
    assert want <= set(pngs)
    probes = [p for p in pngs if p.startswith("probe_")]
    assert len(probes) == 1 + 4  # ProbeA, and ProbeB's four GUI shanks
    page = (qc / "index.html").read_text()
    assert all(page.count(f'src="{name}"') == 1 for name in pngs)
    document = json.loads((mouse / "quality_control.json").read_text())
    QualityControl.model_validate(document)
    refs = {m["reference"] for m in document["metrics"] if m.get("reference")}
    assert refs == {f"qc/{name}" for name in pngs}
    assert {m["status_history"][-1]["status"] for m in document["metrics"]} == {"Pending"}
    numbers = {m["name"]: m["value"] for m in document["metrics"] if m.get("reference") is None}
    assert numbers["tracks inside the brain"] == 5
    assert numbers[f"units {RECORDING}/ProbeA"] > 0
    picks = json.loads((mouse / RECORDING / "ProbeA" / "xyz_picks.json").read_text())
    track_a = next(t for t in tracks if t.startswith("ProbeA"))
    assert numbers[f"picks {track_a}"] == len(picks["xyz_picks"])
    package = json.loads((mouse / "datapackage.json").read_text())
    assert schema_errors(package) == []
    assert package["qc"]["page"]["path"] == "qc/index.html"
    assert sorted(r["path"] for r in package["qc"]["figures"]) == [f"qc/{n}" for n in pngs]
    statuses = {i["name"]: i["status"] for i in _report(finished)["items"]}
    assert {n for n in statuses if n.startswith("qc ")} == {
        "qc mouse",
        "qc tracks",
        f"qc probe {RECORDING}/ProbeA",
        f"qc probe {RECORDING}/ProbeB",
    }


def test_a_failed_track_leaves_a_gap_and_a_note_never_a_failed_qc(dataset, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    annotation = data / "probe_annotations" / "ProbeA_annotations.json"
    annotation.write_text("{ not json")
    results = tmp_path / "out"
    proc = _run(data, results, "--allow-partial", "--skip-ephys", "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {i["name"]: i for i in _report(results)["items"]}
    failed = [n for n, i in items.items() if i["status"] == "failed"]
    assert failed and all(n.startswith("track ") and "ProbeA" in n for n in failed), failed
    assert items["qc mouse"]["status"] == items["qc tracks"]["status"] == "ok"
    qc = outputs.qc_dir(results, MOUSE)
    assert not list(qc.glob("*ProbeA*.png"))
    assert len(list(qc.glob("track_*.png"))) == 4
    page = (qc / "index.html").read_text()
    assert "ProbeA" in page and "failed" in page.lower()
    index = json.loads((qc / "figures-qc_tracks.json").read_text())
    assert any("ProbeA" in note for note in index["notes"])


def test_no_qc_draws_nothing_and_the_datapackage_says_so(dataset, tmp_path):  # noqa: F811
    results = tmp_path / "out"
    proc = _run(dataset.data_root, results, "--no-qc", "--skip-ephys", "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    mouse = outputs.mouse_dir(results, MOUSE)
    assert not (mouse / outputs.QC_DIR).exists()
    assert not (mouse / outputs.QUALITY_CONTROL_NAME).exists()
    assert json.loads((mouse / "datapackage.json").read_text())["qc"] is None
    assert not [i for i in _report(results)["items"] if i["name"].startswith("qc ")]


def test_only_qc_redraws_and_a_malformed_channel_table_is_a_note(dataset, finished, tmp_path):  # noqa: F811
    """A damaged output of an earlier run is a note on the page, never a crash of the run."""
    results = tmp_path / "out"
    shutil.copytree(finished, results)
    probe = outputs.probe_dir(results, MOUSE, RECORDING, "ProbeA")
    (probe / "channels.localCoordinates.npy").write_bytes(b"not a numpy file")
    proc = _run(dataset.data_root, results, "--only", "qc", "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    items = {i["name"]: i for i in _report(results)["items"]}
    assert items[f"qc probe {RECORDING}/ProbeA"]["status"] == "ok"  # redrawn: its input changed
    assert items[f"qc probe {RECORDING}/ProbeB"]["status"] == "skipped"
    # ProbeA's track cannot be planned without its channel table: its QC figures are left out
    assert {i["status"] for n, i in items.items() if n.startswith("qc ")} <= {"ok", "skipped"}
    qc = outputs.qc_dir(results, MOUSE)
    assert not list(qc.glob("probe_*ProbeA*.png"))  # the old summary is gone, not left stale
    assert len(list(qc.glob("probe_*ProbeB*.png"))) == 4
    notes = [
        n
        for p in qc.glob("figures-qc_probe_*ProbeA*.json")
        for n in json.loads(p.read_text())["notes"]
    ]
    assert any("no summary" in n and "localCoordinates" in n for n in notes), notes
    assert "no summary" in (qc / "index.html").read_text()  # a qc slice writes its page


@pytest.fixture(scope="module")
def planned_qc(dataset, finished):  # noqa: F811
    """The finished run's config and its QC items as the run planned them (after its ephys)."""
    from alignprep.cli import build_parser, config_from_args
    from alignprep.orchestration.plan import build_plan, resolve_tracks
    from alignprep.stages.validate import validate
    from alignprep.work import QcWork

    from .test_pipeline import _args

    config = config_from_args(build_parser().parse_args(_args(dataset.data_root, finished)))
    (mouse,) = build_plan(config, validate(config)).mice
    resolve_tracks(config, mouse)
    return config, [w for w in mouse.items if isinstance(w, QcWork)]


def test_the_schedule_estimates_each_qc_item_by_the_figures_it_draws(planned_qc):
    from alignprep.orchestration.priority import qc_figures
    from alignprep.stages.qc import index_path

    config, qc = planned_qc
    assert len(qc) == 4
    for work in qc:
        drawn = json.loads(index_path(config, work).read_text())["figures"]
        assert qc_figures(work) == len(drawn), work.name


def test_each_qc_item_waits_for_exactly_the_items_that_wrote_what_it_reads(planned_qc, finished):
    from alignprep.stages.qc import upstream_files

    config, qc = planned_qc
    mouse_dir = outputs.mouse_dir(finished, MOUSE)
    writer = {f: i["name"] for i in _report(finished)["items"] for f in i["files"]}
    for work in qc:
        reads = [str(f.relative_to(mouse_dir)) for f in upstream_files(config, work)]
        assert reads, work.name
        assert {writer[f] for f in reads} == set(work.after), work.name
