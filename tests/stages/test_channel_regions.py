"""Channel regions from the histology track, on synthetic datasets with truth.

The track stage runs on the synthetic histology (picks through the real ANTs chain); the probe
folders get the channel tables and units the ephys stage would leave (NP1.0 384 channels in the
left hemisphere, NP2.0 4 shanks x 48 on the right). The truth: IBL's rule re-derived
independently (``tests/ibl_track_rule.py``) on the truth picks, and the analytic shells of the
synthetic brain.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import one.alf.io as alfio
import pandas as pd
import pytest

from alignprep import outputs
from alignprep.inputs.manifest import read_manifest
from alignprep.space import atlas
from alignprep.stages.channel_regions import ChannelRegionsResult, run_channel_regions
from alignprep.stages.context import MouseContext
from alignprep.synthetic import SyntheticDataset
from alignprep.synthetic.probe_folders import shell_ids_at, write_channel_table, write_units
from alignprep.synthetic.volumes import SHELLS, brain_volumes

from .. import ibl_track_rule
from ..plan_runner import run_plan
from ..test_rerun_dependencies import annotation
from .conftest import stage_config

RECORDING = "ecephys_000123_2025-01-15_10-00-00"
SHELL_RADII = np.array([shell[0] for shell in SHELLS])
LAYOUTS = {"ProbeA": ("np1", 384, 30), "ProbeB": ("np2", 192, 24)}  # kind, channels, units


class Run:
    """Tracks + channel regions of one dataset into ``results``."""

    def __init__(self, ds: SyntheticDataset, results: Path) -> None:
        self.ds, self.results = ds, results
        self.config = stage_config(ds.data_root, results)
        self.manifest = read_manifest(ds.data_root / "manifest.csv")
        self.units: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for collection, (kind, n_ch, n_units) in LAYOUTS.items():
            folder = self.probe(collection)
            write_channel_table(folder, kind, n_ch)
            self.units[collection] = write_units(folder, n_ch, n_units, seed=n_ch)
        only = self.config.model_copy(update={"only": ("tracks", "channel_regions")})
        plan, result = run_plan(only, self.manifest)  # the real plan: tracks, then regions
        self.items = {item.name: item for item in result.items}
        assert all(i.status.value == "ok" for i in result.items), [
            (i.name, i.reason) for i in result.items
        ]
        self.ctx: MouseContext = plan.mice[0].report.context

    def probe(self, collection: str) -> Path:
        return outputs.probe_dir(self.results, self.manifest.mouse_id, RECORDING, collection)

    def regions(self, collection: str) -> ChannelRegionsResult:
        rows = [r for r in self.manifest.rows if r.ephys_collection == collection]
        return run_channel_regions(self.ctx, self.probe(collection), rows)

    def shank_doc(self, collection: str, suffix: str) -> dict:
        path = outputs.channel_regions_paths(self.probe(collection), suffix)["channels"]
        return json.loads(path.read_text())


@pytest.fixture(scope="module")
def warped_run(warped: SyntheticDataset, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(warped, tmp_path_factory.mktemp("regions_warped"))


@pytest.fixture(scope="module")
def affine_run(affine_only: SyntheticDataset, tmp_path_factory: pytest.TempPathFactory) -> Run:
    return Run(affine_only, tmp_path_factory.mktemp("regions_affine"))


def test_the_run_places_every_probe_folder_it_planned(warped_run):
    """The plan has one channel regions item per probe folder; each wrote its shanks' files."""
    regions = {n: i for n, i in warped_run.items.items() if i.stage == "channel_regions"}
    assert sorted(regions) == [f"channel regions {RECORDING}/{c}" for c in sorted(LAYOUTS)]
    mouse = outputs.mouse_dir(warped_run.results, warped_run.manifest.mouse_id)
    for collection in LAYOUTS:
        item = regions[f"channel regions {RECORDING}/{collection}"]
        folder = outputs.channel_regions_dir(warped_run.probe(collection))
        assert sorted(mouse / f for f in item.files) == sorted(
            p for p in folder.iterdir() if p.is_file()
        )
    n_shanks = {c: len(outputs.channel_regions_suffixes(outputs.channel_regions_dir(
        warped_run.probe(c)))) for c in LAYOUTS}  # fmt: skip
    assert n_shanks == {"ProbeA": 1, "ProbeB": 4}


