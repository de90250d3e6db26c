"""Priorities: each item's critical path (its seconds plus the longest chain waiting for it)."""

from __future__ import annotations

import pytest

from alignprep.orchestration.priority import critical_paths, default_seconds, qc_figures
from alignprep.work import EphysWork, HistologyCcfWork, HistologyWork, QcTrack, QcWork, Work


def _work(name: str) -> Work:
    return Work("m", name)


def test_a_chain_adds_up_and_a_diamond_takes_its_longer_branch():
    # a -> b -> d and a -> c -> d (b and c wait for a; d waits for b and c), e alone
    items = [_work(n) for n in "abcde"]
    waits = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"], "e": []}
    seconds = {"a": 1.0, "b": 2.0, "c": 5.0, "d": 0.5, "e": 3.0}
    paths = critical_paths(items, lambda w: waits[w.name], lambda w: seconds[w.name])
    assert paths == {"a": 6.5, "b": 2.5, "c": 5.5, "d": 0.5, "e": 3.0}


def test_a_wait_for_an_item_outside_the_plan_is_ignored():
    items = [_work("b")]
    paths = critical_paths(items, lambda w: ["not planned"], lambda w: 2.0)
    assert paths == {"b": 2.0}


def _track(stem: str, light_sheet: bool = True) -> QcTrack:
    return QcTrack(stem, "rec", "ProbeB", "", light_sheet)


@pytest.mark.parametrize(
    ("work", "figures"),
    [
        (QcWork("m", "qc mouse", tracks=(_track("a"), _track("b"))), 4),  # centre, 2, atlas
        (QcWork("m", "qc mouse", tracks=(_track("a", light_sheet=False),)), 2),  # centre, atlas
        (QcWork("m", "qc mouse"), 1),  # the centre
        (QcWork("m", "qc tracks", "tracks", (_track("a"), _track("b"), _track("c"))), 3),
        (QcWork("m", "qc probe", "probe", (), probe="rec/ProbeB"), 1),  # a trackless folder
    ],
)
def test_qc_figures_counts_what_the_item_draws(work, figures):
    assert qc_figures(work) == figures


def test_defaults_scale_with_the_work():
    one = EphysWork("m", "e1", lines=(2,))
    four = EphysWork("m", "e4", lines=(2, 3, 4, 5))
    assert default_seconds(four) > default_seconds(one)
    channels = HistologyWork("m", "histology", part="channels")
    assert default_seconds(channels, n_channels=3) == pytest.approx(
        3 * default_seconds(channels, n_channels=1)
    )
    assert default_seconds(HistologyCcfWork("m", "ccf", "c")) > 0
