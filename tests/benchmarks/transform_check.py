"""Transform check at real size on synthetic data: wall time, phases, peak RSS (check and ANTs).

    .venv/bin/python tests/benchmarks/transform_check.py [--root DIR]

Real size: 25 um displacement fields on the fixed images' own grids, as ANTs writes them, float32
(X, Y, Z, 1, 3): the CCF template box 528x320x456 (template -> CCF, 0.92 GB per field) and the
LCA template box (LS -> template); the registration channel's level 4 is 640x462x247
(``SyntheticSpec.real_scale()``). The fields are the real-scale dataset's 100 um fields resampled
onto those grids (trilinear) plus 1e-4 mm noise, so that gzip shrinks them as little as it shrinks
real SyN fields. Everything is built once under ``--root`` and reused.

Baseline = what any complete check must do at least: decompress every transform file once and
let ANTs map one point through each warp (ITK reads the whole field). The check and the baseline
each run in a fresh process; peak RSS is each process's own ``VmHWM``, and the check's ANTs child
reports its own.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from pathlib import Path

from children import run_child

FIELD_NOISE_MM = 1e-4


def _peak_rss_mb() -> float:
    from alignprep.inputs.ants_worker import peak_rss_mb

    return peak_rss_mb()  # VmHWM: getrusage's maxrss is inherited from the forking parent


def _context(root: Path):
    from alignprep.config import ParamLayer, build_config
    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages.context import MouseContext

    values = {"data_root": str(root / "data"), "results_root": str(root / "results")}
    config = build_config([ParamLayer("benchmark", values)])
    return MouseContext.prepare(config, read_manifest(config.data_root / "manifest.csv"))


def _warp_files(ctx) -> list[Path]:
    regs = (ctx.asset.ls_to_template, ctx.template_to_ccf.registration)
    return [p for reg in regs for p in (reg.warp, reg.inverse_warp) if p is not None]


def child_check(root: Path) -> dict:
    """The transform check of the real-size dataset, as validation runs it."""
    import logging

    from alignprep.inputs.transform_check import check_transforms
    from alignprep.logs import configure_logging

    configure_logging("INFO")
    logging.getLogger("alignprep.inputs.ants_worker").setLevel(logging.DEBUG)
    ctx = _context(root)
    t0_s = time.perf_counter()
    report = check_transforms(ctx)
    wall_s = time.perf_counter() - t0_s
    return {
        "wall_s": wall_s,
        "peak_rss_mb": _peak_rss_mb(),
        "ok": report.ok,
        "checks": report.checks(),
        "bytes": sum(p.stat().st_size for p in _warp_files(ctx)),
    }


def child_baseline(root: Path) -> dict:
    """Decompress every transform file once; ANTs maps one point through each warp."""
    import ants
    import pandas as pd

    ctx = _context(root)
    t0_s = time.perf_counter()
    for path in _warp_files(ctx):
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 25):
                pass
    read_s = time.perf_counter() - t0_s
    point = pd.DataFrame(
        [ctx.ccf_template.index_to_physical([[264, 160, 228]])[0]], columns=list("xyz")
    )
    t1_s = time.perf_counter()
    for path in _warp_files(ctx):
        ants.apply_transforms_to_points(3, point, [str(path)], whichtoinvert=[False])
    ants_s = time.perf_counter() - t1_s
    return {
        "wall_s": time.perf_counter() - t0_s,
        "steps_s": {"decompress all": read_s, "ANTs, one point per warp": ants_s},
        "peak_rss_mb": _peak_rss_mb(),
    }


def upsample_field(src: Path, grid, dst: Path, seed: int) -> None:
    """Resample a displacement field onto ``grid`` (trilinear, 0 outside), add noise, write."""
    import nibabel as nib
    import numpy as np
    from scipy.ndimage import map_coordinates

    from alignprep.inputs.references import nifti_header

    field = np.asanyarray(nib.load(str(src)).dataobj)[:, :, :, 0, :].astype(np.float32)
    src_hdr = nifti_header(src)
    nx, ny, nz = grid.size
    out = np.empty((nx, ny, nz, 1, 3), np.float32)
    rng = np.random.default_rng(seed)
    ij = np.stack(np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij"), -1).reshape(-1, 2)
    for k in range(nz):
        ijk = np.column_stack([ij, np.full(len(ij), k)])
        idx = src_hdr.physical_to_index(grid.index_to_physical(ijk)).T
        for c in range(3):
            values = map_coordinates(field[..., c], idx, order=1, mode="constant", cval=0.0)
            noise = rng.normal(0.0, FIELD_NOISE_MM, len(values))
            out[:, :, k, 0, c] = (values + noise).reshape(nx, ny)
    affine = np.eye(4)
    affine[:3, :3] = grid.direction * grid.spacing
    affine[:3, 3] = grid.origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine  # LPS -> RAS
    img = nib.Nifti1Image(out, affine)
    img.header.set_intent("vector")
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, 1)
    img.set_sform(affine, 1)
    nib.save(img, str(dst))


def build(root: Path) -> None:
    """The real-scale dataset, its warps replaced by 25 um fields on the fixed grids."""
    from alignprep.inputs.references import nifti_header
    from alignprep.synthetic import SyntheticSpec, build_dataset

    t0_s = time.perf_counter()
    build_dataset(root, SyntheticSpec.real_scale())
    ctx = _context(root)
    refs = ctx.config.references
    fixed = {
        "ls": (ctx.asset.ls_to_template, nifti_header(refs.lca_template)),
        "t2c": (ctx.template_to_ccf.registration, nifti_header(refs.ccf_template)),
    }
    for seed, (reg, grid) in enumerate(fixed.values()):
        for path in (reg.warp, reg.inverse_warp):
            tmp = path.with_name(path.name.replace(".nii.gz", ".25um.nii.gz"))
            upsample_field(path, grid, tmp, seed)
            tmp.replace(path)
            print(f"  {path.name}: {grid.size} voxels, {path.stat().st_size / 1e6:.0f} MB gzipped")
    (root / "fields_25um").write_text("ok\n")
    print(f"built real-size dataset in {time.perf_counter() - t0_s:.0f} s: {root}")


def _run_child(kind: str, root: Path) -> dict:
    result, stderr = run_child(__file__, kind, "--root", str(root))
    result["log"] = [line for line in stderr.splitlines() if "transform" in line or "ANTs" in line]
    return result


def main() -> None:
    """Build (once), run the check and the baseline in fresh processes, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/alignprep_bench_transform_check"))
    parser.add_argument("--child", choices=["check", "baseline"])
    args = parser.parse_args()
    if args.child:
        fn = child_check if args.child == "check" else child_baseline
        print(json.dumps(fn(args.root)))
        return
    if not (args.root / "fields_25um").is_file():
        build(args.root)
    check = _run_child("check", args.root)
    base = _run_child("baseline", args.root)
    print(f"transform check, 4 warps of {check['bytes'] / 1e9:.2f} GB gzipped in all")
    for line in check["log"]:
        print("  " + line.split(": ", 1)[-1])
    for status, message in check["checks"]:
        print(f"  {status.upper():<8} {message}")
    child_mb = max(
        float(m) for m in re.findall(r"child peak RSS (\d+) MB", "\n".join(check["log"]))
    )
    print(
        f"  {'total (wall)':<24} {check['wall_s']:8.1f} s   peak RSS {check['peak_rss_mb']:.0f} MB"
        f" (ANTs child {child_mb:.0f} MB)"
    )
    print("baseline (decompress every file once + ANTs reads each warp once)")
    for name, secs in base["steps_s"].items():
        print(f"  {name:<24} {secs:8.1f} s")
    print(f"  {'total (wall)':<24} {base['wall_s']:8.1f} s   peak RSS {base['peak_rss_mb']:.0f} MB")
    print(f"ratio check / baseline: {check['wall_s'] / base['wall_s']:.2f} (wall)")


if __name__ == "__main__":
    main()
