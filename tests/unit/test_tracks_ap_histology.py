"""AP_histology probe_ccf.mat / AP_histology_processing.mat reader against independent truth.

Truth: ``ccf_truth.asymmetric_track_ccf_um`` (left hemisphere, oblique) on the 10 um grid and its
IBL bregma um from iblatlas (``bregma_truth_um``). Files come from ``synthetic.track_ap_histology``
(MAT v7 via scipy, v7.3 via h5py in MATLAB's layout); one literal file is built by hand here from
the MATLAB source's rule (1-based subscripts of the (AP, DV, ML) 10 um volume).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from alignprep.errors import InputError
from alignprep.inputs import tracks_ap_histology
from alignprep.inputs.ccf_tracks import TrackHints
from alignprep.space.atlas import ccf_um_to_bregma_um
from alignprep.synthetic.ccf_truth import (
    asymmetric_track_ccf_um,
    max_error_um,
    mirrored_ml,
    on_grid,
    second_track_ccf_um,
)
from alignprep.synthetic.track_ap_histology import (
    write_histology_processing,
    write_probe_ccf,
)

VERSIONS = ("7", "7.3")
WRITERS = {"probe_ccf": write_probe_ccf, "processing": write_histology_processing}
FILE_NAMES = {"probe_ccf": "probe_ccf.mat", "processing": "AP_histology_processing.mat"}


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    points = on_grid(asymmetric_track_ccf_um(), 10.0)
    assert (np.diff(points[:, 2]) > 0).all()  # DV-monotone: the tool's DV sort keeps the order
    return points


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    """Probe 1 of every file (right hemisphere): selecting the wrong probe must show."""
    return on_grid(second_track_ccf_um(), 10.0)


def _read(path: Path, track: str, atlas: str | None = None):
    return tracks_ap_histology.read(path, track, TrackHints(atlas=atlas))


def _write(tmp_path: Path, kind: str, version: str, tracks: list[np.ndarray], **kw) -> Path:
    return WRITERS[kind](tmp_path / f"v{version}" / FILE_NAMES[kind], tracks, version, **kw)


# --------------------------------------------------------------------------- against truth


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_second_probe_matches_bregma_truth(tmp_path, kind, version, truth, other):
    path = _write(tmp_path, kind, version, [other, truth])
    track = _read(path, "2")
    assert max_error_um(track.ccf_um, truth) < 1.0
    assert (ccf_um_to_bregma_um(track.ccf_um)[:, 0] < 0).all()  # left hemisphere, as the truth
    assert track.quantum_um == 10.0 and track.tool == "ap_histology" and track.track == "2"
    assert max_error_um(_read(path, "1").ccf_um, other) < 1.0


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_single_probe_file(tmp_path, kind, version, truth):
    """One probe: a 1x1 struct, which v7.3 stores in place rather than through references."""
    track = _read(_write(tmp_path, kind, version, [truth]), "probe1")
    assert max_error_um(track.ccf_um, truth) < 1.0


@pytest.mark.parametrize("text", ["2", "probe2", "Probe 2", "probe_2", " PROBE-2 "])
def test_probe_number_spellings(tmp_path, text, truth, other):
    path = _write(tmp_path, "probe_ccf", "7", [other, truth])
    assert max_error_um(_read(path, text).ccf_um, truth) < 1.0


@pytest.mark.parametrize("version", VERSIONS)
def test_processing_annotation_selected_by_label(tmp_path, version, truth, other):
    path = _write(tmp_path, "processing", version, [other, truth], labels=["DiI", "CA1 shank"])
    assert max_error_um(_read(path, "CA1 shank").ccf_um, truth) < 1.0


def test_literal_subscripts_by_hand(tmp_path):
    """Hand-built v7 file: [AP, DV, ML] subscript (1,1,1) is the corner voxel, F7 (0, 0, 0) um."""
    probe = np.empty((1, 1), dtype=[("points", object), ("trajectory_coords", object)])
    probe["points"][0, 0] = np.array([[1.0, 1.0, 1.0], [541.0, 45.0, 571.0], [600.5, 400.0, 300.0]])
    probe["trajectory_coords"][0, 0] = np.array([[541.0, 45.0, 571.0], [600.0, 400.0, 300.0]])
    path = tmp_path / "probe_ccf.mat"
    scipy.io.savemat(path, {"probe_ccf": probe})
    got = _read(path, "1").ccf_um
    want = np.array([[0.0, 0.0, 0.0], [5700.0, 5400.0, 440.0], [2990.0, 5995.0, 3990.0]])
    assert np.allclose(got, want, rtol=0, atol=1e-9)


def test_v73_is_matlab_layout(tmp_path, truth, other):
    """What MATLAB writes: header 7.3, struct array of references, column-major (transposed)."""
    path = _write(tmp_path, "probe_ccf", "7.3", [other, truth])
    assert scipy.io.matlab.matfile_version(path) == (2, 0)
    with h5py.File(path, "r") as file:
        group = file["probe_ccf"]
        assert group.attrs["MATLAB_class"] == b"struct"
        refs = group["points"]
        assert refs.dtype == h5py.ref_dtype and refs.shape == (1, 2)  # MATLAB 2x1, reversed
        stored = file[refs[0, 1]]
        assert stored.attrs["MATLAB_class"] == b"double" and stored.shape == (3, len(truth))
        assert np.allclose(stored[0], truth[:, 1] / 10 + 1)  # row 0 of the storage = AP column


# --------------------------------------------------------------------------- negative controls


def test_axis_order_control_lands_in_the_other_hemisphere(tmp_path, monkeypatch, truth, other):
    path = _write(tmp_path, "probe_ccf", "7", [other, truth])
    monkeypatch.setattr(tracks_ap_histology, "FILE_AXES", ("ML", "DV", "AP"))
    ccf_um = _read(path, "2").ccf_um
    assert max_error_um(ccf_um, truth) > 1000.0
    assert (ccf_um_to_bregma_um(ccf_um)[:, 0] > 0).all()  # AP subscripts (~620) read as ML


def test_zero_based_control_fails_the_comparison(tmp_path, monkeypatch, truth, other):
    path = _write(tmp_path, "processing", "7.3", [other, truth])
    monkeypatch.setattr(tracks_ap_histology, "MATLAB_BASE", 0.0)
    assert 9.0 < max_error_um(_read(path, "2").ccf_um, truth) < 11.0


def test_mirrored_truth_is_told_apart(tmp_path, truth, other):
    path = _write(tmp_path, "probe_ccf", "7", [other, mirrored_ml(truth, 10.0)])
    ccf_um = _read(path, "2").ccf_um
    assert max_error_um(ccf_um, truth) > 1000.0
    assert (ccf_um_to_bregma_um(ccf_um)[:, 0] > 0).all()


def test_wrong_probe_fails_the_comparison(tmp_path, truth, other):
    path = _write(tmp_path, "probe_ccf", "7.3", [other, truth])
    with pytest.raises(ValueError):  # 6 points vs 9: not even comparable
        max_error_um(_read(path, "1").ccf_um, truth)


# --------------------------------------------------------------------------- refusals


def _refused(path: Path, track: str, *needles: str, atlas: str | None = None) -> str:
    with pytest.raises(InputError) as caught:
        _read(path, track, atlas)
    message = str(caught.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message
    return message


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("text", ["3", "0", "probe3"])
def test_probe_number_out_of_range(tmp_path, version, text, truth, other):
    path = _write(tmp_path, "probe_ccf", version, [other, truth])
    _refused(path, text, "out of range", "holds 2 probes", "expected 1..2")


@pytest.mark.parametrize("text", ["ProbeA", "", "1.5", "-1"])
def test_probe_number_unparsable(tmp_path, text, truth, other):
    path = _write(tmp_path, "processing", "7", [other, truth])
    _refused(path, text, "is not a probe number", "holds 2 annotations", "'probe 1'")


def test_zero_padded_ibl_style_number_refused(tmp_path, truth, other):
    path = _write(tmp_path, "probe_ccf", "7", [other, truth])
    _refused(path, "probe01", "leading zero", "0-based", "expected 1..2")


def test_number_whose_label_names_another_number_warns(tmp_path, truth, other):
    path = _write(tmp_path, "processing", "7.3", [other, truth], labels=["probe 2", "probe 3"])
    track = _read(path, "2")
    assert max_error_um(track.ccf_um, truth) < 1.0
    assert track.warnings and "'probe 3'" in track.warnings[0]
    assert not _read(_write(tmp_path / "plain", "processing", "7", [other, truth]), "2").warnings


def test_label_that_reads_as_another_number_refused(tmp_path, truth, other):
    path = _write(tmp_path, "processing", "7", [other, truth], labels=["2", "1"])
    _refused(path, "2", "ambiguous", "number 1")


def test_missing_points_field(tmp_path):
    probe = np.empty((2, 1), dtype=[("trajectory_coords", object)])
    probe["trajectory_coords"][0, 0] = probe["trajectory_coords"][1, 0] = np.ones((2, 3))
    path = tmp_path / "probe_ccf.mat"
    scipy.io.savemat(path, {"probe_ccf": probe})
    _refused(path, "2", "probe_ccf(2) has no field 'points'", "expected AP_histology's layout")


def test_processing_without_ccf_vertices_refused(tmp_path):
    """The 2025 layout before vertices_ccf existed: histology pixels only."""
    annotation = np.empty((1, 1), dtype=[("label", object), ("vertices", object)])
    annotation["label"][0, 0] = "probe 1"
    annotation["vertices"][0, 0] = np.array([[np.ones((2, 2))]], dtype=object)
    path = tmp_path / "AP_histology_processing.mat"
    scipy.io.savemat(path, {"AP_histology_processing": {"annotation": annotation}})
    _refused(path, "1", "no field 'vertices_ccf'", "histology pixels only")


@pytest.mark.parametrize("version", VERSIONS)
def test_other_mat_file_refused(tmp_path, version):
    path = tmp_path / "probe_points.mat"
    if version == "7":
        scipy.io.savemat(path, {"pointList": np.ones((3, 3))})
    else:
        from alignprep.synthetic.track_ap_histology import write_v73

        write_v73(path, {"pointList": np.ones((3, 3))})
    _refused(path, "1", "no variable 'probe_ccf' or 'AP_histology_processing'", "pointList")


def test_not_a_mat_file_refused(tmp_path):
    path = tmp_path / "probe_ccf.mat"
    path.write_text("ml_um,ap_um,dv_um\n1,2,3\n")
    _refused(path, "1", "not a readable MATLAB .mat file", "expected AP_histology's")


def test_probe_without_points_refused(tmp_path, truth):
    probe = np.empty((2, 1), dtype=[("points", object)])
    probe["points"][0, 0] = truth[:, [1, 2, 0]] / 10 + 1
    probe["points"][1, 0] = np.zeros((0, 0))
    path = tmp_path / "probe_ccf.mat"
    scipy.io.savemat(path, {"probe_ccf": probe})
    _refused(path, "2", "probe_ccf(2).points", "0 point(s)")


def test_other_atlas_refused(tmp_path, truth):
    path = _write(tmp_path, "probe_ccf", "7", [truth])
    _refused(path, "1", "allen_mouse_25um", "10 um", atlas="allen_mouse_25um")
    assert max_error_um(_read(path, "1", atlas="allen_mouse_10um").ccf_um, truth) < 1.0
