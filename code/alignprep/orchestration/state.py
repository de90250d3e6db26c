"""Re-run state: per item, its parameter fingerprint, the digests of what it read, its outputs.

A finished item is skipped only when its parameters and code are unchanged, every input it read
last time (:mod:`alignprep.reads`) still has the same digest, and every output it recorded still
exists with the recorded hash. File digests are cached by (device, inode, size, mtime) so
unchanged inputs are not re-read on every run, also when the data root was moved or is a tree of
hard links. The state file is written atomically after each finished item, so a run killed
mid-way restarts from the last finished item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import outputs
from ..reads import changed

CONTENT_LIMIT_BYTES = 1 << 40  # hash content of every file below this size


class FileDigests:
    """sha256 of files and folders, cached by (device, inode, size, mtime_ns) in a JSON file."""

    def __init__(self, cache_path: Path) -> None:
        self.cache_path = cache_path
        try:
            self.cache: dict[str, str] = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            self.cache = {}
        if not all(isinstance(v, str) for v in self.cache.values()):
            self.cache = {}  # an older layout

    def file(self, path: Path, content_limit: int = CONTENT_LIMIT_BYTES) -> str:
        """Digest of one file: its content, or size+mtime above ``content_limit`` bytes."""
        stat = path.stat()
        if stat.st_size > content_limit:
            return f"size-mtime:{stat.st_size}:{stat.st_mtime_ns}"
        key = f"{stat.st_dev}:{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}"
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        self.cache[key] = digest = h.hexdigest()
        return digest

    def tree(self, root: Path, content_limit: int = CONTENT_LIMIT_BYTES) -> str:
        """Digest of a file or of every file below a folder (relative names included)."""
        if root.is_file():
            return self.file(root, content_limit)
        h = hashlib.sha256()
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            h.update(f"{path.relative_to(root)}\0{self.file(path, content_limit)}\n".encode())
        return h.hexdigest()

    def save(self) -> None:
        """Persist the cache (atomic), merged with what other processes saved meanwhile."""
        try:
            merged = json.loads(self.cache_path.read_text())
        except (OSError, ValueError):
            merged = {}
        merged.update(self.cache)
        live = {k: v for k, v in merged.items() if isinstance(v, str)}
        outputs.write_bytes_atomic(self.cache_path, json.dumps(live, sort_keys=True).encode())


class RunState:
    """``<mouse>/.alignprep/state.json``: per item, its fingerprints and output digests."""

    def __init__(self, mouse_dir: Path) -> None:
        paths = outputs.state_paths(mouse_dir)
        self.path = paths["state"]
        self.digests = FileDigests(paths["digests"])
        try:
            self.items: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.items = {}

    def unchanged(self, key: str, params: str, data_root: Path, root: Path) -> bool:
        """Finished with these parameters; what it read and what it wrote are as recorded.

        ``params`` is the item's parameter fingerprint (:func:`alignprep.reads.params_fingerprint`);
        ``root`` is the folder its outputs are relative to.
        """
        entry = self.items.get(key)
        if not entry or entry.get("params") != params or "inputs" not in entry:
            return False
        if changed(entry["inputs"], data_root, self.digests):
            return False
        for rel, digest in entry.get("outputs", {}).items():
            path = root / rel
            if not path.is_file() or self.digests.file(path) != digest:
                return False
        return True

    def record(
        self,
        key: str,
        params: str,
        inputs: dict[str, str],
        files: Iterable[Path],
        root: Path,
        span: tuple[str, str] = ("", ""),
    ) -> None:
        """Remember a finished item, what it read, its outputs (relative to ``root``), its span.

        ``span`` is the (start, end) ISO time of the run that produced the outputs; a later run
        that skips the item reports that span, so provenance describes who made the files.
        """
        outs = {str(Path(f).relative_to(root)): self.digests.file(Path(f)) for f in files}
        self.items[key] = {"params": params, "inputs": inputs, "outputs": outs, "span": span}
        outputs.write_bytes_atomic(self.path, outputs.json_bytes(self.items))
        self.digests.save()

    def span(self, key: str) -> tuple[str, str]:
        """The recorded (start, end) ISO times of a finished item ("" when unknown)."""
        start, end = self.items.get(key, {}).get("span") or ("", "")
        return str(start), str(end)

    def seconds(self, key: str) -> float | None:
        """How long the item took when it made its outputs (None when unknown)."""
        start, end = self.span(key)
        try:
            return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        except ValueError:
            return None

    def forget(self, key: str) -> None:
        """Drop an item (it failed, or its inputs changed)."""
        if self.items.pop(key, None) is not None:
            outputs.write_bytes_atomic(self.path, outputs.json_bytes(self.items))
