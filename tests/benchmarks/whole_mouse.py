"""The whole mouse at real size: histology + every track + QC volumes, as ``code/run`` runs it.

    .venv/bin/python tests/benchmarks/whole_mouse.py [--root DIR] [--repeats K] [--n-jobs N]
                                                     [--executor dask] [--baselines]
                                                     [--keep-results DIR]
                                                     [--check-labels] [--no-qc]

Real size: the real-scale synthetic mouse (registration level 640x462x247 at 28.8/28.8/32 um,
CCF 25 um 528x320x456, ``SyntheticSpec.real_scale()``) with 25 um displacement fields on the
fixed images' own grids, ~0.8-0.9 GB gzipped each, as real registrations have (built once under
``--root`` by ``tests/benchmarks/transform_check.py``'s ``build``, then reused).

Each repeat runs ``code/run --skip-ephys`` in a fresh results and scratch folder and samples the
resident memory of its whole process tree (supervisor, run, workers, ANTs children) every 0.1 s
from /proc. The run's own ``step ...`` log lines split the wall time; each step's peak is the
largest tree RSS sampled while it ran. ``--baselines`` also measures, in fresh processes, what any
implementation must do at least: one read (gzip decompression) of each warp file, and one plain
``ants.apply_transforms`` of the CCF template onto the image grid G (the library's own warp of
one volume, the issue's yardstick). The reference implementation's whole run on this machine
class (issue 15) is 422 s and 10.0 GB. ``--check-labels`` (with ``--keep-results``) compares the
kept run's labels on G with ANTs's own warp of the compact labels (``ants.apply_transforms``,
``genericLabel``, double precision: the reference implementation's call), voxel for voxel.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "code"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from children import run_child  # noqa: E402
from demo import proc_bytes, rss_bytes  # noqa: E402

from alignprep.supervisor import descendants  # noqa: E402

REFERENCE_S, REFERENCE_GB = 422.0, 10.0  # aind-ibl-ephys-alignment-preprocessing 0.8.2 (issue 15)
STEP = re.compile(r"step (?P<name>.+?): (?P<what>started|done in (?P<s>[\d.]+) s)")
ITEM = re.compile(r"item (?P<name>.+): (?P<status>ok|failed|skipped) \((?P<s>[\d.]+) s\)")


def run_once(
    root: Path, n_jobs: str, keep: Path | None, executor: str | None = None, no_qc: bool = False
) -> dict:
    """One whole run: wall, peak tree RSS, and per step (wall, peak RSS)."""
    work = Path(tempfile.mkdtemp(prefix="alignprep-whole-bench-", dir=root))
    env = {**os.environ, "ALIGNPREP_PYTHON": sys.executable}
    cmd = [
        str(REPO / "code" / "run"),
        "--data-root",
        str(root / "data"),
        "--results-root",
        str(work / "results"),
        "--scratch-root",
        str(work / "scratch"),
        "--skip-ephys",
        "--n-jobs",
        n_jobs,
        *(["--executor", executor] if executor else []),
        *(["--no-qc"] if no_qc else []),
    ]
    lines: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    samples: list[tuple[float, int]] = []
    pss: list[tuple[int, dict[int, tuple[int, int]]]] = []  # (tree PSS, pid -> (RSS, PSS))
    while proc.poll() is None:
        tree = [proc.pid, *descendants(proc.pid)]
        each = {pid: (rss_bytes(pid), pss_bytes(pid)) for pid in tree}
        samples.append((time.perf_counter() - t0, sum(r for r, _ in each.values())))
        pss.append((sum(q for _, q in each.values()), each))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    reader.join(timeout=5)
    if proc.returncode != 0:
        tail = "\n".join(line for _, line in lines[-30:])
        raise SystemExit(f"run failed with exit code {proc.returncode}:\n{tail}")
    steps = _steps(lines, samples)
    items = {m["name"]: float(m["s"]) for _, x in lines if (m := ITEM.search(x))}
    bad = [x for _, x in lines if (m := ITEM.search(x)) and m["status"] == "failed"]
    if bad:
        raise SystemExit("an item failed:\n" + "\n".join(bad))
    if keep is not None:
        shutil.copytree(work / "results", keep, dirs_exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    peak = max((b for _, b in samples), default=0)
    peak_pss, at_peak = max(pss, key=lambda x: x[0], default=(0, {}))
    return {
        "wall_s": wall,
        "peak_gb": peak / 2**30,
        "peak_pss_gb": peak_pss / 2**30,
        "at_peak_pss": {str(pid): [r / 2**30, q / 2**30] for pid, (r, q) in at_peak.items()},
        "steps": steps,
        "items": items,
        "log": [x for _, x in lines],
    }


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process: its private pages plus its share of pages it
    shares (forked workers share the fork server's pages, which RSS counts in every one)."""
    return proc_bytes(pid, "Pss", "smaps_rollup")