def _docs(run: Run) -> list[tuple[str, dict]]:
    """(collection, per-shank document) of every shank, after running both folders."""
    out = []
    for collection in LAYOUTS:
        res = run.regions(collection)
        assert res.status == "ok", res.reason
        for shank in res.shanks:
            out.append((collection, run.shank_doc(collection, shank.suffix)))
    return out


def _truth_positions(run: Run, doc: dict) -> tuple[np.ndarray, np.ndarray]:
    """IBL's rule on the truth picks of the document's track: (positions, axial)."""
    (track_id,) = doc["histology_track_ids"]
    truth_picks = np.asarray(run.ds.truth["tracks"][track_id]["bregma_um"])
    axial = np.array([c["axial_um"] for c in doc["channels"]])
    return ibl_track_rule.channel_positions(truth_picks, axial), axial


def test_affine_chain_channels_within_1um_of_ibl_rule_on_truth_picks(affine_run):
    worst = 0.0
    for _, doc in _docs(affine_run):
        want, _ = _truth_positions(affine_run, doc)
        got = np.array([c["bregma_um"] for c in doc["channels"]])
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst < 1.0


def test_warped_chain_channels_within_1um_of_ibl_rule_on_truth_picks(warped_run):
    # through the numerical inverse warps the picks move by well under 1 um here (0.27 um
    # measured on the channels), so the acceptance bound holds on the warped chain too
    for _, doc in _docs(warped_run):
        want, _ = _truth_positions(warped_run, doc)
        got = np.array([c["bregma_um"] for c in doc["channels"]])
        assert np.abs(got - want).max() < 1.0
        ccf = np.array([c["ccf_um"] for c in doc["channels"]])
        assert np.allclose(atlas.ccf_um_to_bregma_um(ccf), got, atol=1e-3)


def test_regions_agree_with_the_truth_labels(warped_run):
    """>= 99 % of in-brain channels get the truth label volume's region at their truth place;
    every channel that disagrees with the analytic shells sits within a voxel (plus the pick
    error) of a shell boundary, where the 25 um label grid itself decides."""
    spec = warped_run.ds.truth["spec"]
    center, semi = np.array(spec["brain_center_um"]), np.array(spec["brain_semi_axes_um"])
    shape = tuple(spec["ccf_shape_apdvml"])
    _, truth_volume = brain_volumes(
        shape, center, semi, atlas.BREGMA_MLAPDV_UM[0], np.random.default_rng(0)
    )
    agree = total = 0
    for _, doc in _docs(warped_run):
        want_pos, _ = _truth_positions(warped_run, doc)
        ccf_um = atlas.bregma_um_to_ccf_um(want_pos)
        ml, ap, dv = np.rint(ccf_um / 25.0).astype(int).T
        truth = truth_volume[ap, dv, ml]
        got = np.array([c["lateralized_id"] for c in doc["channels"]])
        inside = truth != 0
        agree += int(np.sum(got[inside] == truth[inside]))
        total += int(inside.sum())
        analytic = shell_ids_at(ccf_um, center, semi, atlas.BREGMA_MLAPDV_UM[0])
        r = np.sqrt(np.sum(((ccf_um - center) / semi) ** 2, axis=1))
        to_boundary_um = semi.max() * np.min(np.abs(r[:, None] - SHELL_RADII), axis=1)
        assert np.all(to_boundary_um[got != analytic] < 25.0 * np.sqrt(3) / 2 + 10.0)
        assert [c["acronym"] for c in doc["channels"]] == atlas.region_acronyms(np.abs(got))
    assert total > 300 and agree / total >= 0.99, (agree, total)


