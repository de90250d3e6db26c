"""The CCF template and labels in all 6 index orders give byte-identical outputs (issue 10).

One small synthetic mouse; its CCF references are rewritten in every axis-aligned permutation of
PIR (NIfTI template, NRRD labels in LPS or RAS space), with a SimpleITK check that each file is
that layout. The stored-PIR run is the baseline (its values are checked against independent
truth in test_histology.py); here every other order must reproduce it byte for byte, and the
warped labels must agree with ANTs reading the reordered file by itself.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import ants
import nrrd
import numpy as np
import pytest
import SimpleITK as sitk

from alignprep import outputs
from alignprep.errors import InputError
from alignprep.inputs.manifest import read_manifest
from alignprep.inputs.references import read_ccf_volume
from alignprep.space.frames import ImageHeader, direction_from_code
from alignprep.stages.context import MouseContext
from alignprep.stages.histology import run_histology
from alignprep.stages.validate import validate
from alignprep.synthetic import SyntheticSpec, TrackSpec
from alignprep.synthetic.volumes import ccf_in_order, write_raw_allen_nrrd, write_volume_file

from ..conftest import CODE_DIR
from ..datasets import cached_dataset
from ..digests import tree_digests
from ..plan_runner import run_tracks
from .conftest import stage_config

ORDERS = ["".join(p) for p in itertools.permutations("PIR")]
SPEC = SyntheticSpec(
    brain_semi_axes_um=(600.0, 500.0, 400.0),
    ccf_shape_apdvml=(100, 70, 280),
    brain_center_um=(5739.0, 1200.0, 800.0),
    fov_margin_mm=0.3,
    tracks=(
        TrackSpec("T", "T_ann", "ProbeA", None, None, (5600, 1200), (0, 0, 1), 600),
        TrackSpec("U", "U_ann", "ProbeB", None, None, (5900, 1100), (0.1, 0, 1), 500),
    ),
)


def _digests(root: Path) -> dict[str, str]:
    return tree_digests(root)


def _run_stages(data_root: Path, results: Path, references: dict[str, str]) -> dict[str, str]:
    """Histology and probe stages with these reference files; digests of every output."""
    config = stage_config(data_root, results, references=references)
    manifest = read_manifest(data_root / "manifest.csv")
    ctx = MouseContext.prepare(config, manifest)
    hist = run_histology(ctx)
    assert hist.status == "ok", hist.reason
    tracks = list(run_tracks(config, manifest).values())
    assert [t.status for t in tracks] == ["ok", "ok"], [t.reason for t in tracks]
    return _digests(results)


@pytest.fixture(scope="module")
def mouse(tmp_path_factory):
    """The dataset, its stored-PIR references and the baseline run's output digests."""
    root = tmp_path_factory.mktemp("orders")
    ds = cached_dataset(root / "ds", SPEC)
    config = stage_config(ds.data_root, root / "base")
    refs = config.references
    assert (
        sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
            sitk.ReadImage(str(refs.ccf_template)).GetDirection()
        )
        == "PIR"
    )
    baseline = _run_stages(ds.data_root, root / "base", {})
    assert len(baseline) >= 15  # 7 histology NRRDs + sidecar + 2 tracks x (6 frames + 2 picks)
    template, _ = read_ccf_volume(refs.ccf_template, "CCF template")
    labels, _ = read_ccf_volume(refs.ccf_labels_compact, "CCF compact labels")
    return ds, root, baseline, np.asarray(template), np.asarray(labels)


def _write_order(mouse, code: str, folder: Path) -> dict[str, str]:
    """The mouse's template (NIfTI) and labels (NRRD) stored with index axes along ``code``."""
    _, _, _, template, labels = mouse
    space = "right-anterior-superior" if ORDERS.index(code) % 2 else "left-posterior-superior"
    stored_t, header = ccf_in_order(template, code)
    stored_l, _ = ccf_in_order(labels, code)
    t_path = write_volume_file(folder / "template.nii.gz", stored_t, header)
    l_path = write_volume_file(folder / "labels.nrrd", stored_l, header, nrrd_space=space)
    for path, truth in ((t_path, template), (l_path, labels)):  # the file is that layout
        img = sitk.ReadImage(str(path))
        assert (
            sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(img.GetDirection())
            == code
        )
        back = sitk.GetArrayFromImage(sitk.DICOMOrient(img, "PIR")).transpose(2, 1, 0)
        np.testing.assert_array_equal(back, truth)
    return {"ccf_template": str(t_path), "ccf_labels_compact": str(l_path)}


@pytest.mark.parametrize("code", ORDERS)
def test_every_index_order_gives_byte_identical_outputs(mouse, tmp_path, code):
    ds, _, baseline, _, _ = mouse
    references = _write_order(mouse, code, tmp_path / "refs")
    got = _run_stages(ds.data_root, tmp_path / "out", references)
    assert got == baseline


