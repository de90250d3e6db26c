"""``ccf_csv`` tracks: named columns in CCF um or IBL bregma um; the header decides the frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alignprep.errors import InputError
from alignprep.inputs import tracks_ccf_csv
from alignprep.inputs.ccf_tracks import TrackHints
from alignprep.space.atlas import ccf_um_to_bregma_um
from alignprep.synthetic.ccf_truth import asymmetric_track_ccf_um, bregma_truth_um

TRUTH = asymmetric_track_ccf_um()


def _write(path, columns: dict[str, np.ndarray], order: list[str]) -> None:
    pd.DataFrame({c: columns[c] for c in order}).to_csv(path, index=False, float_format="%.4f")


def _bregma(path, track="t") -> np.ndarray:
    return ccf_um_to_bregma_um(tracks_ccf_csv.read(path, track, TrackHints()).ccf_um)


@pytest.mark.parametrize(
    "order",
    [["ml_um", "ap_um", "dv_um"], ["dv_um", "ml_um", "ap_um"], ["ap_um", "dv_um", "ml_um"]],
)
def test_ccf_columns_in_any_order_give_the_truth(tmp_path, order):
    path = tmp_path / "track.csv"
    _write(path, dict(zip(["ml_um", "ap_um", "dv_um"], TRUTH.T, strict=True)), order)
    np.testing.assert_allclose(_bregma(path), bregma_truth_um(TRUTH), rtol=0, atol=1e-3)
    assert (_bregma(path)[:, 0] < 0).all()  # the left hemisphere stays left


def test_bregma_columns_are_converted_by_iblatlas(tmp_path):
    path = tmp_path / "track.csv"
    xyz = bregma_truth_um(TRUTH)
    _write(path, dict(zip(["x_um", "y_um", "z_um"], xyz.T, strict=True)), ["z_um", "x_um", "y_um"])
    track = tracks_ccf_csv.read(path, "t", TrackHints())
    np.testing.assert_allclose(track.ccf_um, TRUTH, rtol=0, atol=1e-3)


def test_negative_control_reading_by_position_would_fail(tmp_path):
    """A reader that trusted the column order instead of the header would move the track."""
    path = tmp_path / "track.csv"
    order = ["dv_um", "ml_um", "ap_um"]
    _write(path, dict(zip(["ml_um", "ap_um", "dv_um"], TRUTH.T, strict=True)), order)
    by_position = pd.read_csv(path).to_numpy()
    error_um = np.abs(ccf_um_to_bregma_um(by_position) - bregma_truth_um(TRUTH)).max()
    assert error_um > 1000.0
    np.testing.assert_allclose(_bregma(path), bregma_truth_um(TRUTH), rtol=0, atol=1e-3)


def test_track_column_selects_rows_and_keeps_their_order(tmp_path):
    path = tmp_path / "tracks.csv"
    other = TRUTH + np.array([500.0, 0.0, 0.0])
    frame = pd.DataFrame(np.vstack([other, TRUTH]), columns=["ML_um", "AP_um", "DV_um"])
    frame.insert(0, "Track", ["a"] * len(other) + ["b"] * len(TRUTH))
    frame.to_csv(path, index=False)
    np.testing.assert_allclose(_bregma(path, "b"), bregma_truth_um(TRUTH), rtol=0, atol=1e-6)
    with pytest.raises(
        InputError, match=r"no row has track = 'c'; tracks in the file: \['a', 'b'\]"
    ):
        _bregma(path, "c")


@pytest.mark.parametrize(
    ("header", "why"),
    [
        ("ml_um,ap_um,dv_um,x_um,y_um,z_um", "both of the sets"),
        ("ml,ap,dv", "neither of the sets"),
    ],
)
def test_a_header_that_does_not_say_the_frame_is_refused(tmp_path, header, why):
    path = tmp_path / "track.csv"
    n = len(header.split(","))
    path.write_text(header + "\n" + ",".join(["1"] * n) + "\n" + ",".join(["2"] * n) + "\n")
    with pytest.raises(InputError, match=why) as err:
        _bregma(path)
    assert str(path) in str(err.value)


def test_a_cell_that_is_not_a_number_is_refused(tmp_path):
    path = tmp_path / "track.csv"
    path.write_text("ml_um,ap_um,dv_um\n1,2,3\n4,five,6\n")
    with pytest.raises(InputError, match="not a number"):
        _bregma(path)