def _steps(lines: list[tuple[float, str]], samples: list[tuple[float, int]]) -> list[dict]:
    """(name, wall s, peak tree RSS GB) of every logged step, in start order."""
    open_: dict[str, float] = {}
    out = []
    for t, line in lines:
        m = STEP.search(line)
        if not m:
            continue
        if m["what"] == "started":
            open_[m["name"]] = t
        elif m["name"] in open_:
            start = open_.pop(m["name"])
            peak = max((b for ts, b in samples if start <= ts <= t), default=0)
            out.append({"name": m["name"], "s": float(m["s"]), "peak_gb": peak / 2**30, "t": start})
    return sorted(out, key=lambda s: s["t"])


def child_read_warps(root: Path) -> dict:
    """Decompress every warp file once (the least any complete read must do)."""
    import gzip

    files = sorted((root / "data").rglob("*Warp.nii.gz"))
    t0 = time.perf_counter()
    for path in files:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 25):
                pass
    return {"files": len(files), "s": time.perf_counter() - t0, "peak_gb": _own_peak_gb()}


def child_ants_warp(root: Path) -> dict:
    """One plain ``ants.apply_transforms`` of the CCF template onto G (linear, double)."""
    import ants
    import numpy as np

    from alignprep.config import ParamLayer, build_config
    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages.context import MouseContext
    from alignprep.stages.histology import Grids

    values = {"data_root": str(root / "data"), "results_root": str(root / "baseline_results")}
    config = build_config([ParamLayer("benchmark", values)])
    ctx = MouseContext.prepare(config, read_manifest(config.data_root / "manifest.csv"))
    grid = Grids.build(ctx).registration
    fixed = ants.from_numpy(np.zeros(grid.size, np.float32), **grid.ants_kwargs())
    moving = ants.image_read(str(config.references.ccf_template))
    chain = ctx.to_ccf
    t0 = time.perf_counter()
    ants.apply_transforms(
        fixed, moving, [str(p) for p in chain.files], whichtoinvert=list(chain.invert)
    )
    return {"s": time.perf_counter() - t0, "peak_gb": _own_peak_gb()}


def child_ants_labels(root: Path, kept: Path) -> dict:
    """ANTs's genericLabel warp of the compact labels onto G vs the kept run's labels."""
    import ants
    import nrrd
    import numpy as np

    from alignprep import outputs
    from alignprep.config import ParamLayer, build_config
    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages.context import MouseContext
    from alignprep.stages.histology import Grids

    values = {"data_root": str(root / "data"), "results_root": str(root / "baseline_results")}
    config = build_config([ParamLayer("benchmark", values)])
    ctx = MouseContext.prepare(config, read_manifest(config.data_root / "manifest.csv"))
    grid = Grids.build(ctx).registration
    fixed = ants.from_numpy(np.zeros(grid.size, np.float32), **grid.ants_kwargs())
    compact = ants.image_read(str(config.references.ccf_labels_compact), pixeltype="float")
    chain = ctx.to_ccf
    t0 = time.perf_counter()
    warped = ants.apply_transforms(
        fixed,
        compact,
        [str(p) for p in chain.files],
        interpolator="genericLabel",
        whichtoinvert=list(chain.invert),
    )
    seconds = time.perf_counter() - t0
    lut = np.load(config.references.ccf_labels_unique_values)["unique_labels"]
    ants_ids = lut[np.rint(warped.numpy()).astype(int)]
    ours, _ = nrrd.read(str(outputs.histology_paths(kept, ctx.mouse_id)["labels"]))
    return {"s": seconds, "voxels": int(ours.size), "differ": int((ours != ants_ids).sum())}


def _own_peak_gb() -> float:
    from alignprep.inputs.ants_worker import peak_rss_mb

    return peak_rss_mb() / 1024


def _child(kind: str, root: Path) -> dict:
    return run_child(__file__, kind, "--root", str(root))[0]


