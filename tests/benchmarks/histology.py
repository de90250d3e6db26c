"""Histology stage at real scale on synthetic data: wall time, peak RSS, per-step split, ratio.

    .venv/bin/python tests/benchmarks/histology.py [--root DIR] [--voxel-um 30]

Real scale: registration level 640x462x247 voxels at 28.8/28.8/32 um, CCF 25 um grid
528x320x456 (``SyntheticSpec.real_scale()``). The dataset is built once under ``--root`` and
reused. The stage and the baseline each run in a fresh process so their peak RSS is their own.
Baseline = what any implementation must do: read the level + one ANTs warp onto its grid.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

from children import run_child


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _config(root: Path, voxel_um: float):
    from alignprep.config import ParamLayer, build_config

    values = {
        "data_root": str(root / "data"),
        "results_root": str(root / "results"),
        "histology": {"output_voxel_size_um": voxel_um},
    }
    return build_config([ParamLayer("benchmark", values)])


def child_stage(root: Path, voxel_um: float) -> dict:
    """Run the histology stage of the dataset under ``root``."""
    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages.context import MouseContext
    from alignprep.stages.histology import run_histology

    config = _config(root, voxel_um)
    t0_s = time.perf_counter()
    ctx = MouseContext.prepare(config, read_manifest(config.data_root / "manifest.csv"))
    prepare_s = time.perf_counter() - t0_s
    result = run_histology(ctx)
    if result.status != "ok":
        raise SystemExit(f"stage failed: {result.reason}")
    return {
        "wall_s": time.perf_counter() - t0_s,
        "steps_s": {"context": prepare_s, **result.seconds},
        "peak_rss_mb": _peak_rss_mb(),
        "grid": list(result.grid.size) if result.grid else None,
        "level": result.level,
    }


def child_baseline(root: Path, voxel_um: float) -> dict:
    """Read the chosen level in full, then one ANTs warp of the CCF template onto its grid."""
    import ants
    import numpy as np

    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages.context import MouseContext

    config = _config(root, voxel_um)
    ctx = MouseContext.prepare(config, read_manifest(config.data_root / "manifest.csv"))
    ms = ctx.multiscale
    level = ms.choose_level(config.histology.desired_voxel_size_um)
    t0_s = time.perf_counter()
    volume = np.asarray(ms.read_level(level)[:, :, :])
    read_s = time.perf_counter() - t0_s
    grid = ctx.registration_header(level.index, level.size)
    fixed = ants.from_numpy(volume.transpose(2, 1, 0).astype(np.float32), **grid.ants_kwargs())
    moving = ants.image_read(str(config.references.ccf_template))
    chain = ctx.to_ccf
    t1_s = time.perf_counter()
    ants.apply_transforms(
        fixed, moving, [str(p) for p in chain.files], whichtoinvert=list(chain.invert)
    )
    warp_s = time.perf_counter() - t1_s
    return {
        "wall_s": time.perf_counter() - t0_s,
        "steps_s": {"read level": read_s, "one ANTs warp": warp_s},
        "peak_rss_mb": _peak_rss_mb(),
    }


def _run_child(kind: str, root: Path, voxel_um: float) -> dict:
    return run_child(__file__, kind, "--root", str(root), "--voxel-um", str(voxel_um))[0]


def main() -> None:
    """Build (once), run stage and baseline in fresh processes, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/alignprep_bench_histology"))
    parser.add_argument("--voxel-um", type=float, default=30.0)
    parser.add_argument("--child", choices=["stage", "baseline"])
    args = parser.parse_args()
    if args.child:
        fn = child_stage if args.child == "stage" else child_baseline
        print(json.dumps(fn(args.root, args.voxel_um)))
        return
    from alignprep.synthetic import SyntheticSpec, build_dataset

    if not (args.root / "truth.json").is_file():
        t0_s = time.perf_counter()
        build_dataset(args.root, SyntheticSpec.real_scale())
        print(f"built real-scale dataset in {time.perf_counter() - t0_s:.1f} s: {args.root}")
    stage = _run_child("stage", args.root, args.voxel_um)
    base = _run_child("baseline", args.root, args.voxel_um)
    print(f"histology stage at {args.voxel_um:g} um, level {stage['level']}, G {stage['grid']}")
    for name, secs in stage["steps_s"].items():
        print(f"  {name:<24} {secs:8.2f} s")
    print(
        f"  {'total (wall)':<24} {stage['wall_s']:8.2f} s   peak RSS {stage['peak_rss_mb']:.0f} MB"
    )
    print("baseline (read level + one ANTs warp onto its grid)")
    for name, secs in base["steps_s"].items():
        print(f"  {name:<24} {secs:8.2f} s")
    print(f"  {'total (wall)':<24} {base['wall_s']:8.2f} s   peak RSS {base['peak_rss_mb']:.0f} MB")
    print(
        f"ratio stage / baseline: {stage['wall_s'] / base['wall_s']:.2f} (wall), "
        f"{stage['peak_rss_mb'] / base['peak_rss_mb']:.2f} (peak RSS)"
    )


if __name__ == "__main__":
    main()
