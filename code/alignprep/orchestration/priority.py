"""Which ready item a free worker takes: the one heading the longest chain of work still to do.

When more items are ready than workers are free, the order decides when the last one ends.
Each item's priority is its critical path: its own estimated seconds plus the longest chain of
items that wait for it (list scheduling's classic rule). An ephys item, which the tracks, the
channel regions and the probe QC wait for, goes before a leaf of the same length (a channel's
CCF-space QC volume, which nothing reads in the run); the longest QC item goes before shorter
ones, so that the run does not end with one worker drawing alone.

An item's estimate is what it took when it last ran on these results (the re-run state), else
the default of its kind below, measured on the demo with 2 workers (QC: per figure). Only the
order depends on the estimates, never an output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..work import (
    ChannelRegionsWork,
    EphysWork,
    HistologyCcfWork,
    HistologyWork,
    QcWork,
    TrackWork,
    Work,
)

#: Seconds per item of each kind on the demo (``tests/benchmarks/executors.py``, 2 workers).
HISTOLOGY_CHANNEL_S = 0.8  # the channels part, per channel (read the level, resample onto G)
HISTOLOGY_ATLAS_S = 2.5  # the atlas part (the CCF template and labels warped onto G)
HISTOLOGY_CCF_S = 1.1  # one channel's CCF-space QC volume
EPHYS_S = 1.0  # a probe folder's converter run and ALF
EPHYS_PER_ROW_S = 0.2  # each manifest row of the folder (a shank group)
SMALL_S = 0.05  # a track, a probe folder's channel regions
QC_FIGURE_S = 0.5  # one QC figure


def default_seconds(work: Work, n_channels: int = 1) -> float:
    """The default estimate of ``work`` (see the constants above)."""
    if isinstance(work, HistologyCcfWork):
        return HISTOLOGY_CCF_S
    if isinstance(work, HistologyWork):
        return HISTOLOGY_ATLAS_S if work.part == "atlas" else HISTOLOGY_CHANNEL_S * n_channels
    if isinstance(work, EphysWork):
        return EPHYS_S + EPHYS_PER_ROW_S * len(work.lines)
    if isinstance(work, (TrackWork, ChannelRegionsWork)):
        return SMALL_S
    if isinstance(work, QcWork):
        return QC_FIGURE_S * qc_figures(work)
    return SMALL_S


def qc_figures(work: QcWork) -> int:
    """How many figures a QC item draws (at least one): the mouse an overlay through the
    brain centre and one per light-sheet track, and the atlas view; the tracks one slab per
    track; a probe folder one summary per shank."""
    if work.scope == "mouse":
        return 1 + sum(t.light_sheet for t in work.tracks) + bool(work.tracks)
    return max(1, len(work.tracks))


def critical_paths(
    items: Iterable[Work],
    waits: Callable[[Work], Iterable[str]],
    seconds: Callable[[Work], float],
) -> dict[str, float]:
    """Each item's estimated seconds plus the longest chain of the items waiting for it."""
    items = list(items)
    dependants: dict[str, list[Work]] = {w.name: [] for w in items}
    for work in items:
        for name in waits(work):
            if name in dependants:
                dependants[name].append(work)
    paths: dict[str, float] = {}

    def path(work: Work) -> float:
        if work.name not in paths:
            paths[work.name] = seconds(work) + max(
                (path(d) for d in dependants[work.name]), default=0.0
            )
        return paths[work.name]

    for work in items:
        path(work)
    return paths
