"""Re-run state: item fingerprints (content hashes of inputs + params + code) and their outputs.

A finished item is skipped when its fingerprint is unchanged and every output it recorded still
exists with the recorded hash. File digests are cached by (size, mtime) so unchanged inputs are
not re-read on every run. The state file is written atomically after each finished item, so a run
killed mid-way restarts from the last finished item.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import __version__, outputs

CONTENT_LIMIT_BYTES = 1 << 40  # hash content of every file below this size
STATE_DIR = ".alignprep"


class FileDigests:
    """sha256 of files and folders, cached by (size, mtime_ns) in a JSON file."""

    def __init__(self, cache_path: Path) -> None:
        self.cache_path = cache_path
        try:
            self.cache: dict[str, list[Any]] = json.loads(cache_path.read_text())
        except (OSError, ValueError):
            self.cache = {}

    def file(self, path: Path, content_limit: int = CONTENT_LIMIT_BYTES) -> str:
        """Digest of one file: its content, or size+mtime above ``content_limit`` bytes."""
        stat = path.stat()
        key = str(path.resolve())
        hit = self.cache.get(key)
        if hit and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            return hit[2]
        if stat.st_size > content_limit:
            digest = f"size-mtime:{stat.st_size}:{stat.st_mtime_ns}"
        else:
            h = hashlib.sha256()
            with path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            digest = h.hexdigest()
        self.cache[key] = [stat.st_size, stat.st_mtime_ns, digest]
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
        outputs.write_bytes_atomic(self.cache_path, json.dumps(merged, sort_keys=True).encode())


def fingerprint(params: Any, inputs: dict[str, str]) -> str:
    """Item fingerprint from its parameters, its input digests and the code version."""
    blob = json.dumps(
        {"code": __version__, "params": params, "inputs": inputs}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class RunState:
    """``<mouse>/.alignprep/state.json``: per item, its fingerprint and output digests."""

    def __init__(self, mouse_dir: Path) -> None:
        self.dir = mouse_dir / STATE_DIR
        self.path = self.dir / "state.json"
        self.digests = FileDigests(self.dir / "digests.json")
        try:
            self.items: dict[str, dict[str, Any]] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.items = {}

    def is_done(self, key: str, fp: str, root: Path) -> bool:
        """Finished with this fingerprint, and its outputs are still as written."""
        entry = self.items.get(key)
        if not entry or entry.get("fingerprint") != fp:
            return False
        for rel, digest in entry.get("outputs", {}).items():
            path = root / rel
            if not path.is_file() or self.digests.file(path) != digest:
                return False
        return True

    def record(self, key: str, fp: str, files: Iterable[Path], root: Path) -> None:
        """Remember a finished item and its outputs (relative to ``root``)."""
        outs = {str(Path(f).relative_to(root)): self.digests.file(Path(f)) for f in files}
        self.items[key] = {"fingerprint": fp, "outputs": outs}
        outputs.write_bytes_atomic(self.path, outputs.json_bytes(self.items))
        self.digests.save()

    def forget(self, key: str) -> None:
        """Drop an item (it failed, or its inputs changed)."""
        if self.items.pop(key, None) is not None:
            outputs.write_bytes_atomic(self.path, outputs.json_bytes(self.items))
