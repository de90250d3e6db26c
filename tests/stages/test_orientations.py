"""All 48 axis-aligned acquisition orientations, through the whole point chain (affine only)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from alignprep.synthetic import SyntheticSpec, TrackSpec

from ..datasets import cached_dataset
from .conftest import run_stage

CODES = sorted(
    "".join(p)
    for perm in itertools.permutations([("L", "R"), ("P", "A"), ("S", "I")])
    for p in itertools.product(*perm)
)
ONE_TRACK = (
    TrackSpec("T", "T_annotations", "ProbeA", None, None, (4800.0, 1700.0), (250, 200, 2000), 2000),
)


def test_there_are_48_codes():
    assert len(set(CODES)) == 48


@pytest.mark.parametrize("code", CODES)
def test_orientation(tmp_path, code):
    spec = SyntheticSpec(orientation=code, content_level=None, tracks=ONE_TRACK).affine_only()
    ds = cached_dataset(tmp_path / "ds", spec)
    res = run_stage(ds.data_root, tmp_path / "out")["T"]
    truth = ds.truth["tracks"]["T"]
    assert res.status == "ok", res.reason
    assert np.abs(np.asarray(res.points["bregma_um"]) - truth["bregma_um"]).max() < 1.0
    assert np.abs(np.asarray(res.points["image_ras_um"]) - truth["image_ras_um"]).max() < 1e-6
