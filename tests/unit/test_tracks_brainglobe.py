"""brainglobe-segmentation ``.points`` / ``.npy`` reader against independent truth.

Truth: ``ccf_truth.asymmetric_track_ccf_um`` (left hemisphere, oblique), moved onto the atlas grid
for ``.points`` (voxel coordinates), and its IBL bregma coordinates from iblatlas
(``bregma_truth_um``). Files are written by ``synthetic.track_brainglobe`` with the tool's own
calls (``DataFrame.to_hdf(key="df")``, ``np.save(spline * resolution)``, ``brainreg.json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignprep.errors import InputError
from alignprep.inputs import tracks_brainglobe
from alignprep.inputs.ccf_tracks import TrackHints, reader
from alignprep.space.atlas import ccf_um_to_bregma_um
from alignprep.synthetic import track_brainglobe as tb
from alignprep.synthetic.ccf_truth import (
    asymmetric_track_ccf_um,
    bregma_truth_um,
    mirrored_ml,
    on_grid,
)

TRUTH = asymmetric_track_ccf_um()
RESOLUTIONS = (10.0, 25.0, 50.0, 100.0)


def _atlas(voxel_um: float) -> str:
    return f"allen_mouse_{voxel_um:g}um"


def _read(path: Path, track: str = "track_0", atlas: str | None = None):
    return tracks_brainglobe.read(path, track, TrackHints(atlas=atlas))


def _error_um(ccf_um: np.ndarray, truth: np.ndarray) -> float:
    return float(np.abs(ccf_um_to_bregma_um(ccf_um) - bregma_truth_um(truth)).max())


def _points(tmp_path: Path, voxel_um: float = 25.0, meta: bool = True) -> tuple[Path, np.ndarray]:
    truth = on_grid(TRUTH, voxel_um)
    folder = tmp_path / "mouse1"
    if meta:
        tb.write_brainreg_json(folder, _atlas(voxel_um))
    return tb.write_points(folder / "track_0.points", truth, voxel_um), truth


# --------------------------------------------------------------------------- against truth


@pytest.mark.parametrize("voxel_um", RESOLUTIONS)
def test_points_match_bregma_truth(tmp_path, voxel_um):
    path, truth = _points(tmp_path, voxel_um)
    track = _read(path)  # atlas from brainreg.json beside the file
    assert _error_um(track.ccf_um, truth) < 1.0
    assert track.tool == "brainglobe" and track.quantum_um == voxel_um
    assert len(track.ccf_um) == len(TRUTH)
    assert (ccf_um_to_bregma_um(track.ccf_um)[:, 0] < 0).all()  # left hemisphere


@pytest.mark.parametrize("voxel_um", RESOLUTIONS)
def test_npy_match_bregma_truth(tmp_path, voxel_um):
    path = tb.write_npy(tmp_path / "m" / "track_0.npy", TRUTH, voxel_um)
    track = _read(path, atlas=_atlas(voxel_um))  # atlas from the manifest only
    assert _error_um(track.ccf_um, TRUTH) < 1.0
    assert track.quantum_um == 0.0 and track.warnings == ()


def test_clicked_points_within_quantum(tmp_path):
    truth = tb.clicked(TRUTH, 25.0, seed=4)
    path = tb.write_points(tmp_path / "m" / "track_0.points", truth, 25.0)
    track = _read(path, atlas="allen_mouse_25um")
    assert _error_um(track.ccf_um, truth) < 1.0
    assert _error_um(track.ccf_um, TRUTH) <= track.quantum_um


@pytest.mark.parametrize("segmentation", tracks_brainglobe.SEGMENTATION_DIRS)
def test_brainreg_tree_reads_metadata_from_brainreg_folder(tmp_path, segmentation):
    truth = on_grid(TRUTH, 50.0)
    points, npy = tb.write_brainreg_tree(
        tmp_path / "brainreg", "probe A", truth, "allen_mouse_50um", segmentation
    )
    for path in (points, npy):
        track = _read(path, "Probe A")
        assert _error_um(track.ccf_um, truth) < 1.0
        assert track.warnings == ()  # the folder says atlas space: no space warning


def test_registry_and_copied_points_warn_about_space(tmp_path):
    path, truth = _points(tmp_path)
    track = reader("brainglobe")(path, "track_0", TrackHints())
    assert _error_um(track.ccf_um, truth) < 1.0
    assert any("does not record its space" in w for w in track.warnings)


def test_writer_matches_tool_file_layout(tmp_path):
    path, _ = _points(tmp_path)
    with pd.HDFStore(path, mode="r") as store:
        assert store.keys() == ["/df"]
        assert store.get_storer("df").format_type == "fixed"
    frame = pd.read_hdf(path)
    assert list(frame.columns) == [0, 1, 2] and frame.dtypes.tolist() == [np.float64] * 3


# ------------------------------------------------------------------------ negative controls


def test_control_reading_the_allen_index_unmirrored_lands_in_other_hemisphere(
    tmp_path, monkeypatch
):
    """Ignoring BrainGlobe's ``asr`` names (reading its ML index as Allen's) flips the side."""
    path, truth = _points(tmp_path)
    monkeypatch.setattr(tracks_brainglobe, "ML_REVERSED", False)
    track = _read(path)
    assert _error_um(track.ccf_um, truth) > 1000.0
    assert (ccf_um_to_bregma_um(track.ccf_um)[:, 0] > 0).all()
    np.testing.assert_allclose(track.ccf_um, mirrored_ml(truth), atol=1e-6)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 0, 2)])
def test_control_wrong_axis_order_fails(tmp_path, monkeypatch, order):
    path, truth = _points(tmp_path)
    monkeypatch.setattr(tracks_brainglobe, "F7_FROM_ATLAS", order)
    try:
        track = _read(path)
    except InputError as err:  # outside the volume: also a failed comparison
        assert "outside" in str(err)
        return
    assert _error_um(track.ccf_um, truth) > 100.0


def test_control_file_in_other_convention_lands_in_other_hemisphere(tmp_path):
    """A .npy in Allen's ML convention (e.g. a hand conversion that undid BrainGlobe's ``asr``
    names) is read as brainglobe-segmentation writes: the comparison fails and x > 0."""
    n_ml_um = tb.SHAPES_APDVML[25.0][2] * 25.0
    atlas_um = tb.ccf_um_to_atlas_vox(TRUTH, 25.0) * 25.0
    atlas_um[:, 2] = n_ml_um - 25.0 - atlas_um[:, 2]
    path = tmp_path / "m" / "track_0.npy"
    path.parent.mkdir()
    np.save(path, atlas_um)
    track = _read(path, atlas="allen_mouse_25um")
    assert _error_um(track.ccf_um, TRUTH) > 1000.0
    assert (ccf_um_to_bregma_um(track.ccf_um)[:, 0] > 0).all()


# ------------------------------------------------------------------------------ refusals


def _raises(path: Path, pattern: str, track: str = "track_0", atlas: str | None = None) -> str:
    with pytest.raises(InputError, match=pattern) as err:
        _read(path, track, atlas)
    assert str(path) in str(err.value)
    return str(err.value)


def test_missing_metadata_and_no_hint(tmp_path):
    path, _ = _points(tmp_path, meta=False)
    text = _raises(path, r"atlas is not known.*expected one of them to say allen_mouse_10um")
    assert "'track_0'" in text
    npy = tb.write_npy(tmp_path / "n" / "track_0.npy", TRUTH, 25.0)
    _raises(npy, r"brainreg.json.*manifest 'atlas' cell is blank")


@pytest.mark.parametrize(
    ("atlas", "why"),
    [
        ("kim_mouse_25um", "another template or species"),
        ("allen_human_500um", "another template or species"),
        ("allen_mouse_bluebrain_barrels_25um", "derived Allen atlas"),
        ("allen_mouse_20um", "derived Allen atlas"),
    ],
)
def test_unsupported_atlas_refused(tmp_path, atlas, why):
    path, _ = _points(tmp_path, meta=False)
    _raises(
        path,
        rf"{atlas!r} \(from the manifest\) is refused: .*{why}.*expected allen_mouse_10um",
        atlas=atlas,
    )
    tb.write_brainreg_json(path.parent, atlas)
    _raises(path, rf"{atlas!r} \(from .*brainreg.json\) is refused")


def test_hint_and_metadata_disagree(tmp_path):
    path, _ = _points(tmp_path, 25.0)
    _raises(
        path,
        r"manifest atlas 'allen_mouse_10um' disagrees with .*'allen_mouse_25um'",
        atlas="allen_mouse_10um",
    )
    assert _error_um(_read(path, atlas="ALLEN_MOUSE_25UM").ccf_um, on_grid(TRUTH, 25.0)) < 1.0


def test_metadata_without_atlas(tmp_path):
    path, _ = _points(tmp_path)
    (path.parent / "brainreg.json").write_text(json.dumps({"orientation": "psl"}))
    _raises(path, r"brainreg.json has no 'atlas' text key; expected brainreg's brainreg.json")


@pytest.mark.parametrize(
    ("frame", "pattern"),
    [
        (pd.DataFrame(np.ones((3, 3)), columns=["x", "y", "z"]), r"columns \['x', 'y', 'z'\]"),
        (pd.DataFrame(np.ones((3, 4))), r"columns \[0, 1, 2, 3\]; expected the 3 unnamed"),
        (pd.DataFrame(np.ones((1, 3))), r"1 point\(s\); at least 2"),
    ],
)
def test_points_wrong_columns_or_shape(tmp_path, frame, pattern):
    path = tmp_path / "m" / "track_0.points"
    path.parent.mkdir()
    frame.to_hdf(path, key="df", mode="w")
    _raises(path, pattern, atlas="allen_mouse_25um")


def test_points_wrong_key_and_not_hdf(tmp_path):
    path = tmp_path / "m" / "track_0.points"
    path.parent.mkdir()
    pd.DataFrame(np.ones((3, 3))).to_hdf(path, key="points", mode="w")
    _raises(path, r"no HDF key 'df' \(keys: \['/points'\]\)", atlas="allen_mouse_25um")
    path.write_text("1,2,3\n")
    _raises(
        path, r"not a readable pandas HDF5 file.*expected a brainglobe", atlas="allen_mouse_25um"
    )


def test_npy_wrong_shape(tmp_path):
    path = tmp_path / "m" / "track_0.npy"
    path.parent.mkdir()
    np.save(path, np.ones((5, 2)))
    _raises(path, r"have shape \(5, 2\); expected \(n, 3\)", atlas="allen_mouse_25um")


def test_track_name_not_in_file(tmp_path):
    path, _ = _points(tmp_path)
    for track in ("track_1", "1", ""):
        _raises(path, r"is not the track of this file; expected 'track_0'", track=track)
    assert _error_um(_read(path, " TRACK_0 ").ccf_um, on_grid(TRUTH, 25.0)) < 1.0


def test_sample_space_legacy_and_extension_refused(tmp_path):
    points, _ = tb.write_brainreg_tree(tmp_path / "b", "track_0", TRUTH, space="sample_space")
    _raises(points, r"'sample_space' folder.*expected a track traced after 'Load project \(atlas")
    legacy = tb.legacy_h5(tmp_path / "m" / "track_0.h5", TRUTH, 25.0)
    _raises(
        legacy, r"brainreg-segment < 0.2.2 export.*reversed the ML axis", atlas="allen_mouse_25um"
    )
    csv = tmp_path / "m" / "track_0.csv"
    csv.write_text("Index\n")
    _raises(csv, r"extension '.csv'; expected a brainglobe-segmentation track")


def test_wrong_resolution_outside_volume(tmp_path):
    path = tb.write_points(tmp_path / "m" / "track_0.points", on_grid(TRUTH, 10.0), 10.0)
    _raises(
        path, r"outside the allen_mouse_25um volume.*another resolution", atlas="allen_mouse_25um"
    )
