"""HERBS merged-probe ``.pkl`` reader against independent truth, and the pickle safety rule.

Truth: ``ccf_truth.asymmetric_track_ccf_um`` (left hemisphere, oblique) and its IBL bregma
coordinates from iblatlas (``bregma_truth_um``). Files are written by ``synthetic.track_herbs``
from HERBS's own steps; ``test_writer_matches_herbs_volume_steps`` checks the writer against the
numpy operations HERBS applies to the Allen volume, on an index-encoded volume.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.inputs import tracks_herbs
from alignprep.inputs.ccf_tracks import TrackHints
from alignprep.space.atlas import ccf_um_to_bregma_um
from alignprep.synthetic import track_herbs
from alignprep.synthetic.ccf_truth import asymmetric_track_ccf_um, bregma_truth_um, mirrored_ml

TRUTH = asymmetric_track_ccf_um()
OTHER = asymmetric_track_ccf_um(
    n_points=5, seed=3, entry_um=(7400.0, 8000.0, 900.0), tip_um=(7800.0, 8600.0, 3800.0)
)


def _read(path: Path, track: str = "1", atlas: str | None = None):
    return tracks_herbs.read(path, track, TrackHints(atlas=atlas))


def _error_um(ccf_um: np.ndarray, truth: np.ndarray = TRUTH) -> float:
    return float(np.abs(ccf_um_to_bregma_um(ccf_um) - bregma_truth_um(truth)).max())


def _write(tmp_path: Path, **kwargs) -> Path:
    kwargs.setdefault("name", "probe 0")
    return track_herbs.write_probe_file(tmp_path / "probe 0.pkl", [TRUTH[:4], TRUTH[4:]], **kwargs)


# --------------------------------------------------------------------------- against truth


@pytest.mark.parametrize("numpy_module", ["numpy._core", "numpy.core"])
@pytest.mark.parametrize("layout", track_herbs.LAYOUTS)
@pytest.mark.parametrize("voxel_um", [10.0, 25.0, 50.0])
def test_picks_match_bregma_truth(tmp_path, voxel_um, layout, numpy_module):
    path = _write(tmp_path, voxel_um=voxel_um, layout=layout, numpy_module=numpy_module)
    track = _read(path, "1", atlas=f"allen_mouse_{voxel_um:g}um")
    assert _error_um(track.ccf_um) < 1.0
    assert track.tool == "herbs" and track.quantum_um == 0.0 and len(track.ccf_um) == len(TRUTH)
    assert (ccf_um_to_bregma_um(track.ccf_um)[:, 0] < 0).all()  # left hemisphere


@pytest.mark.parametrize("bregma", [(0, 0, 0), (216, 18, 229), (300, 40, 200)])
def test_herbs_bregma_is_undone(tmp_path, bregma):
    """Whatever bregma the user typed into HERBS, the CCF position is the same."""
    track = _read(_write(tmp_path, bregma_apdvml_vox=bregma), "probe 0")
    assert _error_um(track.ccf_um) < 1.0


def test_track_ids_name_or_one(tmp_path):
    path = _write(tmp_path)
    for track in ("1", "probe 0", " PROBE   0 "):
        assert _error_um(_read(path, track).ccf_um) < 1.0
    for track in ("0", "2", "probe 1", ""):
        with pytest.raises(InputError, match="expected the probe name 'probe 0' or 1") as err:
            _read(path, track)
        assert str(path) in str(err.value)


def test_project_selects_among_several(tmp_path):
    path = track_herbs.write_plain_project(
        tmp_path / "project.pkl", [("probe", [OTHER]), ("ProbeB", [TRUTH])]
    )
    assert _error_um(_read(path, "2").ccf_um) < 1.0
    assert _error_um(_read(path, "probeb").ccf_um) < 1.0
    assert _error_um(_read(path, "1").ccf_um, OTHER) < 1.0
    with pytest.raises(InputError, match=r"a number from 1 to 2"):
        _read(path, "3")


def test_insertion_terminus_when_no_picks(tmp_path):
    content = pickle.loads(_write(tmp_path).read_bytes())
    del content["data"]["data"]
    path = tmp_path / "edited.pkl"
    path.write_bytes(pickle.dumps(content))
    track = _read(path)
    np.testing.assert_allclose(
        ccf_um_to_bregma_um(track.ccf_um), bregma_truth_um(TRUTH[[0, -1]]), atol=1.0
    )


def test_writer_matches_herbs_volume_steps():
    """The writer's coordinates land, through HERBS's own volume steps, in the truth's voxel."""
    voxel_um = 50.0
    n_ap, n_dv, n_ml = track_herbs.SIZES_APDVML[voxel_um]
    ap, dv, ml = np.meshgrid(np.arange(n_ap), np.arange(n_dv), np.arange(n_ml), indexing="ij")
    allen = (ap * 1_000_000 + dv * 1_000 + ml).astype(np.int64)  # voxel -> its own index
    # allen_downloader.py: reverse AP and DV, transpose (2, 0, 1); herbsgui: transpose
    # [2, 0, 1] and reverse axis 0 for the view; merge_probes: transpose (1, 2, 0) and
    # reverse the last axis for the label look-up at int(point + bregma).
    stored = np.transpose(allen[::-1, ::-1, :], (2, 0, 1))
    view = np.transpose(stored, [2, 0, 1])[::-1, :, :]
    lookup = np.transpose(view, (1, 2, 0))[:, :, ::-1]
    vox = track_herbs.ccf_um_to_herbs_vox(TRUTH, voxel_um).astype(int)
    codes = lookup[vox[:, 0], vox[:, 1], vox[:, 2]]
    expected_apdvml = np.round(TRUTH[:, [1, 2, 0]] / voxel_um).astype(np.int64)
    np.testing.assert_array_equal(codes, expected_apdvml @ np.array([1_000_000, 1_000, 1]))


