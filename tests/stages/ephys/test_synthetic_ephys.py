"""The synthetic ephys assets: rebuilt in place without error, to the same bytes (issue 9)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import spikeinterface as si

from alignprep.synthetic.ephys import PRESETS, build_ephys

from ...digests import tree_digests

SMALL = replace(PRESETS["test"], name="small", probes=("ProbeA",), duration_s=5.0)


def _hashes(root: Path) -> dict[str, str]:
    return tree_digests(root, products_only=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("small")
    return root, build_ephys(root / "data", preset=SMALL, truth_path=root / "truth.json")


def test_rebuild_in_place_writes_the_same_bytes(small):
    """``code/run --demo`` rebuilds the dataset in scratch every time: a second build into the
    same folder must succeed (it used to stop on the existing raw zarr) and change nothing,
    noise-level chunks and extension run times included."""
    tmp_path, truth = small
    data = tmp_path / "data"
    first = _hashes(data)
    (data / truth["sorted_recording"] / "postprocessed" / "leftover.zarr").mkdir()
    again = build_ephys(data, preset=SMALL, truth_path=tmp_path / "truth.json")
    assert again == truth
    assert _hashes(data) == first  # the leftover of the earlier asset is gone too
    (group,) = truth["probes"]["ProbeA"]["groups"]
    analyzer = si.load_sorting_analyzer(
        data / truth["sorted_recording"] / "postprocessed" / group["analyzer"]
    )
    params = analyzer.get_extension("noise_levels").params
    assert params["random_slices_kwargs"]["seed"] is not None
    assert all(ext.run_info["runtime_s"] == 0.0 for ext in analyzer.extensions.values())
    assert json.loads((tmp_path / "truth.json").read_text())["preset"]["name"] == "small"


def test_unit_scales_shape_the_templates_as_the_truth_says(small):
    """Unit 1 positive-going, unit 2 near the noise: the cases spikes.amps must get right."""
    tmp_path, truth = small
    (group,) = truth["probes"]["ProbeA"]["groups"]
    assert [group["unit_scales"][u] for u in ("0", "1", "2", "3")] == [1.0, -1.0, 0.08, 1.0]
    analyzer = si.load_sorting_analyzer(
        tmp_path / "data" / truth["sorted_recording"] / "postprocessed" / group["analyzer"]
    )
    templates = analyzer.get_extension("templates").get_templates()
    extremum = [float(t.flat[np.argmax(np.abs(t))]) for t in templates]
    assert extremum[1] > 5 * SMALL.noise_uv  # a large positive-going unit
    assert abs(extremum[2]) < 2.5 * SMALL.noise_uv  # a unit near the noise