def test_left_tracks_get_negative_lateralized_and_positive_allen_ids(warped_run):
    for collection, doc in _docs(warped_run):
        brain = [c for c in doc["channels"] if c["lateralized_id"] != 0]
        assert brain and all(c["allen_id"] > 0 for c in brain)
        assert all(c["allen_id"] == abs(c["lateralized_id"]) for c in brain)
        sign = -1 if collection == "ProbeA" else 1  # ProbeA: left hemisphere (ML < bregma)
        assert all(np.sign(c["lateralized_id"]) == sign for c in brain)
        assert all(np.sign(c["bregma_um"][0]) == sign for c in brain)


def test_four_shanks_give_four_tables_at_their_shank_offsets(warped_run):
    res = warped_run.regions("ProbeB")
    assert [s.suffix for s in res.shanks] == [f"_shank{k}" for k in (1, 2, 3, 4)]
    probe = warped_run.probe("ProbeB")
    for k, shank in enumerate(res.shanks):
        doc = warped_run.shank_doc("ProbeB", shank.suffix)
        assert doc["histology_track_ids"] == [f"ProbeB_{'abcd'[k]}"]
        lateral = {c["lateral_um"] for c in doc["channels"]}
        assert lateral == {250.0 * k, 250.0 * k + 32.0}  # NP2.0 columns of shank k
        table = pd.read_csv(outputs.channel_regions_paths(probe, shank.suffix)["regions"])
        assert (table["shank"] == k + 1).all()
        assert table["n_channels"].sum() == 48 == len(doc["channels"])
        order = np.argsort([c["axial_um"] for c in doc["channels"]], kind="stable")
        first = doc["channels"][order[0]]["acronym"]
        assert table["acronym"].iloc[0] == first  # the table starts at the tip
        assert table["axial_start_um"].iloc[0] == 0.0


def test_insertion_follows_the_track_direction(warped_run):
    for collection, doc in _docs(warped_run):
        ins = doc["insertion"]
        (track_id,) = doc["histology_track_ids"]
        truth = np.asarray(warped_run.ds.truth["tracks"][track_id]["bregma_um"])
        up = truth[0] - truth[-1]  # deepest -> entry, bregma axes
        theta = np.degrees(np.arccos(up[2] / np.linalg.norm(up)))
        assert ins["theta_deg"] == pytest.approx(theta, abs=1.5), collection
        assert np.allclose(ins["tip_um"], doc["track"]["ordered_picks_bregma_um"][0], atol=20)
        assert ins["entry_um"][2] > ins["tip_um"][2]


def test_channels_above_the_top_pick_are_flagged(warped_run):
    doc = warped_run.shank_doc("ProbeA", "")
    length = doc["track"]["length_um"]
    flags = {c["axial_um"]: c["beyond_track"] for c in doc["channels"]}
    assert any(flags.values()) and not all(flags.values())  # 384 NP1 channels > 2.2 mm track
    assert all(flag == (axial + 200.0 > length) for axial, flag in flags.items())
    top = doc["track"]["ordered_picks_bregma_um"][-1]
    beyond = [c["bregma_um"] for c in doc["channels"] if c["beyond_track"]]
    assert np.allclose(beyond, top, atol=1e-3)  # the rule clamps them to the top pick


def test_alf_datasets_load_and_units_take_their_peak_channel(warped_run):
    for collection in LAYOUTS:
        res = warped_run.regions(collection)
        folder = outputs.channel_regions_dir(warped_run.probe(collection))
        channels = alfio.load_object(folder, "channels")
        clusters = alfio.load_object(folder, "clusters")
        n_ch = LAYOUTS[collection][1]
        assert channels["mlapdv"].shape == (n_ch, 3) and channels["mlapdv"].dtype == np.int32
        peak, good = warped_run.units[collection]
        assert np.array_equal(clusters["mlapdv"], channels["mlapdv"][peak])
        ids = channels["brainLocationIds_ccf_2017"]
        assert np.array_equal(clusters["brainLocationIds_ccf_2017"], ids[peak])
        positions = np.zeros((n_ch, 3))
        for shank in res.shanks:
            for c in warped_run.shank_doc(collection, shank.suffix)["channels"]:
                positions[c["row"]] = c["bregma_um"]
                assert ids[c["row"]] == c["allen_id"]
        assert np.abs(channels["mlapdv"] - positions).max() <= 0.5
        tables = [
            pd.read_csv(
                outputs.channel_regions_paths(warped_run.probe(collection), s.suffix)["regions"]
            )
            for s in res.shanks
        ]
        assert sum(t["n_units"].sum() for t in tables) == len(peak)
        assert sum(t["n_good_units"].sum() for t in tables) == int(good.sum())