# ------------------------------------------------------------------------ negative controls


def test_control_flipped_ml_lands_in_other_hemisphere(tmp_path, monkeypatch):
    path = _write(tmp_path)
    monkeypatch.setattr(tracks_herbs, "DIRECTION_CHANGE", (True, True, True))
    track = _read(path)
    assert _error_um(track.ccf_um) > 1000.0
    assert (ccf_um_to_bregma_um(track.ccf_um)[:, 0] > 0).all()
    np.testing.assert_allclose(track.ccf_um, mirrored_ml(TRUTH), atol=1e-6)


@pytest.mark.parametrize(
    ("name", "value"),
    [("DIRECTION_CHANGE", (False, False, False)), ("TO_HERBS", (0, 1, 2)), ("VOXEL_CENTRE", 0.0)],
)
def test_control_wrong_constant_fails(tmp_path, monkeypatch, name, value):
    path = _write(tmp_path)
    monkeypatch.setattr(tracks_herbs, name, value)
    try:
        track = _read(path)
    except InputError as err:  # outside the volume: also a failure of the comparison
        assert "outside" in str(err)
        return
    assert _error_um(track.ccf_um) > 10.0


# ------------------------------------------------------------------------ pickle safety


class _Evil:
    def __init__(self, call, arg) -> None:
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


@pytest.mark.parametrize("where", ["top", "nested"])
@pytest.mark.parametrize("call", ["os.system", "builtins.exec", "numpy.load"])
def test_malicious_pickle_refused_and_never_run(tmp_path, call, where):
    marker = tmp_path / "pwned"
    payload = {
        "os.system": (os.system, f"touch '{marker}'"),
        "builtins.exec": (exec, f"open({str(marker)!r}, 'w').close()"),
        "numpy.load": (np.load, str(marker)),
    }[call]
    evil = _Evil(*payload)
    content = pickle.loads(_write(tmp_path).read_bytes())
    if where == "top":
        content = evil
    else:
        content["data"]["label_name"] = [evil]
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(InputError, match="a pickle can run code; only plain data is read") as err:
        _read(path)
    module, name = payload[0].__module__, payload[0].__name__
    assert f"{module}.{name}" in str(err.value) and str(path) in str(err.value)
    assert not marker.exists()


def test_qt_project_refused_with_hint(tmp_path):
    path = tmp_path / "project.pkl"
    module, name = b"PyQt5.QtGui", b"QColor"  # QColor() as pickled by a HERBS project
    opcodes = b"\x8c" + bytes([len(module)]) + module + b"\x8c" + bytes([len(name)]) + name
    path.write_bytes(b"\x80\x04" + opcodes + b"\x93)R.")
    with pytest.raises(InputError, match=r"PyQt5\.QtGui\.QColor.*Save Merged Probes"):
        _read(path)


# ------------------------------------------------------------------------------ refusals


def _edited(tmp_path: Path, edit) -> Path:
    content = pickle.loads(_write(tmp_path).read_bytes())
    content = edit(content) or content
    path = tmp_path / "edited.pkl"
    path.write_bytes(pickle.dumps(content))
    return path


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: [1, 2, 3], r"holds list; expected a HERBS merged-probe object file"),
        (lambda c: {"a": 1}, r"holds \['a'\]; expected a HERBS merged-probe object file"),
        (lambda c: c.update(type="merged virus"), r"'merged virus'; expected type 'merged probe'"),
        (lambda c: c.update(type="probe piece"), r"unmerged piece.*merge the pieces"),
        (lambda c: c["data"].__delitem__("insertion_vox"), r"'insertion_vox' is missing"),
        (lambda c: c["data"].update(insertion_vox=np.array([1.5, 2, 3])), r"whole-voxel bregma"),
        (lambda c: c["data"].update(terminus_vox=np.array([1, 2, 3])), r"terminus_vox"),
        (
            lambda c: c["data"].update(insertion_coords=c["data"]["insertion_coords"] * 0.9),
            r"expected one HERBS Allen atlas voxel size",
        ),
        (
            lambda c: c["data"].update(data=[np.zeros((2, 2))]),
            r"picks \('data'\) are not \(n, 3\)",
        ),
    ],
)
def test_refused_shapes(tmp_path, edit, message):
    path = _edited(tmp_path, edit)
    with pytest.raises(InputError, match=message) as err:
        _read(path)
    assert str(path) in str(err.value)


def test_not_a_pickle_and_wrong_atlas(tmp_path):
    text = tmp_path / "probe.pkl"
    text.write_text("ML,AP,DV\n1,2,3\n")
    with pytest.raises(InputError, match=r"not a readable pickle.*expected a HERBS") as err:
        _read(text)
    assert str(text) in str(err.value)
    with pytest.raises(InputError, match=r"expected atlas 'allen_mouse_25um' or blank"):
        _read(_write(tmp_path), atlas="allen_mouse_10um")


def test_outside_volume_refused(tmp_path):
    path = _edited(tmp_path, lambda c: c["data"].update(data=[np.array([[0, 0, 0], [0, 0, 900]])]))
    with pytest.raises(InputError, match=r"outside the 25 um Allen volume.*not a slice atlas"):
        _read(path)
