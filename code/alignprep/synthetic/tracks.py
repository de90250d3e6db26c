"""Synthetic probe tracks: CCF placement, Neuroglancer annotation files, main state, manifest."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .layout import Layout, annotation_source, annotations, dimensions

ANNOTATION_DIR = "probe_annotations"
SESSION = "2025-01-15_10-00-00"
SORTED_AT = "2025-01-16_08-00-00"


@dataclass(frozen=True)
class TrackSpec:
    """One traced track: where it enters the brain (CCF um), where it goes, how it is named."""

    track_id: str
    probe_file: str
    ephys_collection: str
    histology_shank: int | None
    ephys_shank: int | None
    entry_ml_ap_um: tuple[float, float]
    direction_mlapdv: tuple[float, float, float]  # entry -> tip, any length
    length_um: float
    n_points: int = 10
    jitter_um: float = 8.0

    def points_ccf_um(
        self, center_um: np.ndarray, semi_um: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """(n, 3) picks in CCF um (ML, AP, DV): entry 30 um above the brain surface first."""
        ml, ap = self.entry_ml_ap_um
        q = 1 - ((ml - center_um[0]) / semi_um[0]) ** 2 - ((ap - center_um[1]) / semi_um[1]) ** 2
        if q <= 0:
            raise ValueError(f"track {self.track_id}: entry (ML {ml}, AP {ap}) misses the brain")
        surface_dv = center_um[2] - semi_um[2] * np.sqrt(q)
        entry = np.array([ml, ap, surface_dv - 30.0])
        d = np.asarray(self.direction_mlapdv, float)
        d /= np.linalg.norm(d)
        along = np.linspace(0, self.length_um, self.n_points)[:, None]
        return entry + along * d + rng.normal(0, self.jitter_um, (self.n_points, 3))

    def manifest_fields(self) -> dict[str, Any]:
        """The manifest cells this track contributes (besides mouse and recording)."""
        return {
            "probe_file": self.probe_file,
            "histology_track_id": self.track_id,
            "ephys_collection": self.ephys_collection,
            "histology_shank": self.histology_shank,
            "ephys_shank": self.ephys_shank,
        }


def four_shank_tracks(
    ap_um: float, length_um: float, probe: str = "ProbeB", ml_um: float = 6100.0
) -> tuple[TrackSpec, ...]:
    """A 4-shank NP2.0 probe (default "ProbeB"): shanks 250 um apart in ML, right hemisphere."""
    return tuple(
        TrackSpec(
            f"{probe}_{'abcd'[k]}",
            f"{probe}_annotations",
            probe,
            k,
            k,
            (ml_um + 250.0 * k, ap_um),
            (0.0, -150.0, 2000.0),
            length_um,
        )
        for k in range(4)
    )


def single_shank_track(
    ap_um: float, length_um: float, n_points: int, probe: str = "ProbeA"
) -> TrackSpec:
    """An NP1.0 probe (one shank, default "ProbeA") in the left hemisphere."""
    return TrackSpec(
        f"{probe}_track",
        f"{probe}_annotations",
        probe,
        None,
        None,
        (4800.0, ap_um),
        (250.0, 200.0, 2000.0),
        length_um,
        n_points=n_points,
    )


def default_tracks() -> tuple[TrackSpec, ...]:
    """An NP1.0 single-shank probe (left) and a 4-shank NP2.0 probe (right, 250 um pitch)."""
    return (single_shank_track(1700.0, 2200.0, 12), *four_shank_tracks(2300.0, 1800.0))


def four_probe_tracks() -> tuple[TrackSpec, ...]:
    """The default two probes, and two more of the same kinds 600 um further posterior
    ("ProbeC", NP1.0 left; "ProbeD", 4-shank NP2.0 right): a mouse with four probe folders."""
    return (
        *default_tracks(),
        single_shank_track(1100.0, 2200.0, 12, probe="ProbeC"),
        *four_shank_tracks(1700.0, 1800.0, probe="ProbeD"),
    )


def sorted_recording(mouse_id: str) -> str:
    """The sorted-asset folder name of the synthetic session."""
    return f"ecephys_{mouse_id}_{SESSION}_sorted_{SORTED_AT}"


def write_annotations(
    data: Path,
    spec: Any,
    truth_tracks: dict[str, dict],
    layout: Layout | None = None,
    image_layers: list[dict[str, Any]] | None = None,
    registration_channel: str = "",
) -> dict[str, Path]:
    """One Neuroglancer state per ``probe_file`` (one annotation layer per track).

    Picks are written where an annotator sees the truth: at the level-0 index plus the
    translation of the image layer drawn over (``layout``), minus the annotation source's own
    translation, plus 0.5 for the corner convention. ``image_layers`` go first in every file.
    """
    import json

    layout = layout or Layout()
    dims = dimensions(spec.spacing0_um_xyz, layout.ng_unit)
    offset = 0.5 if spec.ng_voxel_origin == "corner" else 0.0
    shift = layout.drawn_over_translation(registration_channel)
    shift = shift - np.asarray(layout.annotation_translation_vox_xyz, dtype=np.float64)
    layers: dict[str, list[dict[str, Any]]] = {}
    for track_id, t in truth_tracks.items():
        idx = np.asarray(t["level0_index_xyz"]) + offset
        if shift.any():
            idx = idx + shift
        coords = np.column_stack([idx, np.zeros(len(idx))])  # x, y, z, t
        layers.setdefault(t["probe_file"], []).append(
            {
                "type": "annotation",
                "name": track_id,
                "source": annotation_source(layout, dims),
                "annotations": annotations(layout, track_id, coords),
            }
        )
    out = {}
    for probe_file, lyrs in layers.items():
        path = data / ANNOTATION_DIR / f"{probe_file}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {"dimensions": dims, "layers": [*(image_layers or []), *lyrs]}
        path.write_text(json.dumps(state, indent=1))
        out[probe_file] = path
    return out


def write_ng_state(path: Path, image_layers: list[dict[str, Any]], spec: Any, unit: str) -> Path:
    """The main state: the image layers (one per channel, see :mod:`.layout`)."""
    import json

    state = {"dimensions": dimensions(spec.spacing0_um_xyz, unit), "layers": image_layers}
    path.write_text(json.dumps(state, indent=1))
    return path


#: The columns of the synthetic manifests.
MANIFEST_COLUMNS = [
    "mouseid",
    "sorted_recording",
    "probe_file",
    "histology_track_id",
    "ephys_collection",
    "annotation_format",
    "histology_shank",
    "ephys_shank",
]


def write_manifest(path: Path, spec: Any, probe_files: dict[str, Path]) -> Path:
    """One row per (track x shank)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for track in spec.tracks:
        row = {k: ("" if v is None else v) for k, v in track.manifest_fields().items()}
        if track.probe_file not in probe_files:
            raise ValueError(f"no annotation file for {track.probe_file}")
        writer.writerow(
            {
                "mouseid": spec.mouse_id,
                "sorted_recording": sorted_recording(spec.mouse_id),
                "annotation_format": "json",
                **row,
            }
        )
    path.write_text(buf.getvalue())
    return path
