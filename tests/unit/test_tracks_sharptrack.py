"""SHARP-Track ``probe_points.mat`` reader against independent truth.

Truth: ``ccf_truth.asymmetric_track_ccf_um`` (left hemisphere, oblique) on the 10 um grid, and its
IBL bregma coordinates from iblatlas (``bregma_truth_um``). The files are written by
``synthetic.track_sharptrack``, which derives the column layout from the atlas browser's
``permute`` + click rule, not from the reader's table (taken from ``Display_Probe_Track.m``);
the literal rows below were worked out by hand from the MATLAB source.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io

from alignprep.errors import InputError
from alignprep.inputs import tracks_sharptrack
from alignprep.inputs.ccf_tracks import TrackHints
from alignprep.space.atlas import ccf_um_to_bregma_um
from alignprep.synthetic.ccf_truth import (
    asymmetric_track_ccf_um,
    bregma_truth_um,
    max_error_um,
    mirrored_ml,
    on_grid,
    second_track_ccf_um,
)
from alignprep.synthetic.track_sharptrack import write_point_rows, write_probe_points

PLANES = ("coronal", "sagittal", "transverse")
VERSIONS = ("7", "7.3")


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return on_grid(asymmetric_track_ccf_um(), 10.0)


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    """Probe 1 of every file (right hemisphere): selecting the wrong probe must show."""
    return on_grid(second_track_ccf_um(), 10.0)


def _read(path: Path, track: str, atlas: str | None = None):
    return tracks_sharptrack.read(path, track, TrackHints(atlas=atlas))


# --------------------------------------------------------------------------- against truth


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("plane", PLANES)
def test_each_plane_matches_bregma_truth(tmp_path, truth, other, plane, version):
    path = write_probe_points(tmp_path / "probe_points.mat", [other, truth], plane, version)
    track = _read(path, f"{plane}_2")
    np.testing.assert_allclose(
        ccf_um_to_bregma_um(track.ccf_um), bregma_truth_um(truth), rtol=0, atol=1.0
    )
    assert track.quantum_um == 10.0
    assert track.tool == "sharptrack"
    assert track.warnings == ()
    first = _read(path, f"{plane.upper()}_1")  # the plane in any case
    np.testing.assert_allclose(ccf_um_to_bregma_um(first.ccf_um), bregma_truth_um(other), atol=1.0)


@pytest.mark.parametrize(
    ("plane", "row"),
    [
        # CCF um (ML, AP, DV) = (4010, 6210, 1190) -> 0-based (AP, DV, ML) = (621, 119, 401);
        # 1-based (622, 120, 402). Click = [column, row, slice] of permute(av, P)(slice, :, :).
        ("coronal", [402.0, 120.0, 622.0]),  # P = [1 2 3]: slice AP, row DV, column ML
        ("sagittal", [622.0, 120.0, 402.0]),  # P = [3 2 1]: slice ML, row DV, column AP
        ("transverse", [622.0, 402.0, 120.0]),  # P = [2 3 1]: slice DV, row ML, column AP
    ],
)
def test_file_layout_is_the_browsers(tmp_path, plane, row):
    """The writer's rows, read back with scipy alone, are the hand-derived SHARP-Track rows."""
    point = np.array([[4010.0, 6210.0, 1190.0], [4000.0, 6300.0, 2000.0]])
    path = write_probe_points(tmp_path / "probe_points.mat", [point], plane)
    content = scipy.io.loadmat(str(path))
    cells = content["pointList"]["pointList"][0, 0]
    assert cells.shape == (1, 3)
    np.testing.assert_array_equal(cells[0, 0][0], row)
    assert _read(path, f"{plane}_1").ccf_um[0].tolist() == point[0].tolist()


def test_v73_storage_is_transposed_references(tmp_path, truth, other):
    path = write_probe_points(tmp_path / "probe_points.mat", [other, truth], "coronal", "7.3")
    assert scipy.io.matlab.matfile_version(str(path)) == (2, 0)
    with h5py.File(path, "r") as mat:
        cell = mat["pointList"]["pointList"]
        assert cell.attrs["MATLAB_class"] == b"cell"
        assert cell.shape == (3, 2)  # MATLAB (2 probes, 3) stored transposed
        assert mat[cell[0, 1]].shape == (3, len(truth))


# ----------------------------------------------------------------------- negative controls


def test_wrong_plane_table_fails_the_comparison(tmp_path, truth, monkeypatch):
    """Reading a sagittal file with the coronal column order must miss by millimetres."""
    path = write_probe_points(tmp_path / "probe_points.mat", [truth], "sagittal")
    assert max_error_um(_read(path, "sagittal_1").ccf_um, truth) <= 1.0
    table = dict(tracks_sharptrack.PLANE_COLUMNS_APDVML)
    table["sagittal"] = table["coronal"]
    monkeypatch.setattr(tracks_sharptrack, "PLANE_COLUMNS_APDVML", table)
    assert max_error_um(_read(path, "sagittal_1").ccf_um, truth) > 1000.0


