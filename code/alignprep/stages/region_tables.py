"""Channel and unit brain regions of one GUI shank, the region-along-track table, the ALF arrays.

Pure numpy/pandas (no I/O): :mod:`.channel_regions` reads the probe folder and writes what these
functions return. Regions come from the run's lateralized CCF labels (right hemisphere +id,
left -id, 0 = void); the Allen id reported in IBL's convention is its absolute value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..space import atlas
from ..space.histology_track import OrderedTrack, place_channels

PROVENANCE = "Histology track"
"""IBL's name for a trajectory and channels computed from the picks alone (no ephys alignment)."""


@dataclass(frozen=True)
class ShankChannels:
    """Where the channels of one GUI shank sit by IBL's histology-track rule."""

    gui_shank: int  # 0-based x-group rank (the ``_shank{N}`` suffix is N = gui_shank + 1)
    rows: np.ndarray  # rows of ``channels.*``, in that order everywhere below
    axial_um: np.ndarray  # channels.localCoordinates y
    lateral_um: np.ndarray  # channels.localCoordinates x (with the shank offset)
    bregma_um: np.ndarray  # (n, 3) IBL bregma x, y, z
    ccf_um: np.ndarray  # (n, 3) CCF ML, AP, DV from the corner voxel centre
    lateralized_id: np.ndarray  # signed Allen id (left hemisphere negative, 0 = void)
    beyond_track: np.ndarray  # bool: clamped to an end pick by the rule

    @property
    def allen_id(self) -> np.ndarray:
        """Allen ids in IBL's convention (positive)."""
        return np.abs(self.lateralized_id)

    @property
    def acronym(self) -> np.ndarray:
        """Allen acronyms (``void`` outside the brain)."""
        return np.asarray(atlas.region_acronyms(self.allen_id), dtype=str)


@dataclass(frozen=True)
class Units:
    """The clusters of a probe folder: peak channel row and IBL ``label == 1`` (None: unknown)."""

    peak_row: np.ndarray  # clusters.channels
    good: np.ndarray | None  # bool per cluster, from clusters.metrics.csv ``label``


def shank_channels(
    track: OrderedTrack,
    gui_shank: int,
    rows: np.ndarray,
    local_xy_um: np.ndarray,
    ids_at_ccf_lps_mm: Callable[[np.ndarray], np.ndarray],
) -> ShankChannels:
    """Place the channels ``rows`` of ``local_xy_um`` along ``track`` and look up their regions.

    ``ids_at_ccf_lps_mm`` maps CCF physical LPS mm points to lateralized Allen ids
    (:meth:`alignprep.inputs.references.CcfLabels.ids_at`).
    """
    rows = np.asarray(rows, dtype=np.int64)
    xy = np.asarray(local_xy_um, dtype=float)[rows]
    bregma, beyond = place_channels(track, xy[:, 1])
    ccf_um = atlas.bregma_um_to_ccf_um(bregma)
    ids = np.asarray(ids_at_ccf_lps_mm(atlas.ccf_um_to_ccf_lps_mm(ccf_um)), dtype=np.int64)
    return ShankChannels(gui_shank, rows, xy[:, 1], xy[:, 0], bregma, ccf_um, ids, beyond)


def shank_units(shank: ShankChannels, units: Units | None) -> np.ndarray:
    """Cluster ids (= rows of ``clusters.*``) whose peak channel is on this shank."""
    if units is None:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.isin(units.peak_row, shank.rows))


def _position(shank: ShankChannels, channel_rows: np.ndarray) -> np.ndarray:
    """Index into the shank's arrays of each of ``channel_rows``."""
    lookup = {int(r): k for k, r in enumerate(shank.rows)}
    return np.array([lookup[int(r)] for r in channel_rows], dtype=np.int64)