def test_no_name_a_gui_or_ingestion_reads(warped_run):
    warped_run.regions("ProbeB")
    probe = warped_run.probe("ProbeB")
    for pattern in (
        "channel_locations*",
        "ccf_channel_locations*",
        "prev_alignments*",
        "*xyz_picks*",
    ):
        hits = [p for p in probe.rglob(pattern) if outputs.CHANNEL_REGIONS_DIR in p.parts]
        assert not hits, pattern
    own = {p.name for p in probe.glob("channels.*")} | {p.name for p in probe.glob("clusters.*")}
    assert "channels.mlapdv.npy" not in own and "channels.brainLocationIds_ccf_2017.npy" not in own


def test_same_inputs_same_bytes(warped_run):
    folder = outputs.channel_regions_dir(warped_run.probe("ProbeB"))
    warped_run.regions("ProbeB")
    first = {p.name: p.read_bytes() for p in folder.iterdir()}
    warped_run.regions("ProbeB")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == first


def test_a_rerun_places_again_exactly_the_folders_whose_inputs_changed(warped, tmp_path):
    """Regions read the tracks' picks and the ephys tables (outputs, not data_root inputs): the
    re-run fingerprint holds their digests, so editing either re-runs exactly that folder."""
    data = tmp_path / "data"
    shutil.copytree(warped.data_root, data)
    run = Run(replace(warped, data_root=data), tmp_path / "results")
    config = run.config.model_copy(update={"only": ("tracks", "channel_regions")})

    def statuses() -> dict[str, str]:
        _, result = run_plan(config, run.manifest)
        return {i.name: i.status.value for i in result.items if i.stage == "channel_regions"}

    a, b = (f"channel regions {RECORDING}/{c}" for c in ("ProbeA", "ProbeB"))
    assert statuses() == {a: "skipped", b: "skipped"}
    annotation(data)  # ProbeA's tip moves: its track and then its regions re-run
    assert statuses() == {a: "ok", b: "skipped"}
    metrics = run.probe("ProbeB") / "clusters.metrics.csv"
    table = pd.read_csv(metrics)
    table["label"] = 1 - table["label"]  # the ephys stage relabelled every unit
    table.to_csv(metrics, index=False)
    assert statuses() == {a: "skipped", b: "ok"}
    doc = run.shank_doc("ProbeB", "_shank1")
    good = {u["cluster_id"]: u["good"] for u in doc["units"]}
    assert good == {int(i): bool(v == 1) for i, v in table["label"].items() if i in good}


# --- bad inputs: a clear error for that probe (or shank) only ---------------------------------


@pytest.fixture
def broken(warped_run: Run, tmp_path: Path) -> Run:
    """A private copy of the run's results, to break."""
    copy = Run.__new__(Run)
    copy.__dict__.update(warped_run.__dict__)
    copy.results = tmp_path / "results"
    shutil.copytree(warped_run.results, copy.results)
    return copy


def _write_picks(run: Run, collection: str, suffix: str, picks: list) -> Path:
    path = outputs.picks_paths(run.probe(collection), suffix)["bregma"]
    path.write_text(json.dumps({"xyz_picks": picks}))
    return path


def test_a_track_without_two_distinct_depths_fails_that_shank_only(broken):
    path = _write_picks(broken, "ProbeB", "_shank2", [[500.0, 3000.0, -1500.0]] * 3)
    res = broken.regions("ProbeB")
    assert res.status == "failed" and str(path) in res.reason and "distinct depth" in res.reason
    status = {s.suffix: s.status for s in res.shanks}
    assert status == {"_shank1": "ok", "_shank2": "failed", "_shank3": "ok", "_shank4": "ok"}
    folder = outputs.channel_regions_dir(broken.probe("ProbeB"))
    names = sorted(p.name for p in folder.iterdir())
    assert "histology_track_channels_shank1.json" in names
    assert not any("shank2" in n for n in names)
    assert not any(n.startswith(("channels.", "clusters.")) for n in names)  # need every shank
    assert any("no ALF datasets" in w for w in res.warnings)
    assert broken.regions("ProbeA").status == "ok"  # the other probe is untouched


