"""IBL's histology-track rule: analytic straight tracks and an independent re-derivation."""

from __future__ import annotations

import numpy as np
import pytest

from alignprep.space.histology_track import TIP_SIZE_UM, order_track, place_channels
from alignprep.synthetic.probe_folders import probe_layout

from .. import ibl_track_rule


def _jittered_track(rng: np.random.Generator, n: int, length_um: float) -> np.ndarray:
    entry = np.array([-1200.0, 2500.0, -300.0]) + rng.normal(0, 100, 3)
    direction = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), -1.0])
    direction /= np.linalg.norm(direction)
    along = np.sort(rng.uniform(0, length_um, n))
    return entry + along[:, None] * direction + rng.normal(0, 10, (n, 3))


def test_straight_track_puts_channels_at_their_distance_from_the_deepest_pick():
    tip = np.array([500.0, -2000.0, -3500.0])
    up = np.array([0.3, -0.2, 1.0]) / np.linalg.norm([0.3, -0.2, 1.0])
    picks = tip + np.array([2400.0, 1500.0, 700.0, 0.0])[:, None] * up  # entry first, as drawn
    axial = np.array([0.0, 20.0, 1000.0, 2000.0])
    xyz, beyond = place_channels(order_track(picks), axial)
    want = tip + (axial + TIP_SIZE_UM)[:, None] * up
    assert np.allclose(xyz, want, rtol=0, atol=1e-9)
    assert not beyond.any()


def test_channels_above_the_top_pick_are_clamped_and_flagged():
    picks = np.array([[0.0, 0.0, -1000.0], [0.0, 0.0, -2000.0]])
    axial = np.array([0.0, 799.0, 800.0, 801.0, 3000.0])
    xyz, beyond = place_channels(order_track(picks), axial)
    assert beyond.tolist() == [False, False, False, True, True]
    assert np.allclose(xyz[3:], [0.0, 0.0, -1000.0])  # the rule's clamp: the top pick
    assert np.allclose(xyz[:3, 2], -2000.0 + axial[:3] + TIP_SIZE_UM)


@pytest.mark.parametrize("seed", range(6))
def test_rule_matches_an_independent_rederivation(seed):
    rng = np.random.default_rng(seed)
    picks = _jittered_track(rng, int(rng.integers(2, 25)), rng.uniform(600, 4000))
    picks = picks[rng.permutation(len(picks))]  # any input order
    if seed % 2:
        picks = np.vstack([picks, picks[:2]])  # repeated picks are dropped by the rule
    xy, _ = probe_layout("np1", 384)  # 3820 um of channels: some beyond short tracks
    track = order_track(picks)
    xyz, beyond = place_channels(track, xy[:, 1])
    assert np.abs(xyz - ibl_track_rule.channel_positions(picks, xy[:, 1])).max() < 1e-6
    assert track.length_um == pytest.approx(ibl_track_rule.track_length_um(picks), abs=1e-9)
    assert np.array_equal(beyond, xy[:, 1] + TIP_SIZE_UM > track.length_um)
    assert track.picks_um[0, 2] == picks[:, 2].min()  # deepest first


def test_equal_distances_keep_the_later_pick_as_ibl():
    deepest = [0.0, 0.0, -3000.0]
    a, b = [100.0, 0.0, -2000.0], [-100.0, 0.0, -2000.0]  # same distance from the deepest
    track = order_track(np.array([a, deepest, b, [0.0, 0.0, -1000.0]]))
    assert len(track.picks_um) == 3
    assert track.picks_um[1].tolist() == b  # a comes first by z order, so it is dropped
    assert ibl_track_rule.ordered_picks(np.array([a, deepest, b, [0.0, 0.0, -1000.0]]))[1] == (
        -100.0,
        0.0,
        -2000.0,
    )


@pytest.mark.parametrize(
    "picks",
    [
        [[1.0, 2.0, 3.0]],
        [[1.0, 2.0, -3.0], [1.0, 2.0, -3.0], [1.0, 2.0, -3.0]],
    ],
)
def test_fewer_than_two_distinct_depths_is_refused(picks):
    with pytest.raises(ValueError, match="distinct depth"):
        order_track(np.array(picks))


def test_non_finite_picks_are_refused():
    with pytest.raises(ValueError, match=r"picks \[1\]"):
        order_track(np.array([[0.0, 0.0, -1.0], [0.0, np.nan, -2.0]]))
