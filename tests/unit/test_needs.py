"""The run's memory and disk estimate, and the refusal when the machine has less."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from alignprep.stages import needs as needs_mod
from alignprep.stages.needs import (
    EPHYS_BASE_BYTES,
    EPHYS_PER_CHANNEL_BYTES,
    ORCHESTRATOR_BYTES,
    WORKER_BASE_BYTES,
    estimate,
    field_bytes,
    probe_channels,
)

from ..datasets import cached_dataset

GB = 1024**3


def test_field_bytes_from_a_warp_header(tmp_path):
    path = tmp_path / "w_1Warp.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((7, 8, 9, 1, 3), np.float32), np.eye(4)), str(path))
    assert field_bytes(path) == 7 * 8 * 9 * 3 * 4
    assert field_bytes(tmp_path / "missing.nii.gz") == 0


def _raw_zarr(root: Path, channels: int) -> Path:
    zarr = root / f"raw_{channels}.zarr"
    (zarr / "traces_seg0").mkdir(parents=True)
    (zarr / "traces_seg0" / ".zarray").write_text(json.dumps({"shape": [30000, channels]}))
    return zarr


def test_probe_channels_and_concurrency(tmp_path):
    a, b, c = (_raw_zarr(tmp_path, n) for n in (384, 96, 48))
    assert probe_channels(a) == 384 and probe_channels(tmp_path / "nope") == 384  # default
    per = {
        n: EPHYS_BASE_BYTES + n * EPHYS_PER_CHANNEL_BYTES + WORKER_BASE_BYTES for n in (384, 96, 48)
    }
    zarrs = {"p384": [a], "p96": [b], "p48": [c]}
    one = estimate([], zarrs, n_jobs=1)
    assert one.ram_bytes == ORCHESTRATOR_BYTES + per[384]  # one at a time: the largest
    two = estimate([], zarrs, n_jobs=2)
    assert two.ram_bytes == ORCHESTRATOR_BYTES + per[384] + per[96]  # the two largest together
    assert estimate([], zarrs, n_jobs=8).ram_bytes == ORCHESTRATOR_BYTES + sum(per.values())
    assert 3.0 * GB < per[384] < 4.0 * GB  # the calibration point: 3.6 GB for 384 channels


def test_histology_estimate_puts_every_field_on_disk_not_in_memory(warped_context):
    import SimpleITK as sitk

    ctx = warped_context
    ram, disk, parts = needs_mod.histology_needs(ctx)
    regs = (ctx.asset.ls_to_template, ctx.template_to_ccf.registration)
    warps = [p for r in regs for p in (r.inverse_warp, r.warp) if p is not None]
    assert len(warps) == 4
    fields = sum(int(np.prod(sitk.ReadImage(str(p)).GetSize())) * 3 * 4 for p in warps)
    assert parts["decoded fields (scratch)"] == fields  # decoded once, float32, into scratch
    assert disk == parts["histology disk"] + fields and parts["histology disk"] > 0
    ccf = int(np.prod(ctx.ccf_template.size))
    assert parts["atlas"] >= ccf * 4 * 2  # a CCF volume read, and its canonical copy
    assert ram == max(parts["level read"], parts["atlas"], parts["CCF QC"])
    # the parts are items of their own: on two workers the two largest can run at once
    items = sorted(
        [parts["level read"], parts["atlas"]] + [parts["CCF QC"]] * len(ctx.asset.channels),
        reverse=True,
    )
    two = estimate([ctx], {}, n_jobs=2).ram_bytes
    assert two == ORCHESTRATOR_BYTES + items[0] + items[1] + 2 * WORKER_BASE_BYTES
    assert estimate([ctx], {}, n_jobs=1).ram_bytes == ORCHESTRATOR_BYTES + ram + WORKER_BASE_BYTES


@pytest.fixture
def warped_context(tmp_path):
    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages.context import MouseContext
    from alignprep.synthetic import SyntheticSpec

    from ..stages.conftest import stage_config

    ds = cached_dataset(tmp_path / "ds", SyntheticSpec(content_level=None))
    config = stage_config(ds.data_root, tmp_path / "out", skip_ephys=True)
    return MouseContext.prepare(config, read_manifest(ds.manifest))


def test_too_little_memory_is_refused_naming_the_need_and_the_fix(tmp_path, monkeypatch):
    from alignprep import resources
    from alignprep.stages.checks import check_needs
    from alignprep.stages.validate import MouseReport, ValidationReport

    from ..stages.conftest import stage_config

    (tmp_path / "data").mkdir()
    config = stage_config(tmp_path / "data", tmp_path / "out", n_jobs=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out_scratch").mkdir()
    monkeypatch.setattr(resources, "available_ram_bytes", lambda limits=None: int(0.5 * GB))
    zarrs = {"rec/ProbeA": [_raw_zarr(tmp_path, 384)]}
    report = ValidationReport(mice=[MouseReport(tmp_path / "m.csv", probe_zarrs=zarrs)])
    check_needs(config, report)
    (memory,) = [c for c in report.checks if c.name == "memory for this run"]
    assert memory.status == "error"
    assert "has 0.5 GB available" in memory.message and "lower --n-jobs" in memory.message
    need = float(memory.message.split("needs ~")[1].split(" GB")[0])
    assert need == pytest.approx(estimate([], zarrs, 2).ram_bytes / GB, abs=0.06)