def test_picks_outside_the_ccf_volume_fail_with_the_file_named(broken):
    path = _write_picks(
        broken, "ProbeA", "", [[-500.0, 3000.0, -1000.0], [-500.0, 3000.0, -9000.0]]
    )
    res = broken.regions("ProbeA")
    assert res.status == "failed"
    assert str(path) in res.reason and "picks [1]" in res.reason and "outside the CCF" in res.reason
    assert res.files == [] and not outputs.channel_regions_dir(broken.probe("ProbeA")).exists()
    assert broken.regions("ProbeB").status == "ok"


def test_a_channel_table_without_y_fails_the_probe_and_removes_old_outputs(broken):
    probe = broken.probe("ProbeA")
    assert broken.regions("ProbeA").status == "ok"
    xy = np.load(probe / "channels.localCoordinates.npy")
    np.save(probe / "channels.localCoordinates.npy", xy[:, :1])
    res = broken.regions("ProbeA")
    assert res.status == "failed" and "expected (n_channels, 2)" in res.reason
    assert "channels.localCoordinates.npy" in res.reason
    assert not outputs.channel_regions_dir(probe).exists()  # nothing stale looks valid
    assert broken.regions("ProbeB").status == "ok"


def test_missing_or_garbled_picks_files_name_the_file(broken):
    outputs.picks_paths(broken.probe("ProbeB"), "_shank3")["bregma"].unlink()
    bad = _write_picks(broken, "ProbeB", "_shank4", [[1.0, 2.0]])
    res = broken.regions("ProbeB")
    reasons = {s.suffix: s.reason for s in res.shanks}
    assert "missing" in reasons["_shank3"] and "xyz_picks_shank3.json" in reasons["_shank3"]
    assert str(bad) in reasons["_shank4"] and "'xyz_picks'" in reasons["_shank4"]
    assert {s.suffix for s in res.shanks if s.status == "ok"} == {"_shank1", "_shank2"}


def test_a_folder_without_ephys_is_skipped(broken):
    probe = broken.probe("ProbeA")
    for path in probe.glob("channels.*"):
        path.unlink()
    res = broken.regions("ProbeA")
    assert res.status == "skipped" and "channels.localCoordinates.npy" in res.reason
    assert not outputs.channel_regions_dir(probe).exists()


def test_channels_only_folder_writes_channel_datasets(broken):
    probe = broken.probe("ProbeA")
    for path in probe.glob("clusters.*"):
        path.unlink()
    res = broken.regions("ProbeA")
    assert res.status == "ok", res.reason
    folder = outputs.channel_regions_dir(probe)
    assert not list(folder.glob("clusters.*"))
    assert set(alfio.load_object(folder, "channels")) == {"mlapdv", "brainLocationIds_ccf_2017"}
    table = pd.read_csv(outputs.channel_regions_paths(probe, "")["regions"])
    assert table["n_units"].sum() == 0 and table["n_good_units"].sum() == 0


def test_a_row_whose_ephys_shank_has_no_channels_fails_that_row_only(broken):
    rows = [r for r in broken.manifest.rows if r.ephys_collection == "ProbeB"]
    rows[1] = replace(rows[1], ephys_shank=7)
    res = run_channel_regions(broken.ctx, broken.probe("ProbeB"), rows)
    failed = [s for s in res.shanks if s.status == "failed"]
    assert len(failed) == 1 and failed[0].lines == (rows[1].line,)
    assert "ephys shank 7" in failed[0].reason and f"line {rows[1].line}" in res.reason
    assert {s.suffix for s in res.shanks if s.status == "ok"} == {"_shank1", "_shank3", "_shank4"}
