"""Sorted assets in every AIND layout, and the checks that refuse damaged ones (issues 10, 17).

Layout variants are written by ``alignprep.synthetic`` in the exact folder layout of that
pipeline generation; damaged assets are broken copies of the session's synthetic asset. For each
refusal the validation message names the probe, the shank group and the file, the stage refuses
the same probe with the same file, and the other probe's files are byte-identical to those of
the intact run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import spikeinterface as si

from alignprep.inputs.manifest import read_manifest
from alignprep.stages.checks import check_probes
from alignprep.stages.validate import MouseReport, ValidationReport
from alignprep.synthetic.ephys import PRESETS, build_ephys
from alignprep.synthetic.ephys_sorted import (
    corrupt_the_analyzer,
    empty_the_analyzer,
    rename_a_curated_unit,
)

from ...plan_runner import run_ephys
from ..conftest import stage_config
from .helpers import MOUSE, EphysData, cluster_of, folder, folder_bytes, load, sorted_dir

LEGACY = replace(
    PRESETS["test"],
    name="legacy",
    probes=("ProbeA",),
    analyzer_format="binary_folder",  # SpikeInterface binary_folder analyzers, no .zarr
    label_layout="decoder",  # unit-classifier era: labels on curated/<rec> only
)


@pytest.fixture(scope="module")
def legacy(tmp_path_factory: pytest.TempPathFactory) -> tuple[EphysData, Path, Any]:
    root = tmp_path_factory.mktemp("legacy")
    truth = build_ephys(root / "data", mouse_id=MOUSE, seed=3, preset=LEGACY)
    (root / "data" / "manifest.csv").write_text(
        "mouseid,sorted_recording,probe_file,histology_track_id,ephys_collection\n"
        f"{MOUSE},{truth['sorted_recording']},ProbeA_annotations,ProbeA_track,ProbeA\n"
    )
    data = EphysData(root / "data", truth)
    config = stage_config(data.data_root, root / "results", n_jobs=1)
    (result,) = run_ephys(config, read_manifest(data.data_root / "manifest.csv")).values()
    return data, root / "results", result


def test_binary_folder_analyzers_with_decoder_era_labels(legacy):
    data, results, result = legacy
    assert result.status == "ok" and result.warnings == []
    (g,) = data.truth["probes"]["ProbeA"]["groups"]
    post = sorted_dir(data.data_root, data.truth) / "postprocessed" / g["analyzer"]
    curated = sorted_dir(data.data_root, data.truth) / "curated" / g["curated"]
    # the layout under test: a binary_folder analyzer without labels, labels on curated/<rec>
    assert not g["analyzer"].endswith(".zarr") and (post / "spikeinterface_info.json").is_file()
    an = si.load_sorting_analyzer(post)
    assert not {"default_qc", "decoder_label"} & set(an.sorting.get_property_keys())
    assert curated.is_dir() and not (curated / "curation.json").exists()
    d = load(folder(results, data.truth, "ProbeA"))
    metrics = d["clusters.metrics"]
    fs = data.truth["sampling_frequency_hz"]
    amps_uv = an.get_extension("spike_amplitudes").get_data()
    vector = an.sorting.to_spike_vector()
    assert "bombcell_label" not in metrics and "unitrefine_probability" not in metrics
    for k, unit in enumerate(an.unit_ids):
        unit = str(unit)
        cid = cluster_of(metrics, None, unit)
        mine = d["spikes.clusters"] == cid
        assert np.array_equal(d["spikes.times"][mine], np.asarray(g["units"][unit]) / fs)
        assert np.allclose(
            d["spikes.amps"][mine], np.abs(amps_uv[vector["unit_index"] == k]) * 1e-6
        )
        row = metrics.iloc[cid]
        for column in ("default_qc", "decoder_label", "decoder_probability"):
            assert row[column] == g["labels"][column][unit], column
        # the Allen GUI's UnitRefine filters read unitrefine_label: the decoder label fills it
        assert row["unitrefine_label"] == g["labels"]["decoder_label"][unit]


# --- issue 17: damaged sorted assets, caught before use --------------------------------------


def _empty(data: Path, truth: dict[str, Any]) -> tuple[str, str, Path, str]:
    g = truth["probes"]["ProbeA"]["groups"][0]
    path = sorted_dir(data, truth) / "postprocessed" / g["analyzer"]
    empty_the_analyzer(path)
    return "ProbeA", "single analyzer", path, "has 0 units; expected at least one sorted unit"


def _unreadable(data: Path, truth: dict[str, Any]) -> tuple[str, str, Path, str]:
    g = truth["probes"]["ProbeB"]["groups"][2]
    path = sorted_dir(data, truth) / "postprocessed" / g["analyzer"]
    corrupt_the_analyzer(path)
    return "ProbeB", "shank group 2", path, "cannot open the analyzer"


def _curated_ids(data: Path, truth: dict[str, Any]) -> tuple[str, str, Path, str]:
    g = truth["probes"]["ProbeB"]["groups"][1]
    path = sorted_dir(data, truth) / "curated" / g["curated"]
    old = rename_a_curated_unit(path, "9999")
    return (
        "ProbeB",
        "shank group 1",
        path,
        f"only curated: ['9999'], only in the analyzer: ['{old}']",
    )


Breaker = Callable[[Path, dict[str, Any]], tuple[str, str, Path, str]]


@pytest.mark.parametrize("breaker", [_empty, _unreadable, _curated_ids])
def test_damaged_sorted_asset_refused_by_name(
    ephys_data, extracted, broken, tmp_path, breaker: Breaker
):
    truth = ephys_data.truth
    probe, where, path, needle = breaker(broken, truth)
    name = f"{truth['recording_id']}/{probe}"
    config = stage_config(broken, tmp_path / "results")
    manifest = read_manifest(broken / "manifest.csv")
    report = ValidationReport()
    check_probes(config, MouseReport(manifest.path, manifest), report)
    errors = [c for c in report.checks if c.status == "error"]
    assert [c.key for c in errors] == [name]  # the other probe passes its checks
    message = errors[0].message
    assert str(path) in message and f"{name}, {where}" in message and needle in message
    assert report.has_errors  # --validate-only exits 3 on any error
    results = run_ephys(config, manifest)
    assert results[probe].status == "failed"
    assert str(path) in results[probe].reason and needle in results[probe].reason
    assert not folder(tmp_path / "results", truth, probe).exists()
    other = next(p for p in ("ProbeA", "ProbeB") if p != probe)
    assert results[other].status == "ok"
    mine = folder_bytes(folder(tmp_path / "results", truth, other))
    assert mine and mine == folder_bytes(folder(extracted[1], truth, other))