def region_runs(shank: ShankChannels, units: Units | None) -> pd.DataFrame:
    """One row per contiguous region along the shank, from the tip up.

    Channels are ordered by axial position (then lateral); a run ends where the lateralized id
    changes. Axial start / end are the lowest and highest channel of the run (um, the
    ``channels.localCoordinates`` y frame). Units count by peak channel; good units are those
    with IBL ``label == 1`` (empty when the metrics have no label).
    """
    order = np.lexsort((shank.lateral_um, shank.axial_um))
    ids = shank.lateralized_id[order]
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    ends = np.concatenate([starts[1:], [len(ids)]])
    unit_ids = shank_units(shank, units)
    unit_pos = _position(shank, units.peak_row[unit_ids]) if len(unit_ids) else unit_ids
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    unit_run = np.searchsorted(starts, rank[unit_pos], side="right") - 1
    acronyms = shank.acronym[order]
    table = []
    for k, (a, b) in enumerate(zip(starts, ends, strict=True)):
        in_run = unit_run == k
        good: int | None = 0  # no clusters at all: no good unit
        if units is not None:
            good = None if units.good is None else int(np.sum(units.good[unit_ids[in_run]]))
        table.append(
            {
                "shank": shank.gui_shank + 1,
                "acronym": acronyms[a],
                "allen_id": int(abs(ids[a])),
                "lateralized_id": int(ids[a]),
                "axial_start_um": float(shank.axial_um[order[a]]),
                "axial_end_um": float(shank.axial_um[order[b - 1]]),
                "n_channels": int(b - a),
                "n_beyond_track": int(np.sum(shank.beyond_track[order[a:b]])),
                "n_units": int(np.sum(in_run)),
                "n_good_units": good,
            }
        )
    frame = pd.DataFrame(table)
    frame["n_good_units"] = frame["n_good_units"].astype("Int64")  # empty: no IBL label
    return frame


def shank_document(
    shank: ShankChannels, track: OrderedTrack, units: Units | None, header: dict[str, Any]
) -> dict[str, Any]:
    """The per-shank JSON: ``header`` (provenance, files) + the rule's track + every channel."""
    acronyms = shank.acronym
    channels = [
        {
            "row": int(shank.rows[k]),
            "axial_um": float(shank.axial_um[k]),
            "lateral_um": float(shank.lateral_um[k]),
            "bregma_um": np.round(shank.bregma_um[k], 3).tolist(),
            "ccf_um": np.round(shank.ccf_um[k], 3).tolist(),
            "allen_id": int(shank.allen_id[k]),
            "acronym": str(acronyms[k]),
            "lateralized_id": int(shank.lateralized_id[k]),
            "beyond_track": bool(shank.beyond_track[k]),
        }
        for k in np.argsort(shank.rows, kind="stable")
    ]
    unit_list = []
    for cluster in shank_units(shank, units):
        assert units is not None
        k = int(_position(shank, units.peak_row[[cluster]])[0])
        unit_list.append(
            {
                "cluster_id": int(cluster),
                "peak_channel_row": int(shank.rows[k]),
                "bregma_um": np.round(shank.bregma_um[k], 3).tolist(),
                "allen_id": int(shank.allen_id[k]),
                "acronym": str(acronyms[k]),
                "lateralized_id": int(shank.lateralized_id[k]),
                "beyond_track": bool(shank.beyond_track[k]),
                "good": None if units.good is None else bool(units.good[cluster]),
            }
        )
    return {
        **header,
        "provenance": PROVENANCE,
        "gui_shank": shank.gui_shank + 1,
        "track": {
            "ordered_picks_bregma_um": np.round(track.picks_um, 3).tolist(),
            "distance_along_track_um": np.round(track.distance_um, 3).tolist(),
            "length_um": round(track.length_um, 3),
        },
        "channels": channels,
        "units": unit_list,
    }


def alf_arrays(
    n_channels: int, shanks: list[ShankChannels], units: Units | None
) -> dict[str, np.ndarray]:
    """``channels.*`` / ``clusters.*`` region datasets of the whole folder (IBL conventions).

    ``channels.mlapdv`` / ``clusters.mlapdv``: IBL bregma um (x = ML, y = AP, z = DV), rounded to
    int32 (ibllib truncates; rounding is within 0.5 um). Ids: positive Allen ids, int32.
    Acronyms: a fixed-width unicode array (loads without pickle). Every channel of the folder
    must belong to one of ``shanks`` (``ValueError`` otherwise).
    """
    mlapdv = np.zeros((n_channels, 3), dtype=np.int32)
    ids = np.zeros(n_channels, dtype=np.int32)
    acronym = np.full(n_channels, "", dtype=object)
    covered = np.zeros(n_channels, dtype=bool)
    for shank in shanks:
        mlapdv[shank.rows] = np.rint(shank.bregma_um).astype(np.int32)
        ids[shank.rows] = shank.allen_id.astype(np.int32)
        acronym[shank.rows] = shank.acronym
        covered[shank.rows] = True
    if not covered.all():
        missing = np.flatnonzero(~covered)
        raise ValueError(f"channels {missing[:10].tolist()} ({missing.size} in all) have no track")
    out = {"channels.mlapdv.npy": mlapdv, "channels.brainLocationIds_ccf_2017.npy": ids}
    if units is not None:
        peak = units.peak_row
        out["clusters.mlapdv.npy"] = mlapdv[peak]
        out["clusters.brainLocationIds_ccf_2017.npy"] = ids[peak]
        out["clusters.brainLocationAcronyms_ccf_2017.npy"] = acronym[peak].astype(str)
    return out
