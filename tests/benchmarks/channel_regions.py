"""Channel regions at real scale: seconds per probe folder, and the one-off label load.

    .venv/bin/python tests/benchmarks/channel_regions.py [--root DIR] [--repeat N]

Real scale: the Allen 25 um label grid (AP, DV, ML) = (528, 320, 456) with the synthetic
ellipsoid brain of ``SyntheticSpec.real_scale()``; a 384-channel NP2.0 4-shank probe (4 x 96
channels, 4 tracks of 10 picks) and a 384-channel NP1.0 probe (16 picks), 400 units each. The
picks go straight into the probe folders (no registration is involved in this stage). Prints, per
probe folder, the wall time of :func:`regions_for_probe` (first call in the process, then the
best of ``--repeat``), and the time to read the compact label NRRD (once per mouse and worker).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def _labels(root: Path):
    """Real-scale compact labels written as the reference NRRD + npz, read back as the run does."""
    from alignprep.inputs.references import CcfLabels
    from alignprep.space import atlas
    from alignprep.synthetic import SyntheticSpec
    from alignprep.synthetic.volumes import brain_volumes, write_nrrd_atomic

    spec = SyntheticSpec.real_scale()
    center, semi = np.array(spec.brain_center_um), np.array(spec.brain_semi_axes_um)
    _, labels = brain_volumes(
        spec.ccf_shape_apdvml, center, semi, atlas.BREGMA_MLAPDV_UM[0], np.random.default_rng(0)
    )
    unique, compact = np.unique(labels, return_inverse=True)
    header = atlas.ccf_header(spec.ccf_shape_apdvml)
    path = root / "labels_compact.nrrd"
    write_nrrd_atomic(path, compact.reshape(labels.shape).astype(np.uint16), header)
    t0_s = time.perf_counter()
    import nrrd

    data, _ = nrrd.read(str(path))
    load_s = time.perf_counter() - t0_s
    return CcfLabels(np.asfortranarray(data), unique, header), spec, load_s


def _probe(root: Path, spec, kind: str, tracks) -> tuple[Path, list]:
    from alignprep import outputs
    from alignprep.inputs.manifest import ManifestRow
    from alignprep.space import atlas
    from alignprep.synthetic.probe_folders import write_channel_table, write_units

    probe = root / "results" / "000123" / "ecephys_000123_2025-01-15_10-00-00" / kind
    write_channel_table(probe, kind, 384)
    write_units(probe, 384, 400, seed=1)
    rng = np.random.default_rng(2)
    center, semi = np.array(spec.brain_center_um), np.array(spec.brain_semi_axes_um)
    rows = []
    for k, track in enumerate(tracks):
        suffix = f"_shank{k + 1}" if len(tracks) > 1 else ""
        picks = atlas.ccf_um_to_bregma_um(track.points_ccf_um(center, semi, rng))
        path = outputs.picks_paths(probe, suffix)["bregma"]
        path.write_text(json.dumps({"xyz_picks": picks.tolist()}))
        shank = k if len(tracks) > 1 else None
        fields = {"line": k + 2, "mouseid": "000123", "sorted_recording": "s"}
        fields |= {"recording_id": probe.parent.name, "probe_file": "f"}
        fields |= {"histology_track_id": track.track_id, "ephys_collection": kind}
        fields |= {"annotation_format": "json", "logical_probe": kind}
        fields |= {"histology_shank": shank, "ephys_shank": shank, "surface_finding": None}
        fields |= {"registration_asset": None, "template_to_ccf_asset": None}
        rows.append(ManifestRow(**fields))
    return probe, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from alignprep.stages.channel_regions import regions_for_probe
    from alignprep.synthetic.tracks import four_shank_tracks, single_shank_track

    with tempfile.TemporaryDirectory() as tmp:
        root = args.root or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        labels, spec, load_s = _labels(root)
        print(f"labels: {labels.compact.shape} voxels, NRRD read {load_s:.2f} s (once per mouse)")
        folders = {
            "np2 4-shank, 384 ch": _probe(root, spec, "np2", four_shank_tracks(6500.0, 2500.0)),
            "np1, 384 ch": _probe(root, spec, "np1", [single_shank_track(6000.0, 3000.0, 16)]),
        }
        for name, (probe, rows) in folders.items():
            t0_s = time.perf_counter()
            res = regions_for_probe(labels, probe, rows)
            first_s = time.perf_counter() - t0_s
            times = []
            for _ in range(args.repeat):
                t0_s = time.perf_counter()
                regions_for_probe(labels, probe, rows)
                times.append(time.perf_counter() - t0_s)
            print(
                f"{name}: {res.status} {len(res.files)} files; first call {first_s:.3f} s, "
                f"best of {args.repeat} {min(times):.3f} s, worst {max(times):.3f} s"
            )


if __name__ == "__main__":
    main()