def test_rpi_labels_match_ants_reading_the_stored_file(mouse, tmp_path):
    """Values: ANTs warps the RPI-stored labels itself (its own header reading); ours agree."""
    ds, _, _, _, _ = mouse
    references = _write_order(mouse, "RPI", tmp_path / "refs")
    config = stage_config(ds.data_root, tmp_path / "out", references=references)
    ctx = MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))
    assert run_histology(ctx).status == "ok"
    paths = outputs.histology_paths(config.results_root, SPEC.mouse_id)
    fixed = ants.image_read(str(paths["registration_pipeline"]), pixeltype="float")
    moving = ants.image_read(references["ccf_labels_compact"], pixeltype="float")
    warped = ants.apply_transforms(
        fixed,
        moving,
        [str(p) for p in ctx.to_ccf.files],
        interpolator="genericLabel",
        whichtoinvert=list(ctx.to_ccf.invert),
    )
    lut = np.load(config.references.ccf_labels_unique_values)["unique_labels"]
    independent = lut[np.rint(warped.numpy()).astype(int)]
    ours, _ = nrrd.read(str(paths["labels"]))
    assert np.mean(ours == independent) >= 0.999
    assert len(np.unique(ours)) > 10


def _flipped_template(mouse, folder: Path) -> Path:
    """The template with its ML axis claimed reversed (a mirrored atlas)."""
    _, _, _, template, _ = mouse
    stored, header = ccf_in_order(template, "PIR")
    direction = header.direction.copy()
    direction[:, 2] *= -1
    mirrored = ImageHeader(header.origin, header.spacing, direction, header.size)
    return write_volume_file(folder / "mirrored.nii.gz", stored, mirrored)


def test_mirrored_template_stops_the_mouse(mouse, tmp_path):
    ds, _, _, _, _ = mouse
    path = _flipped_template(mouse, tmp_path)
    config = stage_config(ds.data_root, tmp_path / "out", references={"ccf_template": str(path)})
    with pytest.raises(InputError) as err:
        MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))
    message = str(err.value)
    assert str(path) in message and "index axis 2 points L" in message
    assert "expected index axes toward P (AP), I (DV) and R (ML) in any order" in message


def test_raw_allen_labels_fail_histology_and_write_nothing(mouse, tmp_path):
    ds, _, _, _, labels = mouse
    path = write_raw_allen_nrrd(tmp_path / "annotation_25.nrrd", labels.astype(np.uint16))
    config = stage_config(
        ds.data_root, tmp_path / "out", references={"ccf_labels_compact": str(path)}
    )
    ctx = MouseContext.prepare(config, read_manifest(ds.data_root / "manifest.csv"))
    with pytest.raises(InputError, match="raw Allen CCF NRRD"):
        _ = ctx.labels  # the validation check of the labels
    result = run_histology(ctx)
    assert result.status == "failed"
    assert str(path) in result.reason and "raw Allen CCF NRRD" in result.reason
    paths = outputs.histology_paths(config.results_root, ctx.mouse_id)
    left = {p for p in (tmp_path / "out").rglob("*") if p.is_file()}
    assert left == set(result.files)  # the channels part's and the QC's, complete
    assert paths["ccf_template"] not in left and paths["labels"] not in left  # the atlas part's


# ----------------------------------------------------------------------------- whole run


def _cli(data_root: Path, results: Path, references: dict[str, str]) -> dict[str, str]:
    params = {
        "references": references,
        "checks": {"min_free_disk_gb": 0.1, "warn_free_disk_gb": 0.1, "min_available_ram_gb": 0.5},
    }
    env = {k: v for k, v in os.environ.items() if k != "CO_CPUS"}
    env["ALIGNPREP_PYTHON"] = sys.executable
    proc = subprocess.run(
        [
            str(CODE_DIR / "run"),
            "--data-root",
            str(data_root),
            "--results-root",
            str(results),
            "--scratch-root",
            str(results.parent / f"{results.name}_scratch"),
            "--skip-ephys",
            "--n-jobs",
            "1",
            "--params",
            json.dumps(params),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _digests(results)


def test_two_runs_with_two_stored_orders_are_byte_identical(mouse, tmp_path):
    ds, _, _, _, _ = mouse
    data = tmp_path / "data"  # inputs must be inside the data root
    shutil.copytree(ds.data_root, data)
    pir = _cli(data, tmp_path / "pir", {})
    rpi = _cli(data, tmp_path / "rpi", _write_order(mouse, "RPI", data / "ccf_stored_rpi"))
    differ = sorted(k for k in pir if pir[k] != rpi.get(k))
    assert set(pir) == set(rpi)
    assert len(pir) > 15
    assert differ == [], differ


# ----------------------------------------------------------------------------- LCA template


def _lca_checks(mouse, tmp_path: Path, spacing_mm: float, code: str) -> list:
    ds, _, _, _, _ = mouse
    header = ImageHeader(
        [1.0, -2.0, 0.5], np.full(3, spacing_mm), direction_from_code(code), (6, 7, 8)
    )
    data = tmp_path / "data"  # inputs must be inside the data root
    shutil.copytree(ds.data_root, data)
    path = write_volume_file(data / "lca.nii.gz", np.ones((6, 7, 8), np.uint16), header)
    config = stage_config(
        data,
        tmp_path / "out",
        references={"lca_template": str(path)},
        checks={"min_free_disk_gb": 0.1, "warn_free_disk_gb": 0.1, "min_available_ram_gb": 0.5},
        skip_ephys=True,
    )
    return [c for c in validate(config).checks if c.name == "LCA template"], path


def test_validation_checks_the_lca_template_header(mouse, tmp_path):
    (check,), _ = _lca_checks(mouse, tmp_path / "ok", 0.025, "IRP")  # any axis-aligned order
    assert check.status == "ok"
    (check,), path = _lca_checks(mouse, tmp_path / "bad", 0.010, "RAS")
    assert check.status == "error" and check.scope == "mouse"
    assert str(path) in check.message and "spacing [10.0, 10.0, 10.0] um" in check.message
