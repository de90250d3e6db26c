"""Plain CSV tracks with named columns, CCF um or IBL bregma um: the header decides, not order.

Columns (any order, any case, surrounding blanks ignored):

* ``ml_um, ap_um, dv_um``: Allen CCF micrometres (F7: ML toward the right, AP posterior, DV
  ventral, from the centre of the corner voxel), as ``iblatlas`` and the Allen volumes index them;
* ``x_um, y_um, z_um``: IBL bregma micrometres (x right, y anterior, z dorsal), converted with
  iblatlas's own conversion (:func:`alignprep.space.atlas.bregma_um_to_ccf_um`).

A ``track`` column, when present, names the track of each row (several tracks in one file);
without it the whole file is one track. Rows keep the file's order (entry first). A file with
both sets of columns, or neither, is refused: the header must say which frame it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..space import atlas
from .ccf_tracks import CcfTrack, TrackHints, as_points

CCF_COLUMNS = ("ml_um", "ap_um", "dv_um")
BREGMA_COLUMNS = ("x_um", "y_um", "z_um")
TRACK_COLUMN = "track"


def read(path: Path, track: str, hints: TrackHints) -> CcfTrack:
    """One track of a CSV, in CCF um (see the module docstring)."""
    del hints  # a CSV names its frame in its header
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable UTF-8 CSV with a header: {exc}", file=path) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    has_ccf = all(c in frame.columns for c in CCF_COLUMNS)
    has_bregma = all(c in frame.columns for c in BREGMA_COLUMNS)
    if has_ccf == has_bregma:
        found = "both" if has_ccf else "neither"
        raise InputError(
            f"columns {list(frame.columns)} hold {found} of the sets {', '.join(CCF_COLUMNS)} "
            f"(Allen CCF um) and {', '.join(BREGMA_COLUMNS)} (IBL bregma um); expected exactly "
            "one, so that the header says the frame",
            file=path,
            layer=track,
        )
    if TRACK_COLUMN in frame.columns:
        names = frame[TRACK_COLUMN].str.strip()
        rows = frame[names == track]
        if rows.empty:
            available = sorted(set(names))
            raise InputError(
                f"no row has {TRACK_COLUMN} = {track!r}; tracks in the file: {available}",
                file=path,
                layer=track,
            )
    else:
        rows = frame
    columns = CCF_COLUMNS if has_ccf else BREGMA_COLUMNS
    cells = rows[list(columns)].apply(lambda c: c.str.strip())
    try:
        values = cells.astype(float).to_numpy()
    except ValueError as exc:
        raise InputError(
            f"a cell of {', '.join(columns)} is not a number ({exc})", file=path, layer=track
        ) from None
    points = as_points(values, f"columns {', '.join(columns)}", path, track)
    ccf_um = points if has_ccf else atlas.bregma_um_to_ccf_um(points)
    return CcfTrack(path, track, np.asarray(ccf_um, dtype=float), "ccf_csv")
