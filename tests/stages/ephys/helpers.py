"""Shared helpers of the ephys stage tests: the synthetic data, runs, readers, lookups."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import one.alf.io as alfio
import pandas as pd
import spikeinterface as si

from alignprep import outputs
from alignprep.inputs.manifest import read_manifest
from alignprep.stages import alf
from alignprep.stages.ephys import EphysSettings

from ...plan_runner import EphysOutcome, run_ephys
from ..conftest import stage_config

MOUSE = "000123"


@dataclass(frozen=True)
class EphysData:
    data_root: Path
    truth: dict[str, Any]


def write_manifest(data_root: Path, truth: dict[str, Any]) -> Path:
    """ProbeA (no shank) and ProbeB shanks 0..3, as the synthetic histology manifest has them."""
    sorted_name = truth["sorted_recording"]
    lines = [
        "mouseid,sorted_recording,probe_file,histology_track_id,ephys_collection,"
        "histology_shank,ephys_shank",
        f"{MOUSE},{sorted_name},ProbeA_annotations,ProbeA_track,ProbeA,,",
    ]
    lines += [
        f"{MOUSE},{sorted_name},ProbeB_annotations,ProbeB_{'abcd'[k]},ProbeB,{k},{k}"
        for k in range(4)
    ]
    path = data_root / "manifest.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def run(
    data_root: Path, results: Path, n_jobs: int = 1, settings: EphysSettings | None = None
) -> dict[str, EphysOutcome]:
    """The probes' ephys through the real plan and executor (``n_jobs`` workers)."""
    params: dict[str, Any] = {"n_jobs": n_jobs}
    if settings is not None:
        params["ephys"] = asdict(settings)
    config = stage_config(data_root, results, **params)
    return run_ephys(config, read_manifest(data_root / "manifest.csv"))


def folder_bytes(path: Path) -> dict[str, bytes]:
    """Every file of a probe folder, by relative path."""
    return {
        str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()
    }


def folder(results: Path, truth: dict[str, Any], probe: str) -> Path:
    return outputs.probe_dir(results, MOUSE, truth["recording_id"], probe)


def load(path: Path) -> dict[str, Any]:
    out = {f"spikes.{k}": v for k, v in alfio.load_object(path, "spikes").items()}
    out |= {f"clusters.{k}": v for k, v in alfio.load_object(path, "clusters").items()}
    out |= {f"channels.{k}": v for k, v in alfio.load_object(path, "channels").items()}
    out["spike_shank_indices"] = np.load(path / "spike_shank_indices.npy")
    return out


def truth_units(probe_truth: dict[str, Any]):
    """(group, unit id, spike samples) of every ground-truth unit."""
    for g in probe_truth["groups"]:
        for unit, samples in g["units"].items():
            yield g["group"], unit, np.asarray(samples)


def cluster_of(metrics: pd.DataFrame, group: int | None, unit: str) -> int:
    hit = metrics[(metrics["shank"] == (group or 0)) & (metrics["unit_id"].astype(str) == unit)]
    assert len(hit) == 1, f"unit {unit} of group {group}: {len(hit)} metrics rows"
    return int(hit["cluster_id"].iloc[0])


PROBES = ("ProbeA", "ProbeB")


def analyzer(ephys_data: EphysData, name: str):
    return si.load_sorting_analyzer(
        ephys_data.data_root / ephys_data.truth["sorted_recording"] / "postprocessed" / name
    )


def assert_other_ok(results: dict[str, EphysOutcome], bad: str, root: Path, truth) -> None:
    good = next(p for p in PROBES if p != bad)
    assert results[good].status == "ok"
    assert alf.check_folder(folder(root, truth, good)) == []


def sorted_dir(data: Path, truth) -> Path:
    return data / truth["sorted_recording"]
