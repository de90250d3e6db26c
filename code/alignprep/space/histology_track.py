"""IBL's "Histology track" rule: channels placed along the picked track (IBL bregma um).

The rule of ibllib's ``pipes.histology.get_brain_regions`` / ``interpolate_along_track``,
re-derived here (not copied):

1. Picks are ordered by depth: by z (dorsal+) ascending, so the deepest pick comes first, then
   by the straight-line distance from that deepest pick. A pick at exactly the same distance as
   the one before it is dropped (IBL removes such duplicates; "depths must be strictly
   increasing"). Fewer than 2 picks left is an error: there is no track to walk along.
2. Distance along the track = cumulative length of the polyline through the ordered picks,
   0 at the deepest pick.
3. A channel sits at distance ``axial_um + TIP_SIZE_UM`` (``channels.localCoordinates`` y plus
   the 200 um probe tip) and its position is the per-axis linear interpolation of the picks at
   that distance (``numpy.interp``). Beyond either end the position is clamped to the end pick,
   exactly as the rule does; such channels are flagged ``beyond_track``.

Everything is in micrometres; ibllib works in metres (the same numbers up to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TIP_SIZE_UM = 200.0
"""Distance from the deepest pick to the probe's first channel row (ibllib / neuropixel)."""


@dataclass(frozen=True)
class OrderedTrack:
    """Picks in IBL's order (deepest first, duplicates dropped) and their distance along."""

    picks_um: np.ndarray  # (n, 3) IBL bregma um, deepest first
    distance_um: np.ndarray  # (n,) cumulative polyline length from the deepest pick
    source_index: np.ndarray  # (n,) index of each kept pick in the input order

    @property
    def length_um(self) -> float:
        """Length of the polyline from the deepest pick to the last one."""
        return float(self.distance_um[-1])


def order_track(picks_bregma_um: np.ndarray) -> OrderedTrack:
    """Order picks as IBL does; ``ValueError`` when fewer than 2 distinct depths remain."""
    picks = np.asarray(picks_bregma_um, dtype=float)
    if picks.ndim != 2 or picks.shape[1] != 3 or len(picks) == 0:
        raise ValueError(f"picks must be an (n, 3) array of x, y, z um; got shape {picks.shape}")
    if not np.all(np.isfinite(picks)):
        bad = np.flatnonzero(~np.all(np.isfinite(picks), axis=1)).tolist()
        raise ValueError(f"picks {bad} (0-based) are not finite numbers")
    by_z = np.argsort(picks[:, 2], kind="stable")
    deepest = picks[by_z[0]]
    radial = np.linalg.norm(picks[by_z] - deepest, axis=1)
    by_radial = np.argsort(radial, kind="stable")
    order, radial = by_z[by_radial], radial[by_radial]
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = np.diff(radial) != 0  # of two equal distances, the first one goes (as IBL)
    order = order[keep]
    if len(order) < 2:
        raise ValueError(
            f"the {len(picks)} pick(s) give {len(order)} distinct depth(s) from the deepest "
            "pick; the rule needs at least 2 to define a track"
        )
    ordered = picks[order]
    steps = np.linalg.norm(np.diff(ordered, axis=0), axis=1)
    distance = np.concatenate([[0.0], np.cumsum(steps)])
    return OrderedTrack(ordered, distance, order)


def interpolate_along_track(track: OrderedTrack, distance_um: np.ndarray) -> np.ndarray:
    """(n, 3) points at ``distance_um`` along the track (clamped to its ends)."""
    d = np.asarray(distance_um, dtype=float)
    return np.column_stack(
        [np.interp(d, track.distance_um, track.picks_um[:, k]) for k in range(3)]
    )


def place_channels(track: OrderedTrack, axial_um: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Channel positions (IBL bregma um) from their axial position, and ``beyond_track``.

    ``beyond_track`` is true where ``axial_um + TIP_SIZE_UM`` falls outside the picked
    polyline (above its top pick or below its deepest one): the position there is the clamped
    end pick, as in IBL's rule, and says nothing about where the channel really is.
    """
    distance = np.asarray(axial_um, dtype=float) + TIP_SIZE_UM
    beyond = (distance > track.distance_um[-1]) | (distance < 0.0)
    return interpolate_along_track(track, distance), beyond
