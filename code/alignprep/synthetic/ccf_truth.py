"""Known CCF tracks for the tracing-tool formats: deliberately asymmetric, seeded.

The truth every format test and the ``--demo ccf`` dataset start from: tracks in the left
hemisphere (bregma x < 0), oblique in both the coronal and the sagittal plane, so that a
mirrored ML axis, a swapped pair of axes or a reversed AP axis moves every point by millimetres.
"""

from __future__ import annotations

import numpy as np

from ..space import atlas

#: Entry and tip of the reference track in CCF um (ML right+, AP posterior+, DV ventral+).
ENTRY_CCF_UM = (4012.3, 6213.7, 1187.9)  # left of the midline (bregma ML 5739 um)
TIP_CCF_UM = (3297.1, 7040.6, 4391.2)  # 0.7 mm more lateral-left, 0.8 mm posterior, 3.2 mm down


def asymmetric_track_ccf_um(
    n_points: int = 9,
    seed: int = 0,
    entry_um: tuple[float, float, float] = ENTRY_CCF_UM,
    tip_um: tuple[float, float, float] = TIP_CCF_UM,
    jitter_um: float = 6.0,
) -> np.ndarray:
    """(n, 3) picks in CCF um from entry to tip, with seeded jitter off the line."""
    rng = np.random.default_rng(seed)
    entry, tip = np.asarray(entry_um, float), np.asarray(tip_um, float)
    along = np.linspace(0.0, 1.0, n_points)[:, None]
    points = entry + along * (tip - entry)
    points[1:-1] += rng.normal(0.0, jitter_um, (n_points - 2, 3))
    return points


def second_track_ccf_um() -> np.ndarray:
    """A different track in the right hemisphere (six picks): the other probe of a file, so
    that selecting the wrong probe shows."""
    return asymmetric_track_ccf_um(
        n_points=6, seed=3, entry_um=(7400.0, 8000.0, 900.0), tip_um=(7800.0, 8600.0, 3800.0)
    )


def max_error_um(ccf_um: np.ndarray, truth_ccf_um: np.ndarray) -> float:
    """The largest coordinate difference of two tracks in IBL bregma um (iblatlas's conversion)."""
    return float(np.abs(bregma_truth_um(ccf_um) - bregma_truth_um(truth_ccf_um)).max())


def on_grid(ccf_um: np.ndarray, voxel_um: float) -> np.ndarray:
    """The points moved to the nearest voxel centre of a ``voxel_um`` grid (voxel k at k*voxel)."""
    return np.round(np.asarray(ccf_um, float) / voxel_um) * voxel_um


def bregma_truth_um(ccf_um: np.ndarray) -> np.ndarray:
    """The IBL bregma um of CCF um points (iblatlas's own conversion)."""
    return atlas.ccf_um_to_bregma_um(ccf_um)


def mirrored_ml(ccf_um: np.ndarray, voxel_um: float = 25.0) -> np.ndarray:
    """The points as a reader that flips the Allen volume's ML index axis would give them
    (a flipped-hemisphere reading), in CCF um."""
    out = np.array(ccf_um, float)
    last_um = atlas.CCF_EXTENT_UM[0] - voxel_um  # centre of the last ML voxel
    out[:, 0] = last_um - out[:, 0]
    return out
