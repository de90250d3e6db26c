"""Transforms are checked before anything is trusted (issue 16): one test per fault family.

Each test breaks a private copy of a small synthetic dataset (with images) and runs the
pre-flight validation: the family must be a fatal mouse-level check whose text names the broken
file, and no track may be computed with the broken transforms. The good dataset must pass with
numbers, and geometry-only data must say what it could not check. ``code/run`` exits 3 on a
broken transform, with ``--validate-only`` and in a full run, and writes no output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from alignprep.inputs import registration_check
from alignprep.inputs.check_cache import CACHE_ENV
from alignprep.inputs.field_store import STORE_DIR
from alignprep.inputs.transform_check import CACHED_NOTE
from alignprep.inputs.transform_files import read_itk_affine
from alignprep.stages.validate import ValidationReport, validate
from alignprep.synthetic import SyntheticDataset, SyntheticSpec, faults

from ..conftest import CODE_DIR
from ..datasets import cached_dataset
from .conftest import stage_config

LS_DIR = Path("image_atlas_alignment") / "Ex_639_Em_667"
CHECKS = {"min_free_disk_gb": 0.1, "warn_free_disk_gb": 0.1, "min_available_ram_gb": 0.5}
LUT = Path("allen_mouse_ccf_annotations_lateralized_compact")
LUT_NPZ = LUT / "ccf_2017_annotation_25_lateralized_unique_vals.npz"
LABELS_NRRD = LUT / "ccf_2017_annotation_25_lateralized_compact.nrrd"


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> tuple[SyntheticDataset, SyntheticDataset]:
    """The dataset to break, and another mouse (seed 1) whose files stand in as foreign ones."""
    root = tmp_path_factory.mktemp("transform_faults")
    return cached_dataset(root / "good", SyntheticSpec()), cached_dataset(
        root / "other", SyntheticSpec(seed=1)
    )


def ls(data: Path, name: str) -> Path:
    """An LS -> template file of the dataset under ``data``."""
    asset = next(data.glob("SmartSPIM_*"))
    return asset / LS_DIR / f"ls_to_template_SyN_{name}"


def t2c(data: Path, name: str) -> Path:
    """A template -> CCF file of the dataset under ``data``."""
    return data / "spim_template_to_ccf" / f"syn_{name}"


def _validate(data: Path, results: Path) -> ValidationReport:
    config = stage_config(data, results, skip_ephys=True, checks=CHECKS)
    report = validate(config)
    assert not [p for p in results.rglob("*") if p.is_file()]  # validation writes nothing
    return report


def _broken(
    datasets, tmp_path: Path, breaker: Callable[[Path, Path], object]
) -> tuple[ValidationReport, Path]:
    data = tmp_path / "data"
    shutil.copytree(datasets[0].data_root, data)
    breaker(data, datasets[1].data_root)
    return _validate(data, tmp_path / "results"), data


def _errors(report: ValidationReport, name: str = "transforms") -> list[str]:
    return [c.message for c in report.checks if c.status == "error" and c.name == name]


def _assert_fatal_naming(report: ValidationReport, *files: Path, says: str, name="transforms"):
    errors = _errors(report, name)
    for f in files:
        hits = [e for e in errors if e.startswith(str(f)) and says in e]
        assert hits, f"no error on {f} saying {says!r}; errors: {errors}"
    assert {c.scope for c in report.fatal} == {"mouse"}
    tracks = [c for c in report.checks if c.scope == "row" and c.name.startswith("track")]
    if name == "transforms":
        assert not tracks  # nothing was computed with the broken transforms


def test_good_dataset_passes_with_numbers(datasets, tmp_path):
    report = _validate(datasets[0].data_root, tmp_path / "results")
    transforms = [c for c in report.checks if c.name == "transforms"]
    assert [c.status for c in transforms] == ["ok", "ok"], [c.message for c in transforms]
    for c in transforms:
        assert "warps read completely" in c.message
        assert "round trip median" in c.message
        assert "images agree" in c.message
    assert not report.has_errors, report.table()
    assert sum(c.name.startswith("track") and c.status == "ok" for c in report.checks) == 5


def test_a_passed_check_is_reused_only_for_the_same_file_contents(datasets, tmp_path, monkeypatch):
    """The verdict cache: a pass is reused for equal bytes (copied, moved), never for others."""
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    data = tmp_path / "data"
    shutil.copytree(datasets[0].data_root, data)

    def transforms(data: Path, results: str) -> list[tuple[str, str]]:
        report = _validate(data, tmp_path / results)
        return [(c.status, c.message) for c in report.checks if c.name == "transforms"]

    first = transforms(data, "r1")
    assert [s for s, _ in first] == ["ok", "ok"] and not any(CACHED_NOTE in m for _, m in first)
    # same bytes in new files (new inodes and times), then in another folder: the pass is reused
    for name in ("1Warp.nii.gz", "1InverseWarp.nii.gz"):
        path = ls(data, name)
        shutil.copyfile(path, path.with_suffix(".tmp"))
        path.with_suffix(".tmp").replace(path)
    assert transforms(data, "r2") == [(s, m + CACHED_NOTE) for s, m in first]
    moved = tmp_path / "moved"
    shutil.copytree(data, moved)
    assert transforms(moved, "r3") == [(s, m + CACHED_NOTE) for s, m in first]
    # a remembered pass still leaves every warp decoded for the run's items (one read each)
    scratch = stage_config(moved, tmp_path / "r3").scratch_root
    assert len(list(moved.rglob("*Warp.nii.gz"))) == 4
    assert len(list((scratch / STORE_DIR).glob("*.f32"))) == 4
    # swapped contents: checked anew, and the swap is found despite the stored pass
    faults.swap(ls(data, "1Warp.nii.gz"), ls(data, "1InverseWarp.nii.gz"))
    third = transforms(data, "r4")
    errors = [m for s, m in third if s == "error"]
    assert errors and all(CACHED_NOTE not in m for _, m in third)
    assert any(m.startswith(str(ls(data, "1Warp.nii.gz"))) and "swap" in m for m in errors)
    stored = list((tmp_path / "cache" / "transform-checks").glob("*.json"))
    assert len(stored) == 2  # the one pass and the digest cache; the failure is not stored


def test_truncated_inverse_warp_and_warp(datasets, tmp_path):
    def breaker(data, _):
        faults.truncate(ls(data, "1InverseWarp.nii.gz"), 0.5)
        faults.truncate(t2c(data, "1Warp.nii.gz"), 0.97)

    report, data = _broken(datasets, tmp_path, breaker)
    files = ls(data, "1InverseWarp.nii.gz"), t2c(data, "1Warp.nii.gz")
    _assert_fatal_naming(report, *files, says="truncated")


def test_swapped_warp_and_inverse_warp_of_each_registration(datasets, tmp_path):
    def breaker(data, _):
        faults.swap(ls(data, "1Warp.nii.gz"), ls(data, "1InverseWarp.nii.gz"))
        faults.swap(t2c(data, "1Warp.nii.gz"), t2c(data, "1InverseWarp.nii.gz"))

    report, data = _broken(datasets, tmp_path, breaker)
    _assert_fatal_naming(report, ls(data, "1Warp.nii.gz"), t2c(data, "1Warp.nii.gz"), says="swap")
    for e in _errors(report):
        assert "1InverseWarp.nii.gz" in e  # both files of the pair are named
        assert "rank correlation" in e  # and what was compared
    assert not [e for e in _errors(report) if "round trip" in e]  # a swapped pair round-trips


def test_without_a_warp_the_inverse_warp_is_still_checked(datasets, tmp_path):
    """The template -> CCF 1Warp may be absent (inputs.md §7): a first-order Warp stands in."""

    def breaker(data, _):
        ls(data, "1Warp.nii.gz").unlink()  # fine, but nothing to round-trip with
        t2c(data, "1Warp.nii.gz").replace(t2c(data, "1InverseWarp.nii.gz"))  # a Warp in its place

    report, data = _broken(datasets, tmp_path, breaker)
    _assert_fatal_naming(report, t2c(data, "1InverseWarp.nii.gz"), says="looks like a Warp")
    assert len(_errors(report)) == 1
    warnings = [
        c.message for c in report.checks if c.name == "transforms" and c.status == "warning"
    ]
    assert any(
        w.startswith(str(ls(data, "1InverseWarp.nii.gz"))) and "round trip is not possible" in w
        for w in warnings
    )
    ok = [c.message for c in report.checks if c.name == "transforms" and c.status == "ok"]
    assert len(ok) == 1 and ok[0].startswith("LS -> LCA template") and "images agree" in ok[0]


def test_warp_on_a_foreign_grid(datasets, tmp_path):
    def breaker(data, _):
        for name in ("1Warp.nii.gz", "1InverseWarp.nii.gz"):
            faults.shift_grid(ls(data, name), (3.0, 0.0, 0.0))

    report, data = _broken(datasets, tmp_path, breaker)
    files = ls(data, "1Warp.nii.gz"), ls(data, "1InverseWarp.nii.gz")
    _assert_fatal_naming(report, *files, says="foreign grid")
    assert any("LCA template" in e for e in _errors(report))  # names the fixed image too


def test_foreign_registration_on_the_same_grid(datasets, tmp_path):
    import nibabel as nib

    def breaker(data, other):
        for name in ("1Warp.nii.gz", "1InverseWarp.nii.gz"):
            shutil.copyfile(t2c(other, name), t2c(data, name))

    report, data = _broken(datasets, tmp_path, breaker)
    ours, theirs = (nib.load(str(t2c(d, "1Warp.nii.gz"))) for d in (datasets[0].data_root, data))
    assert ours.shape == theirs.shape and np.allclose(ours.affine, theirs.affine)  # same grid
    _assert_fatal_naming(report, t2c(data, "1Warp.nii.gz"), says="do not belong")
    assert len(_errors(report)) == 1  # files, grid and round trip are all fine


def test_scalar_image_in_place_of_a_warp(datasets, tmp_path):
    def breaker(data, _):
        template = data / "smartspim_lca_template" / "smartspim_lca_template_25.nii.gz"
        faults.scalar_copy(template, ls(data, "1Warp.nii.gz"))

    report, data = _broken(datasets, tmp_path, breaker)
    _assert_fatal_naming(report, ls(data, "1Warp.nii.gz"), says="scalar image")


def test_nan_in_a_displacement_field(datasets, tmp_path):
    def breaker(data, _):
        faults.put_nan(t2c(data, "1InverseWarp.nii.gz"), (10, 12, 14), 1)

    report, data = _broken(datasets, tmp_path, breaker)
    path = t2c(data, "1InverseWarp.nii.gz")
    _assert_fatal_naming(report, path, says="voxel (10, 12, 14), component 1")


def test_corrupted_affine_mat_files(datasets, tmp_path):
    def breaker(data, _):
        faults.random_bytes(ls(data, "0GenericAffine.mat"))
        faults.matlab_v5_copy(t2c(data, "0GenericAffine.mat"))  # the wrong layout for ITK

    report, data = _broken(datasets, tmp_path, breaker)
    files = ls(data, "0GenericAffine.mat"), t2c(data, "0GenericAffine.mat")
    _assert_fatal_naming(report, *files, says="expected an ITK MATLAB v4 .mat")
    assert not [e for e in _errors(report) if "ANTs" in e]  # refused before ITK could crash


def test_singular_and_implausible_affines(datasets, tmp_path):
    def breaker(data, _):
        faults.write_affine(ls(data, "0GenericAffine.mat"), np.diag([1.0, 1.0, 0.0]))
        faults.write_affine(t2c(data, "0GenericAffine.mat"), np.diag([3.0, 3.0, 3.0]))

    report, data = _broken(datasets, tmp_path, breaker)
    _assert_fatal_naming(report, ls(data, "0GenericAffine.mat"), says="singular")
    _assert_fatal_naming(report, t2c(data, "0GenericAffine.mat"), says="implausible scale")


def test_label_lookup_with_a_non_allen_id(datasets, tmp_path):
    report, data = _broken(
        datasets, tmp_path, lambda d, _: faults.lookup_with(d / LUT_NPZ, {3: 123456789})
    )
    _assert_fatal_naming(
        report, data / LUT_NPZ, says="[3] = 123456789", name="CCF labels and lookup"
    )


def test_label_lookup_too_short_for_the_volume(datasets, tmp_path):
    report, data = _broken(datasets, tmp_path, lambda d, _: faults.shorten_lookup(d / LUT_NPZ, 2))
    _assert_fatal_naming(
        report, data / LABELS_NRRD, says="compact labels 17, 18", name="CCF labels and lookup"
    )
    assert str(data / LUT_NPZ) in _errors(report, "CCF labels and lookup")[0]


def test_a_crash_inside_ants_is_a_named_error(datasets, tmp_path, monkeypatch):
    """A file our parser wrongly lets through (simulated) still cannot kill the run."""

    def lenient(path: Path):
        if path.name == "syn_0GenericAffine.mat":  # parse it as v4 would be, ignoring its format
            from scipy.io import loadmat

            content = loadmat(str(path))
            values = np.concatenate(
                [content["AffineTransform_double_3_3"].ravel(), content["fixed"].ravel()]
            )
            return registration_check.ItkAffine(
                values[:9].reshape(3, 3), values[9:12], values[12:], "AffineTransform"
            )
        return read_itk_affine(path)

    monkeypatch.setattr(registration_check, "read_itk_affine", lenient)
    report, data = _broken(
        datasets, tmp_path, lambda d, _: faults.matlab_v5_copy(t2c(d, "0GenericAffine.mat"))
    )
    _assert_fatal_naming(report, t2c(data, "0GenericAffine.mat"), says="SIGSEGV")
    transforms = [c for c in report.checks if c.name == "transforms"]
    assert any(c.status == "ok" and c.message.startswith("LS -> LCA") for c in transforms)


def test_geometry_only_data_says_what_it_could_not_check(warped, tmp_path):
    report = _validate(warped.data_root, tmp_path / "results")
    transforms = [c for c in report.checks if c.name == "transforms"]
    assert not [c for c in transforms if c.status == "error"]
    warnings = [c.message for c in transforms if c.status == "warning"]
    assert any("not possible" in w and "LCA template" in w for w in warnings), [
        (c.status, c.name, c.message) for c in report.checks if c.status != "ok"
    ]
    assert not any("images agree" in c.message for c in transforms)
    assert all("round trip" in c.message for c in transforms if c.status == "ok")


def _code_run(data: Path, results: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CO_CPUS"}
    env["ALIGNPREP_PYTHON"] = sys.executable
    args = [
        "--data-root",
        str(data),
        "--results-root",
        str(results),
        "--scratch-root",
        str(results.parent / "scratch"),
        "--params",
        json.dumps({"checks": CHECKS}),
        "--skip-ephys",
        *extra,
    ]
    return subprocess.run(
        [str(CODE_DIR / "run"), *args], env=env, capture_output=True, text=True, timeout=600
    )


def test_code_run_on_a_broken_transform_exits_3_and_writes_nothing(datasets, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(datasets[0].data_root, data)
    broken = faults.truncate(ls(data, "1InverseWarp.nii.gz"), 0.5)
    for extra in (("--validate-only",), ()):
        results = tmp_path / f"results{len(extra)}"
        proc = _code_run(data, results, *extra)
        assert proc.returncode == 3, proc.stderr[-3000:]
        assert str(broken) in proc.stderr
        report = json.loads((results / "validation_report.json").read_text())
        assert any(str(broken) in c["message"] and c["status"] == "error" for c in report["checks"])
        written = {p.relative_to(results).parts[0] for p in results.rglob("*") if p.is_file()}
        assert written <= {"validation_report.json", "effective_config.json", "alignprep.log"}
