"""Compare two results folders of the same inputs: how far apart every volume and pick is.

    .venv/bin/python tests/benchmarks/compare_results.py OLD NEW

For each NRRD in OLD, the file of the same name in NEW: labels (``labels_in_*``) identical or the
fraction of voxels that differ; intensities their correlation r, largest difference and the
fraction of voxels that differ. For each pick file (``*.fcsv`` in mm, ``xyz_picks*.json`` in um)
the largest coordinate difference in um. Used to check that a change keeps the outputs (issue 15:
picks to 0.01 um, labels identical, r > 0.9999); run it on two ``whole_mouse.py --keep-results``
folders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import nrrd
import numpy as np


def compare_volume(old: Path, new: Path) -> str:
    """One line on how far apart two NRRD volumes are."""
    a, _ = nrrd.read(str(old))
    b, _ = nrrd.read(str(new))
    if a.shape != b.shape:
        return f"shapes differ: {a.shape} vs {b.shape}"
    if old.name.startswith("labels_in_"):
        differ = int((a != b).sum())
        return "labels identical" if differ == 0 else f"labels differ in {differ} of {a.size}"
    r = np.corrcoef(a.ravel().astype(float), b.ravel().astype(float))[0, 1]
    d = np.abs(a.astype(float) - b.astype(float))
    return f"r = {r:.7f}, largest difference {d.max():g}, {int((d > 0).sum())} of {a.size} differ"


def pick_points_um(path: Path) -> np.ndarray:
    """The points of a pick file in um (Slicer fcsv: mm; GUI json: um)."""
    if path.suffix == ".json":
        return np.asarray(json.loads(path.read_text())["xyz_picks"], dtype=float)
    rows = [line.split(",")[1:4] for line in path.read_text().splitlines() if line[:1] != "#"]
    return np.asarray(rows, dtype=float) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args()
    for old in sorted(args.old.rglob("*.nrrd")):
        rel = old.relative_to(args.old)
        print(f"{rel}: {compare_volume(old, args.new / rel)}")
    worst = 0.0
    for old in sorted([*args.old.rglob("*.fcsv"), *args.old.rglob("xyz_picks*.json")]):
        rel = old.relative_to(args.old)
        d = float(np.abs(pick_points_um(old) - pick_points_um(args.new / rel)).max())
        worst = max(worst, d)
        print(f"{rel}: largest difference {d:.4f} um")
    print(f"picks: largest difference over every file {worst:.4f} um")


if __name__ == "__main__":
    main()
