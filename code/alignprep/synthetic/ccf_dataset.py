"""A seeded dataset without light-sheet data: tracing tools' CCF tracks, CCF references, ephys.

What a lab that traces probes in 2-D slice histology attaches: the Allen CCF references, the
tools' track files, a manifest and the sorted ephys, and no SmartSPIM asset. The tracks are the
default synthetic probes (an NP1.0 probe in the left hemisphere, a 4-shank NP2.0 probe in the
right) placed in the CCF, written in two tools' own layouts: ProbeA as AP_histology's
``probe_ccf.mat`` (10 um voxels), ProbeB's four shanks as one ``ccf_csv`` file in IBL bregma um.
``truth.json`` holds each track's CCF and bregma micrometres.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..space import atlas
from . import BUILT_NAME, build_stamp, built_by
from .tracks import MANIFEST_COLUMNS, default_tracks, sorted_recording
from .volumes import brain_volumes, write_ccf_volumes, write_json

MOUSE_ID = "000456"
TRACKS_DIR = "probe_tracks"
AP_HISTOLOGY_FILE = "probe_ccf.mat"
CSV_FILE = "ProbeB_tracks.csv"
SHAPE_APDVML = (160, 120, 320)
CENTER_UM = (5739.0, 2000.0, 1500.0)  # ML, AP, DV
SEMI_AXES_UM = (1900.0, 1700.0, 1250.0)


@dataclass(frozen=True)
class CcfDataset:
    """Paths of a built CCF-only dataset."""

    root: Path
    data_root: Path
    manifest: Path
    truth_path: Path

    @property
    def truth(self) -> dict[str, Any]:
        """The ground truth (``truth.json``)."""
        return json.loads(self.truth_path.read_text())


def build_ccf_dataset(root: Path, seed: int = 0, mouse_id: str = MOUSE_ID) -> CcfDataset:
    """Build the dataset under ``root`` (``root/data`` + ``root/truth.json``)."""
    from .ephys import build_ephys
    from .track_ap_histology import write_probe_ccf

    root = Path(root)
    (root / BUILT_NAME).unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    data = root / "data"
    center_um, semi_um = np.array(CENTER_UM), np.array(SEMI_AXES_UM)
    template, labels = brain_volumes(
        SHAPE_APDVML, center_um, semi_um, float(atlas.BREGMA_MLAPDV_UM[0]), rng
    )
    labels_dir = data / "allen_mouse_ccf_annotations_lateralized_compact"
    write_ccf_volumes(
        template,
        labels,
        atlas.ccf_header(SHAPE_APDVML),
        data / "allen_mouse_ccf/average_template/average_template_25.nii.gz",
        labels_dir / "ccf_2017_annotation_25_lateralized_compact.nrrd",
        labels_dir / "ccf_2017_annotation_25_lateralized_unique_vals.npz",
    )
    specs = default_tracks()
    truth_tracks: dict[str, dict[str, Any]] = {}
    for spec in specs:
        ccf_um = spec.points_ccf_um(center_um, semi_um, rng)
        if spec.ephys_collection == "ProbeA":  # AP_histology stores 10 um voxels
            ccf_um = np.round(ccf_um / 10.0) * 10.0
        truth_tracks[spec.track_id] = {
            "ccf_um": ccf_um.tolist(),
            "bregma_um": atlas.ccf_um_to_bregma_um(ccf_um).tolist(),
        }
    folder = data / TRACKS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    probe_a = [s for s in specs if s.ephys_collection == "ProbeA"]
    write_probe_ccf(
        folder / AP_HISTOLOGY_FILE,
        [np.asarray(truth_tracks[s.track_id]["ccf_um"]) for s in probe_a],
    )
    _write_csv(folder / CSV_FILE, specs, truth_tracks)
    manifest = _write_manifest(data / "manifest.csv", mouse_id, specs)
    build_ephys(data, mouse_id=mouse_id, seed=seed, preset="test", truth_path=root / "ephys.json")
    truth_path = write_json(root / "truth.json", {"mouse_id": mouse_id, "tracks": truth_tracks})
    dataset = CcfDataset(root, data, manifest, truth_path)
    write_json(root / BUILT_NAME, {"built_by": _stamp(seed, mouse_id)})
    return dataset


def build_or_reuse_ccf(root: Path, seed: int = 0) -> tuple[CcfDataset, bool]:
    """The dataset under ``root`` if this code built it with this seed, else built anew."""
    root = Path(root)
    if built_by(root) == _stamp(seed, MOUSE_ID):
        data = root / "data"
        return CcfDataset(root, data, data / "manifest.csv", root / "truth.json"), True
    shutil.rmtree(root, ignore_errors=True)
    return build_ccf_dataset(root, seed, MOUSE_ID), False


def _stamp(seed: int, mouse_id: str) -> dict[str, str]:
    return build_stamp(dataset=f"ccf seed={seed} mouse={mouse_id}")


def _write_csv(path: Path, specs, truth_tracks: dict[str, dict[str, Any]]) -> None:
    """ProbeB's shanks, one ``track`` per shank, in IBL bregma um (x, y, z)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["track", "x_um", "y_um", "z_um"])
    for spec in specs:
        if spec.ephys_collection == "ProbeB":
            for x, y, z in truth_tracks[spec.track_id]["bregma_um"]:
                writer.writerow([spec.track_id, f"{x:.3f}", f"{y:.3f}", f"{z:.3f}"])
    path.write_text(buffer.getvalue())


def _write_manifest(path: Path, mouse_id: str, specs) -> Path:
    """One row per (track x shank): the format, the file and the hemisphere of each track."""
    cols = [*MANIFEST_COLUMNS, "hemisphere"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for n, spec in enumerate(s for s in specs if s.ephys_collection == "ProbeA"):
        writer.writerow(_row(mouse_id, spec, AP_HISTOLOGY_FILE, "ap_histology", f"probe{n + 1}"))
    for spec in specs:
        if spec.ephys_collection == "ProbeB":
            writer.writerow(_row(mouse_id, spec, CSV_FILE, "ccf_csv", spec.track_id))
    path.write_text(buffer.getvalue())
    return path


def _row(mouse_id: str, spec, probe_file: str, fmt: str, track: str) -> dict[str, Any]:
    hemisphere = "left" if spec.entry_ml_ap_um[0] < atlas.BREGMA_MLAPDV_UM[0] else "right"
    fields = {k: ("" if v is None else v) for k, v in spec.manifest_fields().items()}
    return {
        **fields,
        "mouseid": mouse_id,
        "sorted_recording": sorted_recording(mouse_id),
        "probe_file": probe_file,
        "histology_track_id": track,
        "annotation_format": fmt,
        "hemisphere": hemisphere,
    }
