"""A skipped item is proven unchanged: editing any input it read re-runs exactly the items that
read it, and the re-run results equal a fresh run, byte for byte."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from alignprep.synthetic import SyntheticSpec

from .datasets import cached_dataset
from .test_pipeline import RECORDING, _hashes, _report, _run

TRACKS = "tracks"  # every track item
HISTOLOGY = "histology *"  # every histology item: its two parts and each channel's CCF QC
CHANNELS, ATLAS = "histology", "histology atlas"  # the phase-0 parts
QC_REGISTRATION = "histology ccf Ex_639_Em_667"  # CCF-space QC of the registration channel
QC_OTHER = "histology ccf Ex_488_Em_525"  # ... of the other channel
FIGURES = "qc *"  # every QC figure item: the mouse's and its tracks' (no probe: --skip-ephys)
MOUSE_FIGURES = "qc mouse"  # registration overlays and tracks in the CCF (read the CCF labels)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return cached_dataset(tmp_path_factory.mktemp("rerun") / "ds", SyntheticSpec())


def _asset(data: Path) -> Path:
    return next(data.glob("SmartSPIM_*"))


def _zarrs(data: Path) -> list[Path]:
    """[Ex_488_Em_525 (other channel), Ex_639_Em_667 (registration channel)]."""
    return sorted((_asset(data) / "image_tile_fusing" / "OMEZarr").glob("*.zarr"))


def _edit_json(path: Path, change: Callable[[dict], None]) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj, indent=1))


def registration_level_shape(data: Path) -> None:
    """Level 3 is never read, but the pipeline frame is anchored on its size (the reported bug)."""

    def shrink(zarray: dict) -> None:
        zarray["shape"][-1] -= 1

    for zarr in _zarrs(data):  # every channel shares the pyramid
        _edit_json(zarr / "3" / ".zarray", shrink)


def _rename(attrs: dict) -> None:
    attrs["multiscales"][0]["name"] = "renamed"


def registration_channel_multiscales(data: Path) -> None:
    """The tracks read the registration channel's metadata (the frame), not the other's."""
    _edit_json(_zarrs(data)[1] / ".zattrs", _rename)


def other_channel_multiscales(data: Path) -> None:
    _edit_json(_zarrs(data)[0] / ".zattrs", _rename)


def acquisition_metadata(data: Path) -> None:
    _edit_json(_asset(data) / "metadata.nd.json", lambda m: m.update(note="re-exported"))


def import_version(data: Path) -> None:
    """0.0.25 -> 0.0.33: the pipeline frame no longer forces the spacing (step A)."""

    def bump(proc: dict) -> None:
        for process in proc["processing_pipeline"]["data_processes"]:
            if process["name"] == "Image importing":
                process["code_version"] = "0.0.33"

    _edit_json(_asset(data) / "processing.json", bump)


def template_to_ccf_affine(data: Path) -> None:
    import ants

    path = data / "spim_template_to_ccf" / "syn_0GenericAffine.mat"
    tx = ants.read_transform(str(path))
    params = np.asarray(tx.parameters, dtype=float)
    params[-3:] += (0.01, -0.02, 0.015)  # mm
    tx.set_parameters(params)
    ants.write_transform(tx, str(path))


def ccf_template_voxels(data: Path) -> None:
    path = data / "allen_mouse_ccf" / "average_template" / "average_template_25.nii.gz"
    img = nib.load(str(path))
    voxels = np.asarray(img.dataobj).copy()
    voxels[voxels > 0] += 7
    nib.save(nib.Nifti1Image(voxels, img.affine, img.header), str(path))


def label_lookup(data: Path) -> None:
    path = next(data.glob("allen_mouse_ccf_annotations_lateralized_compact/*unique_vals.npz"))
    lut = np.load(path)["unique_labels"].copy()
    lut[[1, 2]] = lut[[2, 1]]  # two regions swap names
    np.savez(path, unique_labels=lut)


def annotation(data: Path) -> None:
    path = data / "probe_annotations" / "ProbeA_annotations.json"

    def move_tip(state: dict) -> None:
        state["layers"][0]["annotations"][-1]["point"][0] += 3.0  # 5.4 um

    _edit_json(path, move_tip)


def _statuses(results: Path) -> dict[str, str]:
    return {i["name"]: i["status"] for i in _report(results)["items"] if i["name"] != "datapackage"}


#: (edit, items expected to re-run, whether the outputs change); edits accumulate within a group.
#: Three groups, each a class, so that the test runner can spread them over its workers.
#: The QC figures re-run with the mouse context (every item that uses it does), or when an
#: output they draw changes; never for an output they do not draw (the CCF template on G).
IMAGE_EDITS = (
    (registration_level_shape, {HISTOLOGY, TRACKS, FIGURES}, True),
    (registration_channel_multiscales, {HISTOLOGY, TRACKS, FIGURES}, False),
    (other_channel_multiscales, {CHANNELS, QC_OTHER}, False),
    (acquisition_metadata, {HISTOLOGY, TRACKS, FIGURES}, False),
)
TRANSFORM_EDITS = (
    (import_version, {HISTOLOGY, TRACKS, FIGURES}, True),
    (template_to_ccf_affine, {HISTOLOGY, TRACKS, FIGURES}, True),
)
REFERENCE_EDITS = (
    # the QC volumes are sampled on the CCF grid (its header), never from the template's voxels
    (ccf_template_voxels, {ATLAS}, True),
    (label_lookup, {ATLAS, TRACKS, MOUSE_FIGURES}, True),
    (
        annotation,
        {f"track {RECORDING}/ProbeA/ProbeA_track", FIGURES},
        True,
    ),
)


def _edit_and_rerun(dataset, tmp_path: Path, edits) -> None:
    """Each edit re-runs exactly its readers; the end state equals a fresh run, byte for byte."""
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    results = tmp_path / "out"
    assert _run(data, results, "--skip-ephys").returncode == 0
    every = set(_statuses(results))
    groups = {
        TRACKS: {n for n in every if n.startswith("track ")},
        HISTOLOGY: {n for n in every if n.startswith("histology")},
        FIGURES: {n for n in every if n.startswith("qc ")},
    }
    assert {CHANNELS, ATLAS, QC_REGISTRATION, QC_OTHER} == groups[HISTOLOGY]
    assert groups[FIGURES] == {MOUSE_FIGURES, "qc tracks"}
    before = _hashes(results)
    for edit, expected, outputs_change in edits:
        edit(data)
        proc = _run(data, results, "--skip-ephys")
        assert proc.returncode == 0, (edit.__name__, proc.stderr[-3000:])
        rerun = {n for n, s in _statuses(results).items() if s == "ok"}
        want = set().union(*(groups.get(e, {e}) for e in expected))
        assert rerun == want, edit.__name__
        assert {s for n, s in _statuses(results).items() if n not in want} <= {"skipped"}
        after = _hashes(results)
        assert (after != before) == outputs_change, edit.__name__
        before = after
    fresh = tmp_path / "fresh"
    assert _run(data, fresh, "--skip-ephys").returncode == 0
    assert _hashes(fresh) == _hashes(results)


class TestImageInputs:
    def test_each_reruns_exactly_its_readers_and_matches_a_fresh_run(self, dataset, tmp_path):
        _edit_and_rerun(dataset, tmp_path, IMAGE_EDITS)


class TestTransformInputs:
    def test_each_reruns_exactly_its_readers_and_matches_a_fresh_run(self, dataset, tmp_path):
        _edit_and_rerun(dataset, tmp_path, TRANSFORM_EDITS)


class TestReferenceAndAnnotationInputs:
    def test_each_reruns_exactly_its_readers_and_matches_a_fresh_run(self, dataset, tmp_path):
        _edit_and_rerun(dataset, tmp_path, REFERENCE_EDITS)