def test_wrong_plane_in_the_track_id_is_silent_and_wrong(tmp_path, truth):
    """The file cannot tell its plane: a wrong plane in the manifest gives wrong points."""
    path = write_probe_points(tmp_path / "probe_points.mat", [truth], "coronal")
    for wrong in ("sagittal", "transverse"):
        assert max_error_um(_read(path, f"{wrong}_1").ccf_um, truth) > 1000.0


def test_one_based_offset_is_applied(tmp_path, truth):
    """Values are MATLAB 1-based: ignoring that would be 10 um off on every axis."""
    path = write_probe_points(tmp_path / "probe_points.mat", [truth], "coronal")
    raw = scipy.io.loadmat(str(path))["pointList"]["pointList"][0, 0][0, 0]
    no_offset = raw[:, [0, 2, 1]] * 10.0  # (ML, AP, DV) without the -1
    assert max_error_um(no_offset, truth) >= 10.0
    assert max_error_um(_read(path, "coronal_1").ccf_um, truth) <= 1.0


@pytest.mark.parametrize("plane", PLANES)
def test_left_hemisphere_and_mirror_control(tmp_path, truth, plane):
    path = write_probe_points(tmp_path / "probe_points.mat", [truth], plane)
    ccf_um = _read(path, f"{plane}_1").ccf_um
    assert (ccf_um_to_bregma_um(ccf_um)[:, 0] < 0).all()  # left of bregma, as the truth
    assert (ccf_um_to_bregma_um(mirrored_ml(ccf_um, 10.0))[:, 0] > 0).all()


# ------------------------------------------------------------------------------ refusals


def _refused(path: Path, track: str, *expected: str, atlas: str | None = None) -> str:
    with pytest.raises(InputError) as info:
        _read(path, track, atlas)
    message = str(info.value)
    assert str(path) in message
    assert "expected" in message
    for text in expected:
        assert text in message, message
    return message


@pytest.fixture
def two_probe_file(tmp_path, truth, other) -> Path:
    return write_probe_points(tmp_path / "probe_points.mat", [other, truth], "coronal")


def test_missing_plane_is_refused(two_probe_file):
    _refused(two_probe_file, "2", "'<plane>_<probe number>'", "coronal, sagittal, transverse")


def test_unknown_plane_is_refused(two_probe_file):
    _refused(two_probe_file, "horizontal_2", "'horizontal'", "coronal, sagittal, transverse")


@pytest.mark.parametrize("track", ["coronal_3", "coronal_0"])
def test_probe_number_out_of_range_is_refused(two_probe_file, track):
    message = _refused(two_probe_file, track)
    if track == "coronal_3":
        assert "holds 2 probe(s)" in message and "from 1 to 2" in message
    else:
        assert "numbers probes from 1" in message


@pytest.mark.parametrize("version", VERSIONS)
def test_empty_probe_is_refused(tmp_path, truth, version):
    path = write_probe_points(tmp_path / "probe_points.mat", [truth, None], "coronal", version)
    _refused(path, "coronal_2", "probe 2 of 2 has no points", "at least 2")


def test_single_point_probe_is_refused(tmp_path, truth):
    path = write_probe_points(tmp_path / "probe_points.mat", [truth[:1]], "coronal")
    with pytest.raises(InputError, match="at least 2") as info:
        _read(path, "coronal_1")
    assert str(path) in str(info.value)


def test_mat_file_without_pointlist_is_refused(tmp_path, truth):
    path = tmp_path / "probe_ccf.mat"
    scipy.io.savemat(str(path), {"probe_ccf": {"points": truth}})
    _refused(
        path, "coronal_1", "no struct variable 'pointList'", "probe_ccf (struct)", "SHARP-Track"
    )


def test_hdf5_without_pointlist_is_refused(tmp_path, truth):
    path = tmp_path / "probe_points.mat"
    write_probe_points(path, [truth], "coronal", "7.3")
    with h5py.File(path, "r+") as mat:
        del mat["pointList"]
        mat["other"] = np.zeros(3)
    _refused(path, "coronal_1", "no struct variable 'pointList'", "['other']")


def test_not_a_mat_file_is_refused(tmp_path):
    path = tmp_path / "probe_points.mat"
    path.write_text("ml_um,ap_um,dv_um\n1,2,3\n")
    _refused(path, "coronal_1", "not a readable MATLAB MAT-file", "SHARP-Track")


def test_values_outside_the_volume_are_refused(tmp_path):
    rows = [np.array([[402.0, 120.0, 622.0], [402.0, 1500.0, 622.0]])]  # DV 1500 > 800
    path = write_point_rows(tmp_path / "probe_points.mat", rows)
    _refused(path, "coronal_1", "DV", "[1, 800]")


def test_other_atlas_is_refused(two_probe_file):
    _refused(two_probe_file, "coronal_1", "allen_mouse_10um", atlas="allen_mouse_25um")
    assert _read(two_probe_file, "coronal_1", "allen_mouse_10um").quantum_um == 10.0
