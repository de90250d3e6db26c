"""Synthetic datasets built once per test session, copied wherever a test wants its own.

``build_dataset`` is seeded and deterministic, so a copy of one built earlier with the same spec
and layout is the same dataset, unless it holds its own absolute path (a ``file://`` image
source): such a dataset is found when first built, and built afresh wherever it is wanted.
Building costs 10-30 s (ephys analyzers, zarr chunks); copying 40 MB costs well under a second.
The cache is shared by the xdist workers of one session (a lock file makes the second worker
wait for the first build).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
from pathlib import Path

from alignprep.synthetic import (
    Layout,
    SyntheticDataset,
    SyntheticSpec,
    build_dataset,
    build_or_reuse,
    open_dataset,
)

_CACHE_DIR: list[Path] = []


def set_cache_dir(path: Path) -> None:
    """Where this session keeps the datasets it built (set once by ``conftest``)."""
    _CACHE_DIR[:] = [path]


def cached_dataset(
    root: Path, spec: SyntheticSpec | None = None, layout: Layout | None = None
) -> SyntheticDataset:
    """The dataset of ``spec`` and ``layout`` under ``root``, as ``build_dataset`` writes it."""
    spec, layout = spec or SyntheticSpec(), layout or Layout()
    if not _CACHE_DIR:
        return build_dataset(root, spec, layout)
    key = hashlib.sha256(f"{spec!r}\n{layout!r}".encode()).hexdigest()[:16]
    built = _CACHE_DIR[0] / key
    built.parent.mkdir(parents=True, exist_ok=True)
    with open(built.parent / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ds, _ = build_or_reuse(built / "ds", spec, layout)
        relocatable = built / "relocatable"
        if not relocatable.is_file():
            relocatable.write_text(json.dumps(not _names_itself(ds.root)))
        if json.loads(relocatable.read_text()):  # copied under the lock: never while rebuilt
            shutil.copytree(built / "ds", root, dirs_exist_ok=True, symlinks=True)
            return open_dataset(root)
    return build_dataset(root, spec, layout)


def _names_itself(root: Path) -> bool:
    """Whether a text file of the dataset (JSON, CSV) holds the dataset's absolute path."""
    mark = str(root.resolve()).encode()
    texts = (p for p in root.rglob("*") if p.suffix in (".json", ".csv") and p.is_file())
    return any(mark in p.read_bytes() for p in texts)
