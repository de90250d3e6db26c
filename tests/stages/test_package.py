"""datapackage.json and processing.json on a real results tree (probe stage on synthetic data).

Independent truth: the schema file read from disk and jsonschema, sha256 of the files with
hashlib, references resolved by hand, aind-data-schema re-validation, module ``__version__``s and
``git rev-parse``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from jsonschema import Draft202012Validator

import alignprep
from alignprep import outputs
from alignprep.errors import InputError
from alignprep.inputs.manifest import read_manifest
from alignprep.space.transforms import Registration
from alignprep.stages.context import MouseContext
from alignprep.stages.datapackage import PackageError, load_datapackage, schema_errors
from alignprep.stages.histology import HistologyResult
from alignprep.stages.package import write_datapackage
from alignprep.stages.probes import TrackResult
from alignprep.stages.provenance import StageRun, build_processing, code_commit, write_processing
from alignprep.synthetic import SyntheticSpec

from ..plan_runner import run_track_list
from .conftest import stage_config

MOUSE = SyntheticSpec().mouse_id
SCHEMAS = Path(alignprep.__file__).parent / "schemas"  # read from disk, not through the loader
SCHEMA_FILE = SCHEMAS / "datapackage-4.4.0.schema.json"
QC_SCHEMA_FILE = SCHEMAS / "datapackage-4.3.0.schema.json"
PREVIOUS_SCHEMA_FILE = SCHEMAS / "datapackage-4.2.0.schema.json"
OLD_SCHEMA_FILE = SCHEMAS / "datapackage-4.1.0.schema.json"
REG_CHANNEL, OTHER_CHANNEL = "Ex_639_Em_667", "Ex_488_Em_525"
SHANK_PITCH_UM = 250.0


def _fake_alf(folder: Path, n_shanks: int, contact_id: bool) -> None:
    """An NP2-like channel table: 2 x-columns per shank, shanks 250 um apart."""
    folder.mkdir(parents=True, exist_ok=True)
    per = 8
    x = np.concatenate(
        [s * SHANK_PITCH_UM + np.tile([0.0, 32.0], per // 2) for s in range(n_shanks)]
    )
    y = np.tile(np.repeat(np.arange(per // 2) * 15.0, 2), n_shanks)
    np.save(folder / "channels.localCoordinates.npy", np.c_[x, y])
    np.save(folder / "channels.rawInd.npy", np.arange(len(x)))
    np.save(folder / "channels.shankInd.npy", np.repeat(np.arange(n_shanks), per))
    if contact_id:
        np.save(folder / "channels.contactId.npy", np.arange(len(x)))
    np.save(folder / "_iblqc_ephysTimeRmsAP.rms.npy", np.zeros((2, len(x)), np.float32))


def _fake_histology(root: Path, write_qc: bool = True) -> HistologyResult:
    """Every histology file at its real path (content irrelevant to the package)."""
    paths = list(outputs.histology_paths(root, MOUSE).values())
    paths.append(outputs.channel_path(root, MOUSE, OTHER_CHANNEL))
    if write_qc:
        paths += [outputs.ccf_space_path(root, MOUSE, c) for c in (OTHER_CHANNEL, REG_CHANNEL)]
    for k, path in enumerate(paths):
        outputs.write_bytes_atomic(path, f"volume {k}\n".encode())
    return HistologyResult(files=paths)


@dataclasses.dataclass
class Tree:
    data: Path
    ctx: MouseContext
    tracks: list
    histology: HistologyResult
    ephys: dict

    @property
    def root(self) -> Path:
        return self.ctx.config.results_root

    @property
    def mouse_dir(self) -> Path:
        return outputs.mouse_dir(self.root, MOUSE)


@pytest.fixture(scope="module")
def tree(warped, tmp_path_factory) -> Tree:
    """ProbeA (1 shank) and ProbeB (4 shanks); ProbeB's shank-1 row reuses track id ProbeB_a
    with a missing annotation file, so it fails while ProbeB_a shank 0 succeeds."""
    base = tmp_path_factory.mktemp("package")
    data = base / "data"
    shutil.copytree(warped.data_root, data)
    with (data / "manifest.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        if row["histology_track_id"] == "ProbeB_b":
            row["histology_track_id"], row["probe_file"] = "ProbeB_a", "ProbeB_missing"
    with (data / "manifest.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    config = stage_config(data, base / "results")
    manifest = read_manifest(data / "manifest.csv")
    recording = manifest.rows[0].recording_id
    ephys = {}
    for collection, n, contact in (("ProbeA", 1, False), ("ProbeB", 4, True)):
        folder = outputs.probe_dir(config.results_root, MOUSE, recording, collection)
        _fake_alf(folder, n, contact)
        ephys[(recording, collection)] = folder
    ctx = MouseContext.prepare(config, manifest)
    tracks = [
        TrackResult(o.row, o.status, suffix=o.suffix, files=o.files)
        for o in run_track_list(config, manifest)
    ]
    histology = _fake_histology(config.results_root)
    return Tree(data, ctx, tracks, histology, ephys)


@pytest.fixture(scope="module")
def written(tree):
    return write_datapackage(tree.ctx, tree.tracks, tree.histology, tree.ephys)


def _copy(tree: Tree, dst: Path) -> Tree:
    """The same results tree under another results root."""
    shutil.copytree(tree.root, dst)
    config = tree.ctx.config.model_copy(update={"results_root": dst})
    ctx = dataclasses.replace(tree.ctx, config=config)
    files = [dst / Path(p).relative_to(tree.root) for p in tree.histology.files]
    ephys = {k: dst / Path(v).relative_to(tree.root) for k, v in tree.ephys.items()}
    (outputs.mouse_dir(dst, MOUSE) / "datapackage.json").unlink(missing_ok=True)
    return Tree(tree.data, ctx, tree.tracks, HistologyResult(files=files), ephys)


def _refs(doc, pointer=""):
    """(pointer, ref) of every {"asset", "path"} object, walked independently."""
    if isinstance(doc, dict):
        if set(doc) == {"asset", "path"}:
            yield pointer, doc
        else:
            for k, v in doc.items():
                yield from _refs(v, f"{pointer}/{k}")
    elif isinstance(doc, list):
        for k, v in enumerate(doc):
            yield from _refs(v, f"{pointer}/{k}")


def _resolve(doc, ref, package_dir: Path, data_root: Path) -> Path:
    if ref["asset"] is None:
        return package_dir / ref["path"]
    return data_root / doc["external_assets"][ref["asset"]]["name"] / ref["path"]


def _sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _on_disk(tree: Tree) -> dict:
    return json.loads((tree.mouse_dir / "datapackage.json").read_text())


# --- the document ------------------------------------------------------------------------------


def test_written_package_validates_against_the_shipped_schema(tree, written):
    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    assert "4.4.0" in schema["$id"] and schema["$id"].endswith("datapackage.schema.json")
    doc = _on_disk(tree)
    assert doc == written.document
    assert sorted(Draft202012Validator(schema).iter_errors(doc), key=str) == []
    assert doc["schema_version"] == "4.4.0" and doc["mouse_id"] == MOUSE
    assert doc["light_sheet"] is True
    assert doc["platform"] == "local"  # data_root is a tmp folder, not /data


def test_the_4_4_layout_is_4_3_plus_light_sheet(tree, written, tmp_path):
    """Backward compatible: a light-sheet document without ``light_sheet`` is a valid 4.3.0
    one and loads; a document without light-sheet data must say so and have no transforms,
    histology or external assets."""
    doc = _on_disk(tree)
    previous = {k: v for k, v in json.loads(json.dumps(doc)).items() if k != "light_sheet"}
    previous["schema_version"] = "4.3.0"
    qc_schema = json.loads(QC_SCHEMA_FILE.read_text())
    assert sorted(Draft202012Validator(qc_schema).iter_errors(previous), key=str) == []
    path = tmp_path / "datapackage.json"
    path.write_text(json.dumps(previous))
    assert load_datapackage(path, tree.data).document["schema_version"] == "4.3.0"
    ccf_only = {**json.loads(json.dumps(doc)), "light_sheet": False}
    assert schema_errors(ccf_only)  # transforms, histology and assets present: refused
    ccf_only |= {"transforms": None, "histology": None, "external_assets": {}}
    for collections in ccf_only["probes"].values():
        for probe in collections.values():
            for pick in probe["xyz_picks"]:
                pick["image_space"] = None
    assert schema_errors(ccf_only) == []
    light = {**json.loads(json.dumps(doc)), "transforms": None}
    assert schema_errors(light)  # light_sheet true needs its transforms


def test_the_4_3_layout_is_4_2_plus_qc_only(tree, written, tmp_path):
    """Backward compatible: without qc the document is a valid 4.2.0 one, a 4.2.0 document
    still loads, and the schemas differ by the optional qc entry only."""
    doc = _on_disk(tree)
    assert "qc" in doc  # null when no QC was drawn
    previous = {
        k: v for k, v in json.loads(json.dumps(doc)).items() if k not in ("qc", "light_sheet")
    }
    previous["schema_version"] = "4.2.0"
    previous_schema = json.loads(PREVIOUS_SCHEMA_FILE.read_text())
    assert sorted(Draft202012Validator(previous_schema).iter_errors(previous), key=str) == []
    new_schema = json.loads(QC_SCHEMA_FILE.read_text())
    assert "qc" not in new_schema["required"]
    for key in ("$schema", "required", "additionalProperties", "$defs"):
        assert new_schema[key] == previous_schema[key]
    props = {k: v for k, v in new_schema["properties"].items() if k != "qc"}
    props["schema_version"] = previous_schema["properties"]["schema_version"]
    assert props == previous_schema["properties"]
    path = tmp_path / "datapackage.json"
    path.write_text(json.dumps(previous))
    assert load_datapackage(path, tree.data).document["schema_version"] == "4.2.0"


def test_the_4_2_layout_is_4_1_plus_channel_regions_only(tree, written, tmp_path):
    """Backward compatible: without channel_regions (and qc) the document is a valid 4.1.0 one,
    and a 4.1.0 document still loads."""
    doc = _on_disk(tree)
    old = {k: v for k, v in json.loads(json.dumps(doc)).items() if k not in ("qc", "light_sheet")}
    old["schema_version"] = "4.1.0"
    for collections in old["probes"].values():
        for probe in collections.values():
            assert "channel_regions" in probe
            del probe["channel_regions"]
    old_schema = json.loads(OLD_SCHEMA_FILE.read_text())
    assert sorted(Draft202012Validator(old_schema).iter_errors(old), key=str) == []
    new_schema = json.loads(PREVIOUS_SCHEMA_FILE.read_text())
    for key in ("$schema", "required", "additionalProperties"):
        assert new_schema[key] == old_schema[key]
    new_probe = {**new_schema["$defs"]["probe"]}
    new_probe["properties"] = {
        k: v for k, v in new_probe["properties"].items() if k != "channel_regions"
    }
    assert new_probe == old_schema["$defs"]["probe"]
    path = tmp_path / "datapackage.json"
    path.write_text(json.dumps(old))
    assert load_datapackage(path, tree.data).document["schema_version"] == "4.1.0"


def test_every_reference_is_relative_and_resolves(tree, written):
    doc = _on_disk(tree)
    refs = list(_refs(doc))
    assert len(refs) > 20
    for pointer, ref in refs:
        assert not Path(ref["path"]).is_absolute() and ".." not in Path(ref["path"]).parts
        path = _resolve(doc, ref, tree.mouse_dir, tree.data)
        if pointer.endswith("/ephys"):
            assert path.is_dir(), pointer
        else:
            assert path.is_file(), pointer
    local = {ref["path"] for _, ref in refs if ref["asset"] is None}
    recording = tree.tracks[0].row.recording_id
    assert {
        "image_space_histology/histology_registration.nrrd",
        "image_space_histology/histology_registration_pipeline.json",
        f"image_space_histology/ccf_in_{MOUSE}.nrrd",
        f"image_space_histology/labels_in_{MOUSE}.nrrd",
        f"image_space_histology/{OTHER_CHANNEL}.nrrd",
        f"ccf_space_histology/histology_{OTHER_CHANNEL}.nrrd",
        f"ccf_space_histology/histology_{REG_CHANNEL}.nrrd",
        f"{recording}/ProbeA/xyz_picks.json",
        f"{recording}/ProbeA/xyz_picks_image_space.json",
        f"{recording}/ProbeB/xyz_picks_shank4.json",
        f"{recording}/ProbeB/channels.localCoordinates.npy",
    } <= local
    # the pipeline nrrd has no 4.x key; nothing else is referenced from histology
    assert "image_space_histology/histology_registration_pipeline.nrrd" not in local


def test_external_references_name_the_asset_and_carry_sha256(tree, written):
    doc = _on_disk(tree)
    assets, transforms = doc["external_assets"], doc["transforms"]
    assert set(assets) == {"smartspim", "spim_template_to_ccf"}
    assert assets["smartspim"]["role"] == "smartspim_registration"
    assert assets["smartspim"]["name"] == tree.ctx.asset.path.name
    assert assets["spim_template_to_ccf"] == {
        **assets["spim_template_to_ccf"],
        "role": "template_to_ccf",
        "name": "spim_template_to_ccf",
        "uri": None,
    }
    reg = f"image_atlas_alignment/{REG_CHANNEL}/ls_to_template_SyN_"
    assert transforms == {
        "image_to_template_affine": {"asset": "smartspim", "path": f"{reg}0GenericAffine.mat"},
        "image_to_template_warp": {"asset": "smartspim", "path": f"{reg}1InverseWarp.nii.gz"},
        "template_to_ccf_affine": {
            "asset": "spim_template_to_ccf",
            "path": "syn_0GenericAffine.mat",
        },
        "template_to_ccf_warp": {
            "asset": "spim_template_to_ccf",
            "path": "syn_1InverseWarp.nii.gz",
        },
    }
    used = [tree.ctx.asset.ls_to_template.affine, tree.ctx.asset.ls_to_template.inverse_warp]
    used += [tree.ctx.template_to_ccf.registration.affine]
    used += [tree.ctx.template_to_ccf.registration.inverse_warp]
    for ref, want in zip(transforms.values(), used, strict=True):
        path = _resolve(doc, ref, tree.mouse_dir, tree.data)
        assert path.samefile(want)
        asset = assets[ref["asset"]]
        assert asset["provenance"]["files"][ref["path"]] == _sha(path)
    for asset in assets.values():
        files = asset["provenance"]["files"]
        listing = "".join(f"{d[7:]}  {p}\n" for p, d in sorted(files.items()))
        assert asset["checksum"] == "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


def test_probe_groups_and_a_failed_shank_sharing_a_track_keeps_the_good_one(tree, written):
    by_row = {(t.row.histology_track_id, t.row.histology_shank): t for t in tree.tracks}
    assert by_row[("ProbeB_a", 0)].status == "ok"
    assert by_row[("ProbeB_a", 1)].status == "failed"  # same track id, another shank
    doc = _on_disk(tree)
    recording = tree.tracks[0].row.recording_id
    probes = doc["probes"][recording]
    assert set(probes) == {"ProbeA", "ProbeB"}
    b = probes["ProbeB"]
    assert b["num_shanks"] == 4 and b["ephys_collection"] == "ProbeB"
    assert b["logical_probe"] == "ProbeB"
    picks = [(p["histology_track_id"], p["histology_shank"], p["shank"]) for p in b["xyz_picks"]]
    assert picks == [("ProbeB_a", 0, 1), ("ProbeB_c", 2, 3), ("ProbeB_d", 3, 4)]
    first = b["xyz_picks"][0]
    assert first["ccf"]["path"] == f"{recording}/ProbeB/xyz_picks_shank1.json"
    assert first["image_space"]["path"] == f"{recording}/ProbeB/xyz_picks_shank1_image_space.json"
    assert b["ephys"] == {"asset": None, "path": f"{recording}/ProbeB"}
    assert b["channel_table"]["contact_id"]["path"].endswith("channels.contactId.npy")
    a = probes["ProbeA"]
    assert a["num_shanks"] == 1 and a["channel_table"]["contact_id"] is None
    assert [p["shank"] for p in a["xyz_picks"]] == [1]
    assert a["xyz_picks"][0]["ephys_shank"] is None
    # the picks referenced are the probe stage's files, byte for byte
    track = by_row[("ProbeB_a", 0)]
    assert (tree.mouse_dir / first["ccf"]["path"]) in track.files


def test_identical_inputs_give_identical_bytes(tree, written, tmp_path):
    first = (tree.mouse_dir / "datapackage.json").read_bytes()
    again = write_datapackage(tree.ctx, tree.tracks, tree.histology, tree.ephys)
    assert again.path.read_bytes() == first
    other = _copy(tree, tmp_path / "elsewhere")  # another results root: relative paths only
    moved = write_datapackage(other.ctx, other.tracks, other.histology, other.ephys)
    assert moved.path.read_bytes() == first
    assert not re.search(rb"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", first)  # no timestamps


def test_missing_referenced_file_writes_nothing(tree, written, tmp_path):
    other = _copy(tree, tmp_path / "broken")
    labels = outputs.histology_paths(other.root, MOUSE)["labels"]
    labels.unlink()
    with pytest.raises(PackageError) as err:
        write_datapackage(other.ctx, other.tracks, other.histology, other.ephys)
    assert str(labels) in str(err.value) and err.value.missing == (labels,)
    assert not (other.mouse_dir / "datapackage.json").exists()
    assert not list(other.mouse_dir.glob(".datapackage.json.*"))


def test_failed_histology_writes_nothing(tree, written, tmp_path):
    other = _copy(tree, tmp_path / "nohist")
    failed = HistologyResult(status="failed", reason="warp exploded")
    with pytest.raises(PackageError, match="warp exploded"):
        write_datapackage(other.ctx, other.tracks, failed, other.ephys)
    assert not (other.mouse_dir / "datapackage.json").exists()


def test_ephys_skipped_gives_null_ephys_and_channel_table(tree, written, tmp_path):
    other = _copy(tree, tmp_path / "noephys")
    res = write_datapackage(other.ctx, other.tracks, other.histology, None)
    probes = [p for c in res.document["probes"].values() for p in c.values()]
    assert len(probes) == 2
    assert all(p["ephys"] is None and p["channel_table"] is None for p in probes)
    assert schema_errors(json.loads(res.path.read_text())) == []


def test_probe_without_channel_table_is_dropped_with_a_warning(tree, written, tmp_path):
    other = _copy(tree, tmp_path / "nochannels")
    recording = tree.tracks[0].row.recording_id
    (other.ephys[(recording, "ProbeA")] / "channels.localCoordinates.npy").unlink()
    res = write_datapackage(other.ctx, other.tracks, other.histology, other.ephys)
    assert set(res.document["probes"][recording]) == {"ProbeB"}
    assert "channels.localCoordinates.npy" in res.dropped[(recording, "ProbeA")]
    assert any("ProbeA" in w for w in res.warnings)
    ephys = {**other.ephys, (recording, "ProbeB"): None}  # extraction failed
    res = write_datapackage(other.ctx, other.tracks, other.histology, ephys)
    assert res.document["probes"] == {}
    assert set(res.dropped) == {(recording, "ProbeA"), (recording, "ProbeB")}


def test_ccf_space_is_null_without_qc_volumes(tree, written, tmp_path):
    other = _copy(tree, tmp_path / "noqc")
    histology = other.ctx.config.histology.model_copy(update={"write_ccf_space": False})
    config = other.ctx.config.model_copy(update={"histology": histology})
    ctx = dataclasses.replace(other.ctx, config=config)
    res = write_datapackage(ctx, other.tracks, other.histology, other.ephys)
    assert res.document["histology"]["ccf_space"] is None  # stale QC files are not referenced
    for channel in (OTHER_CHANNEL, REG_CHANNEL):  # QC skipped (no 1Warp): no files
        outputs.ccf_space_path(other.root, MOUSE, channel).unlink()
    res = write_datapackage(other.ctx, other.tracks, HistologyResult(), other.ephys)
    assert res.document["histology"]["ccf_space"] is None
    assert schema_errors(res.document) == []


def test_override_assets_by_name_and_path_inside(tree, written, tmp_path):
    other = _copy(tree, tmp_path / "override")
    data = tmp_path / "data"
    shutil.copytree(tree.data, data, symlinks=True)
    reg_dir = data / "registration_asset_x" / REG_CHANNEL
    t2c_dir = tmp_path / "outside" / "t2c_asset"  # not under data_root: resolved by uri
    src = tree.ctx.asset.ls_to_template
    reg_dir.mkdir(parents=True)
    for f in (src.affine, src.inverse_warp):
        shutil.copy(f, reg_dir / f.name)
    t2c_dir.mkdir(parents=True)
    for f, name in zip(
        (
            tree.ctx.template_to_ccf.registration.affine,
            tree.ctx.template_to_ccf.registration.inverse_warp,
        ),
        ("template_to_ccf_0GenericAffine.mat", "template_to_ccf_1InverseWarp.nii.gz"),
        strict=True,
    ):
        shutil.copy(f, t2c_dir / name)
    config = other.ctx.config.model_copy(
        update={
            "data_root": data,
            "references": other.ctx.config.references.model_copy(
                update={"template_to_ccf_dir": data / "spim_template_to_ccf"}
            ),
        }
    )
    asset = dataclasses.replace(
        tree.ctx.asset,
        path=data / tree.ctx.asset.path.name,
        registration_dir=reg_dir,
        ls_to_template=Registration.from_prefix(reg_dir / "ls_to_template_SyN_"),
    )
    t2c = dataclasses.replace(
        tree.ctx.template_to_ccf,
        registration=Registration.from_prefix(t2c_dir / "template_to_ccf_"),
        directory=t2c_dir,
        is_override=True,
    )
    ctx = dataclasses.replace(other.ctx, config=config, asset=asset, template_to_ccf=t2c)
    res = write_datapackage(ctx, other.tracks, other.histology, other.ephys)
    doc = res.document
    assets = doc["external_assets"]
    assert set(assets) == {"smartspim", "spim_template_to_ccf", "registration", "template_to_ccf"}
    assert assets["registration"]["name"] == "registration_asset_x"
    assert assets["registration"]["role"] == "registration_override"
    assert doc["transforms"]["image_to_template_warp"] == {
        "asset": "registration",
        "path": f"{REG_CHANNEL}/ls_to_template_SyN_1InverseWarp.nii.gz",
    }
    assert assets["template_to_ccf"]["uri"] == t2c_dir.as_uri()
    assert doc["transforms"]["template_to_ccf_affine"] == {
        "asset": "template_to_ccf",
        "path": "template_to_ccf_0GenericAffine.mat",
    }
    # the Allen GUI still loads spim_template_to_ccf/syn_*: recorded with checksums
    syn = assets["spim_template_to_ccf"]["provenance"]["files"]
    assert syn["syn_1InverseWarp.nii.gz"] == _sha(
        data / "spim_template_to_ccf/syn_1InverseWarp.nii.gz"
    )
    assert assets["smartspim"]["provenance"]["files"] == {}
    pkg = load_datapackage(res.path, data_root=data)
    assert pkg.missing() == []
    warp = pkg.resolve(doc["transforms"]["template_to_ccf_warp"])
    assert warp == t2c_dir / "template_to_ccf_1InverseWarp.nii.gz"


# --- reading back and rejecting ------------------------------------------------------------------


def test_load_datapackage_round_trip(tree, written):
    pkg = load_datapackage(tree.mouse_dir, data_root=tree.data)
    assert pkg.document == _on_disk(tree)
    assert pkg.package_dir == tree.mouse_dir
    assert pkg.missing() == []
    refs = pkg.references()
    assert refs == {
        p: _resolve(pkg.document, r, tree.mouse_dir, tree.data) for p, r in _refs(pkg.document)
    }
    affine = pkg.resolve(pkg.document["transforms"]["image_to_template_affine"])
    assert affine.samefile(tree.ctx.asset.ls_to_template.affine)
    with pytest.raises(PackageError, match="data_root"):
        load_datapackage(tree.mouse_dir).resolve(pkg.document["transforms"]["template_to_ccf_warp"])


def _mutations():
    def drop_mouse(d):
        del d["mouse_id"]

    def version(d):
        d["schema_version"] = "4.0.0"

    def extra_top(d):
        d["created"] = "2025-01-01"

    def extra_in_ref(d):
        d["transforms"]["image_to_template_affine"]["sha"] = "x"

    def absolute_path(d):
        d["histology"]["image_space"]["labels"]["path"] = "/results/labels.nrrd"

    def parent_path(d):
        d["histology"]["image_space"]["labels"]["path"] = "../labels.nrrd"

    def half_ephys(d):
        probe = next(iter(next(iter(d["probes"].values())).values()))
        probe["ephys"] = None

    def unknown_asset(d):
        d["transforms"]["template_to_ccf_affine"]["asset"] = "registration"

    def local_transform(d):
        d["transforms"]["template_to_ccf_affine"]["asset"] = None

    def bad_checksum(d):
        d["external_assets"]["smartspim"]["checksum"] = "md5:abc"

    def no_picks(d):
        probe = next(iter(next(iter(d["probes"].values())).values()))
        probe["xyz_picks"] = []

    return [
        drop_mouse,
        version,
        extra_top,
        extra_in_ref,
        absolute_path,
        parent_path,
        half_ephys,
        unknown_asset,
        local_transform,
        bad_checksum,
        no_picks,
    ]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_malformed_packages_are_rejected(tree, written, tmp_path, mutate):
    doc = _on_disk(tree)
    mutate(doc)
    assert schema_errors(doc)
    path = tmp_path / "datapackage.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=re.escape("datapackage-4.4.0")) as err:
        load_datapackage(path)
    assert str(path) in str(err.value)
    if mutate.__name__ != "unknown_asset":  # cross-field: only the loader sees it
        schema = json.loads(SCHEMA_FILE.read_text())
        assert not Draft202012Validator(schema).is_valid(doc)


# --- provenance ----------------------------------------------------------------------------------


def _runs() -> list[StageRun]:
    t0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=-8)))
    s = timedelta(seconds=1)
    return [
        StageRun("tracks", t0, t0 + 3 * s),
        StageRun("histology", t0 + s, t0 + 9 * s, outputs={"level": 4}),
        StageRun("ephys", t0 + 2 * s, t0 + 5 * s, status="skipped", notes="skip_ephys"),
        StageRun("packaging", t0 + 10 * s, t0 + 11 * s),
    ]


def test_processing_json_validates_and_names_real_versions(tree, written):
    import aind_ephys_ibl_gui_conversion
    import ants
    import iblatlas
    import nibabel
    import nrrd
    import numba
    import scipy
    import spikeinterface
    import zarr
    from aind_data_schema.core.processing import Processing

    path = write_processing(tree.ctx.config, MOUSE, _runs())
    assert path == tree.mouse_dir / "processing.json"
    proc = Processing.model_validate_json(path.read_text())
    names = [p.name for p in proc.data_processes]
    assert names == [
        "alignprep probe tracks",
        "alignprep histology",
        "alignprep ephys",
        "alignprep packaging",
    ]
    assert [p.process_type for p in proc.data_processes] == [
        "Other",
        "Image atlas alignment",
        "Ephys postprocessing",
        "Other",
    ]
    assert proc.dependency_graph["alignprep packaging"] == sorted(names[:3])
    truth = {
        "antspyx": ants.__version__,
        "numba": numba.__version__,
        "scipy": scipy.__version__,
        "iblatlas": iblatlas.__version__,
        "spikeinterface": spikeinterface.__version__,
        "aind-ephys-ibl-gui-conversion": aind_ephys_ibl_gui_conversion.__version__,
        "numpy": np.__version__,
        "nibabel": nibabel.__version__,
        "pynrrd": nrrd.__version__,
        "zarr": zarr.__version__,
        "matplotlib": matplotlib.__version__,
    }
    git = subprocess.run(
        ["git", "-C", str(Path(alignprep.__file__).parent), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
    )
    for p in proc.data_processes:
        assert p.start_date_time.tzinfo is not None and p.end_date_time > p.start_date_time
        assert p.code.name == "alignprep" and p.code.version == alignprep.__version__
        assert p.code.commit_hash == git.stdout.strip()
        assert p.code.parameters.model_dump() == json.loads(
            json.dumps(tree.ctx.config.to_json_dict())
        )
        assert p.output_parameters.model_dump()["software_versions"] == truth
    hist = proc.data_processes[1]
    assert hist.code.core_dependency.name == "numba"
    assert hist.code.core_dependency.version == numba.__version__
    assert hist.output_parameters.model_dump()["level"] == 4
    assert proc.data_processes[2].output_parameters.model_dump()["status"] == "skipped"
    assert proc.data_processes[0].start_date_time == _runs()[0].start


def test_commit_fallbacks_never_fail(tmp_path):
    missing_git = str(tmp_path / "no-such-git")
    env = {"ALIGNPREP_COMMIT": "0123abcd"}
    assert code_commit(git=missing_git, environ=env) == "0123abcd"
    assert code_commit(git=missing_git, environ={}) == "unknown"
    assert code_commit(code_dir=tmp_path, environ=env) == "0123abcd"  # not a checkout
    proc = build_processing({"data_root": "/data"}, _runs()[:1], commit="unknown")
    assert proc.data_processes[0].code.commit_hash is None
    assert "commit unknown" in proc.notes
    naive = StageRun("tracks", datetime(2025, 1, 1), datetime(2025, 1, 2))
    with pytest.raises(ValueError, match="timezone"):
        build_processing({}, [naive], commit="unknown")
    with pytest.raises(ValueError, match="unknown stage"):
        build_processing({}, [dataclasses.replace(_runs()[0], stage="nope")], commit="x")