def main() -> None:
    """Build (once), run the whole mouse ``--repeats`` times, print min / median per step."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/alignprep_bench_transform_check"))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--n-jobs", default="-1")
    parser.add_argument("--executor", help="passed to code/run (e.g. dask: a LocalCluster)")
    parser.add_argument("--no-qc", action="store_true", help="passed to code/run: no QC figures")
    parser.add_argument("--baselines", action="store_true")
    parser.add_argument("--keep-results", type=Path)
    parser.add_argument("--json", type=Path, help="also write every number here")
    parser.add_argument("--check-labels", action="store_true")
    parser.add_argument("--child", choices=["read_warps", "ants_warp", "ants_labels"])
    args = parser.parse_args()
    if args.child == "ants_labels":
        print(json.dumps(child_ants_labels(args.root, args.keep_results)))
        return
    if args.child:
        fn = child_read_warps if args.child == "read_warps" else child_ants_warp
        print(json.dumps(fn(args.root)))
        return
    if args.check_labels and args.keep_results is None:
        parser.error("--check-labels compares the labels of --keep-results DIR")
    if not (args.root / "fields_25um").is_file():
        from transform_check import build

        build(args.root)
    print(
        f"cores: {os.cpu_count()}, load average: {os.getloadavg()}, n_jobs {args.n_jobs}, "
        f"executor {args.executor or 'default'}"
    )
    runs = []
    for k in range(args.repeats):
        keep = args.keep_results if k == args.repeats - 1 else None
        runs.append(run_once(args.root, args.n_jobs, keep, args.executor, args.no_qc))
        r = runs[-1]
        print(
            f"run {k + 1}: wall {r['wall_s']:.1f} s, peak tree RSS {r['peak_gb']:.2f} GB, "
            f"peak tree PSS {r['peak_pss_gb']:.2f} GB"
        )
        for pid, (rss_gb, pss_gb) in sorted(r["at_peak_pss"].items(), key=lambda x: -x[1][1]):
            print(f"  at the PSS peak: pid {pid} RSS {rss_gb:.2f} GB, PSS {pss_gb:.2f} GB")
    _report(runs)
    result = {"runs": [{k: v for k, v in r.items() if k != "log"} for r in runs]}
    if args.baselines:
        base = {"read_warps": _child("read_warps", args.root)}
        base["ants_warp"] = _child("ants_warp", args.root)
        result["baselines"] = base
        wall = sorted(r["wall_s"] for r in runs)[len(runs) // 2]
        rw, aw = base["read_warps"], base["ants_warp"]
        print(f"baseline: read each of {rw['files']} warp files once: {rw['s']:.1f} s")
        print(
            f"baseline: one ants.apply_transforms (CCF template -> G): {aw['s']:.1f} s, "
            f"{aw['peak_gb']:.2f} GB"
        )
        print(
            f"median run / read of the warps: {wall / rw['s']:.2f}; "
            f"/ one ANTs warp: {wall / aw['s']:.2f}"
        )
    if args.check_labels:
        kept = args.keep_results
        check = run_child(
            __file__, "ants_labels", "--root", str(args.root), "--keep-results", str(kept)
        )[0]
        result["labels_vs_ants"] = check
        print(
            f"labels vs ANTs genericLabel ({check['s']:.1f} s): "
            + (
                "identical"
                if check["differ"] == 0
                else f"{check['differ']} of {check['voxels']} differ"
            )
            + f" over {check['voxels']} voxels"
        )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


def _report(runs: list[dict]) -> None:
    names = list(dict.fromkeys(s["name"] for r in runs for s in r["steps"]))
    print(f"{'step':<58} {'min s':>8} {'median s':>9} {'peak GB':>8}")
    for name in names:
        secs = sorted(s["s"] for r in runs for s in r["steps"] if s["name"] == name)
        peak = max(s["peak_gb"] for r in runs for s in r["steps"] if s["name"] == name)
        print(f"{name[:58]:<58} {secs[0]:8.1f} {secs[len(secs) // 2]:9.1f} {peak:8.2f}")
    print(f"{'item (its own seconds)':<58} {'min s':>8} {'median s':>9}")
    for name in dict.fromkeys(n for r in runs for n in r["items"]):
        secs = sorted(r["items"][name] for r in runs if name in r["items"])
        print(f"{name[:58]:<58} {secs[0]:8.1f} {secs[len(secs) // 2]:9.1f}")
    walls = sorted(r["wall_s"] for r in runs)
    peak = max(r["peak_gb"] for r in runs)
    med = walls[len(walls) // 2]
    qc = sorted(sum(v for k, v in r["items"].items() if k.startswith("qc ")) for r in runs)
    if qc[-1] > 0:
        print(
            f"QC figure items, their own seconds summed: median {qc[len(qc) // 2]:.1f} s = "
            f"{100 * qc[len(qc) // 2] / med:.1f}% of the whole run's median wall"
        )
    print(f"{'whole run (wall)':<58} {walls[0]:8.1f} {med:9.1f} {peak:8.2f}")
    print(
        f"reference implementation 0.8.2: {REFERENCE_S:.0f} s, {REFERENCE_GB:.1f} GB -> speed-up "
        f"{REFERENCE_S / med:.2f}x (median), {REFERENCE_S / walls[0]:.2f}x (min); "
        f"memory {peak / REFERENCE_GB:.2f} of it"
    )


if __name__ == "__main__":
    main()
