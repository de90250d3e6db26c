"""Cost of the canonical PIR copies of the CCF references at real scale (528 x 320 x 456).

    .venv/bin/python tests/benchmarks/references.py [--root DIR]

The histology stage gives ANTs canonical scratch copies of the CCF template (NIfTI) and the
compact labels (NRRD). This writes both volumes at real size in the Allen order (PIR) and in RPI,
then, each in a fresh process (own peak RSS), times ``write_canonical_ccf`` and, for scale,
``ants.image_read`` of the stored file (what ANTs pays to read any input once).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

SHAPE_APDVML = (528, 320, 456)


def _peak_rss_mb() -> float:
    """VmHWM of this process image (ru_maxrss would keep the forking parent's peak)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(root: Path) -> dict[str, Path]:
    """A smooth uint16 template and compact labels on the real CCF grid, in PIR and RPI."""
    import numpy as np

    from alignprep.synthetic.volumes import ccf_in_order, write_volume_file

    ap, dv, ml = (np.arange(n, dtype=np.float32)[:, None, None] for n in SHAPE_APDVML)
    dv, ml = dv.reshape(1, -1, 1), ml.reshape(1, 1, -1)
    r = ((ap - 264) / 240) ** 2 + ((dv - 160) / 140) ** 2 + ((ml - 228) / 210) ** 2
    labels = np.minimum(np.floor(np.sqrt(r) * 12), 12).astype(np.uint16)
    labels = np.where(labels < 12, labels + 1, 0).astype(np.uint16)
    template = (labels * 300 + (ap + dv + ml).astype(np.uint16) % 97).astype(np.uint16)
    files = {}
    for code in ("PIR", "RPI"):
        t_stored, header = ccf_in_order(template, code)
        files[f"template_{code}"] = write_volume_file(
            root / f"template_{code}.nii.gz", t_stored, header
        )
        l_stored, _ = ccf_in_order(labels, code)
        files[f"labels_{code}"] = write_volume_file(root / f"labels_{code}.nrrd", l_stored, header)
    return files


def child(path: Path, out: Path) -> dict:
    """Time the canonical copy of ``path`` and an ANTs read of the stored file."""
    from alignprep.inputs.references import write_canonical_ccf

    base_mb = _peak_rss_mb()

    t0_s = time.perf_counter()
    write_canonical_ccf(path, "CCF volume", out)
    copy_s = time.perf_counter() - t0_s
    rss_mb = _peak_rss_mb() - base_mb
    import ants

    t1_s = time.perf_counter()
    ants.image_read(str(path), pixeltype="float")
    read_s = time.perf_counter() - t1_s
    return {
        "copy_s": copy_s,
        "copy_extra_rss_mb": rss_mb,
        "ants_read_s": read_s,
        "stored_mb": path.stat().st_size / 1e6,
        "copy_mb": out.stat().st_size / 1e6,
    }


def main() -> None:
    """Build (once), run each case in a fresh process, print the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/alignprep_bench_references"))
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.root / f"copy_{args.child.name}.nrrd")))
        return
    args.root.mkdir(parents=True, exist_ok=True)
    t0_s = time.perf_counter()
    files = build(args.root)
    print(f"built {SHAPE_APDVML} uint16 template + labels in {time.perf_counter() - t0_s:.1f} s")
    columns = ("stored MB", "copy s", "+peak MB", "copy MB", "ANTs read s")
    print(f"{'file':<16} " + " ".join(f"{c:>11}" for c in columns))
    for name, path in files.items():
        proc = subprocess.run(
            [sys.executable, __file__, "--root", str(args.root), "--child", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        print(
            f"{name:<16} {r['stored_mb']:11.1f} {r['copy_s']:11.2f} {r['copy_extra_rss_mb']:11.0f} "
            f"{r['copy_mb']:11.1f} {r['ants_read_s']:11.2f}"
        )


if __name__ == "__main__":
    main()
