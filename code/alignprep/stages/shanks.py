"""GUI shank numbering of a probe folder: the ``_shank{N}`` suffix of the pick files.

Both GUIs count shanks from the folder's own channel table: ``n_shanks = 1 + #(gaps > 100 um
between sorted unique x of channels.localCoordinates)``, and shank ``s`` is the rank of an
x-group in increasing x among the recorded channels. ``N = s + 1``; no suffix when the folder has
one GUI shank (inputs.md §2).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..inputs.manifest import Manifest, ManifestRow

SHANK_GAP_UM = 100.0


def x_groups(x_um: np.ndarray) -> np.ndarray:
    """GUI shank rank of every channel from its x coordinate (0-based, increasing x)."""
    x = np.asarray(x_um, dtype=float)
    unique = np.unique(x)
    rank_of_unique = np.concatenate([[0], np.cumsum(np.diff(unique) > SHANK_GAP_UM)])
    return rank_of_unique[np.searchsorted(unique, x)]


def suffix_from_channels(x_um: np.ndarray, shank_ind: np.ndarray, ephys_shank: int | None) -> str:
    """Suffix of the rows of ``ephys_shank`` (0 when unset) from a folder's channel table."""
    ranks = x_groups(x_um)
    if ranks.max() == 0:
        return ""
    mine = np.unique(ranks[np.asarray(shank_ind) == (ephys_shank or 0)])
    if len(mine) != 1:
        raise ValueError(
            f"ephys shank {ephys_shank}: its channels span GUI shanks {mine.tolist()} "
            "(expected exactly one x-group)"
        )
    return f"_shank{int(mine[0]) + 1}"


def _channel_table(probe: Path) -> tuple[np.ndarray, np.ndarray] | None:
    coords, shanks = probe / "channels.localCoordinates.npy", probe / "channels.shankInd.npy"
    if not coords.is_file():
        return None
    xy = np.load(coords, allow_pickle=False)
    ind = np.load(shanks, allow_pickle=False) if shanks.is_file() else np.zeros(len(xy), dtype=int)
    return xy[:, 0], ind


def gui_shank_suffixes(
    config: PipelineConfig, manifest: Manifest
) -> tuple[dict[int, str], dict[int, str]]:
    """Suffix per manifest line (and why a line has none), from the folder's channel table.

    Without a channel table (ephys not extracted yet): a folder with one row of shank 0 or
    unset gets no suffix; otherwise ``_shank{ephys_shank + 1}``, which is what the GUIs derive
    when every shank of the probe was recorded.
    """
    folders: dict[tuple[str, str], list[ManifestRow]] = defaultdict(list)
    for row in manifest.rows:
        folders[(row.recording_id, row.ephys_collection)].append(row)
    out: dict[int, str] = {}
    problems: dict[int, str] = {}
    for (recording, collection), rows in folders.items():
        probe = outputs.probe_dir(config.results_root, manifest.mouse_id, recording, collection)
        try:
            table = _channel_table(probe)
        except (ValueError, OSError, IndexError) as exc:  # a damaged table of an earlier run
            for row in rows:
                out[row.line] = ""
                problems[row.line] = f"{probe}: unreadable channel table ({exc})"
            continue
        for row in rows:
            if table is not None:
                try:
                    out[row.line] = suffix_from_channels(*table, row.ephys_shank)
                except ValueError as exc:
                    out[row.line] = ""
                    problems[row.line] = f"{probe}: {exc}"
            elif len(rows) == 1 and not row.ephys_shank:
                out[row.line] = ""
            else:
                out[row.line] = f"_shank{(row.ephys_shank or 0) + 1}"
    return out, problems
