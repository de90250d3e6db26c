"""ANTs itself, the reference the capsule's transform chains are compared with."""

from __future__ import annotations

import numpy as np

from alignprep.space.transforms import Chain


def apply_to_points(chain: Chain, points_lps_mm: np.ndarray) -> np.ndarray:
    """Map (n, 3) LPS mm points through ``chain`` with ``ants.apply_transforms_to_points``."""
    import ants
    import pandas as pd

    pts = np.atleast_2d(np.asarray(points_lps_mm, dtype=float))
    frame = pd.DataFrame(pts, columns=["x", "y", "z"])
    out = ants.apply_transforms_to_points(
        3, frame, [str(p) for p in chain.files], whichtoinvert=list(chain.invert)
    )
    return out[["x", "y", "z"]].to_numpy(dtype=float)
