"""The QC items' key numbers, and the readers of the run's outputs that the figures share.

A reviewer checks a few numbers beside the figures: the picks per track, the tracks inside the
brain (a light-sheet track by the image-space labels, a tracing tool's track by the CCF labels),
the units per probe and the fraction of a probe's channels with a region. Each is counted from
the outputs the QC item draws (never the data root).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import outputs
from ..config import PipelineConfig
from ..work import QcTrack, QcWork
from .context import MouseContext


@dataclass(frozen=True)
class KeyNumber:
    """One number a reviewer checks (picks per track, units per probe, ...)."""

    name: str
    value: float
    description: str
    modality: str
    group: str = ""


class Volumes:
    """The image-space volumes, each read once, on first use."""

    def __init__(self) -> None:
        self._cache: dict[Path, Any] = {}

    def get(self, path: Path) -> Any:
        from ..qc.grid import read_display_volume

        if path not in self._cache:
            self._cache[path] = read_display_volume(path)
        return self._cache[path]


def picks_lps_mm(config: PipelineConfig, mouse_id: str, track: QcTrack) -> np.ndarray | None:
    """A light-sheet track's picks in the image (LPS mm), None when its item wrote none."""
    path = outputs.track_paths(config.results_root, mouse_id, track.stem, "")["spim_fcsv"]
    return outputs.fcsv_points(path.read_bytes()) if path.is_file() else None


def probe_dir(ctx: MouseContext, work: QcWork) -> Path:
    """The probe folder a probe QC item draws."""
    rec, coll = work.probe.split("/", 1)
    return outputs.probe_dir(ctx.config.results_root, ctx.mouse_id, rec, coll)


#: A track is "inside the brain" when its deepest pick and at least this fraction of its picks
#: lie in labelled voxels (the surface pick, at the brain's edge, may fall just outside).
INSIDE_FRACTION = 0.8


def track_ccf_um(config: PipelineConfig, mouse_id: str, track: QcTrack) -> np.ndarray | None:
    """Any track's picks in CCF um, None when its item wrote none."""
    path = outputs.track_paths(config.results_root, mouse_id, track.stem, "")["ccf_um"]
    if not path.is_file():
        return None
    return np.asarray(json.loads(path.read_text())["ccf_mlapdv_um"], dtype=float)


def _mouse_numbers(ctx: MouseContext, work: QcWork, vols: Volumes) -> list[KeyNumber]:
    """Tracks inside the brain (see :data:`INSIDE_FRACTION`): a light-sheet track by the
    image-space labels, a tracing tool's track by the CCF labels; a tool's track's picks."""
    from ..space.atlas import ccf_um_to_ccf_lps_mm

    config, mid = ctx.config, ctx.mouse_id
    labels_path = outputs.histology_paths(config.results_root, mid)["labels"]
    image_labels = ctx.light_sheet and labels_path.is_file()
    if not work.tracks or (not image_labels and all(t.light_sheet for t in work.tracks)):
        return []
    from ..qc.track_slab import fit_line

    inside, out = 0, []
    for t in work.tracks:
        if t.light_sheet:
            picks = picks_lps_mm(config, mid, t) if image_labels else None
            if picks is None:
                continue
            labels = vols.get(labels_path)
            idx = np.round(labels.index_of(picks)).astype(int)
            ok = np.all((idx >= 0) & (idx < labels.data.shape), axis=1)
            labelled = np.zeros(len(picks), dtype=bool)
            labelled[ok] = labels.data[tuple(idx[ok].T)] != 0
        else:
            ccf_um = track_ccf_um(config, mid, t)
            if ccf_um is None:
                continue
            picks = ccf_um_to_ccf_lps_mm(ccf_um)
            labelled = ctx.labels.ids_at(picks) != 0
            out.append(
                KeyNumber(f"picks {t.stem}", len(picks), "Picks of the track", "SPIM", t.stem)
            )
        deepest = int(np.argmax(fit_line(picks).along_mm(picks))) if len(picks) > 1 else 0
        inside += int(labelled[deepest] and labelled.mean() >= INSIDE_FRACTION)
    kinds = {t.light_sheet for t in work.tracks}
    where = {
        frozenset({True}): f"labels_in_{mid}",
        frozenset({False}): "the CCF labels",
    }.get(frozenset(kinds), f"labels_in_{mid} (light-sheet tracks) or the CCF labels (others)")
    description = (
        f"Tracks whose deepest pick and at least {INSIDE_FRACTION:.0%} of all picks lie in a "
        f"labelled voxel of {where} (of {len(work.tracks)} planned)"
    )
    return [KeyNumber("tracks inside the brain", inside, description, "SPIM"), *out]


def _track_numbers(ctx: MouseContext, work: QcWork) -> list[KeyNumber]:
    out = []
    for t in work.tracks:
        picks = picks_lps_mm(ctx.config, ctx.mouse_id, t)
        if picks is not None:
            out.append(
                KeyNumber(f"picks {t.stem}", len(picks), "Picks of the track", "SPIM", t.stem)
            )
    return out


def _probe_numbers(ctx: MouseContext, work: QcWork) -> list[KeyNumber]:
    from ..qc.probe_data import REGION_IDS

    folder, name = probe_dir(ctx, work), work.probe
    out = []
    clusters = folder / "clusters.channels.npy"
    if clusters.is_file():
        out.append(
            KeyNumber(
                f"units {name}", len(np.load(clusters)), "Units of the probe", "ECEPHYS", name
            )
        )
    regions = outputs.channel_regions_dir(folder) / REGION_IDS
    if regions.is_file():
        ids = np.load(regions)
        description = (
            "Fraction of the probe's channels inside a labelled CCF region (from the histology "
            "track, before alignment)"
        )
        fraction = round(float(np.mean(ids != 0)), 6) if ids.size else 0.0
        out.append(
            KeyNumber(f"channels with a region {name}", fraction, description, "ECEPHYS", name)
        )
    return out


def key_numbers(ctx: MouseContext, work: QcWork, vols: Volumes) -> list[KeyNumber]:
    """The key numbers of one QC item (its scope decides which)."""
    if work.scope == "mouse":
        return _mouse_numbers(ctx, work, vols)
    if work.scope == "tracks":
        return _track_numbers(ctx, work)
    return _probe_numbers(ctx, work)
