"""What an item read, recorded by the readers themselves, so a re-run can prove it unchanged.

Every reader of an input calls :func:`note_file` (a file whose bytes it uses), :func:`note_header`
(an image of which it reads only the header), :func:`note_tree`
(a folder read as a whole: a zarr level, an analyzer) or :func:`note_listing` (a folder whose
listing decided what to read). The orchestration runs each item inside :func:`recording` and
stores the digests of what was noted (:meth:`Reads.digest`); the next run re-digests exactly those
inputs (:func:`changed`) and skips the item only when none changed. The fingerprint is therefore
computed from what the code actually read: a new reader cannot be forgotten by a separate list.

Keys are relative to the data root, so a moved or hard-linked data root is the same input.
Paths outside the data root (results read back, scratch files) are not inputs and are ignored.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache, wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .orchestration.state import FileDigests

#: Libraries whose behaviour shapes the outputs; their versions are part of every fingerprint.
LIBRARIES = (
    "antspyx",
    "numpy",
    "scipy",
    "nibabel",
    "pynrrd",
    "zarr",
    "numcodecs",
    "iblatlas",
    "spikeinterface",
    "aind-ephys-ibl-gui-conversion",
    "ONE-api",
    "pandas",
)


class Reads:
    """Inputs noted while an item ran: key -> (kind, absolute path, argument)."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str, str], None] = {}

    def add(self, kind: str, path: Path, arg: str = "") -> None:
        """Note one input (idempotent)."""
        self.entries[(kind, str(Path(path).absolute()), arg)] = None

    def merge(self, other: Reads) -> None:
        """Add every input of ``other``."""
        self.entries.update(other.entries)

    def digest(self, data_root: Path, digests: FileDigests) -> dict[str, str]:
        """``{key: digest}`` of every noted input inside ``data_root`` (keys are relative)."""
        root = Path(data_root).resolve()
        out = {}
        for kind, path, arg in self.entries:
            real = Path(path).resolve()
            if not real.is_relative_to(root):
                continue  # outputs read back, scratch: not inputs
            key = _key(kind, Path(path).absolute(), Path(data_root).absolute(), arg)
            out[key] = _digest(kind, Path(path), arg, digests)
        return dict(sorted(out.items()))


_ACTIVE: ContextVar[tuple[Reads, ...]] = ContextVar("alignprep_reads", default=())


@contextmanager
def recording() -> Iterator[Reads]:
    """Collect what the code inside the block reads (outer recordings see it too)."""
    reads = Reads()
    token = _ACTIVE.set((*_ACTIVE.get(), reads))
    try:
        yield reads
    finally:
        _ACTIVE.reset(token)


def replay(reads: Reads) -> None:
    """Note again everything in ``reads`` (a cached value used by a new item)."""
    for active in _ACTIVE.get():
        active.merge(reads)


def _note(kind: str, path: Path, arg: str = "") -> None:
    for active in _ACTIVE.get():
        active.add(kind, path, arg)


def note_file(path: Path) -> Path:
    """A file whose content this code reads; returns ``path``."""
    _note("file", Path(path))
    return Path(path)


def note_header(path: Path) -> Path:
    """An image file of which only the header (geometry) is read: voxel edits do not count."""
    _note("head", Path(path))
    return Path(path)


def note_tree(path: Path, content_limit_bytes: int | None = None) -> Path:
    """A folder read as a whole (every file below it); large files by size and mtime."""
    _note("tree", Path(path), "" if content_limit_bytes is None else str(content_limit_bytes))
    return Path(path)


def note_listing(folder: Path, pattern: str) -> Path:
    """A folder whose entries matching ``pattern`` decided what was read."""
    _note("list", Path(folder), pattern)
    return Path(folder)


def recorded_cache(method):
    """Cache a no-argument method's value together with what computing it read.

    Later calls return the cached value and note its reads again, so every item that uses a
    value depends on the inputs behind it, not only the first one.
    """
    attr = f"_recorded_{method.__name__}"

    @wraps(method)
    def wrapper(self):
        hit = self.__dict__.get(attr)
        if hit is None:
            with recording() as reads:
                value = method(self)
            self.__dict__[attr] = hit = (value, reads)
        else:
            replay(hit[1])
        return hit[0]

    return property(wrapper)


def _key(kind: str, path: Path, root: Path, arg: str) -> str:
    try:
        rel = path.relative_to(root).as_posix()
    except ValueError:
        rel = path.resolve().relative_to(root.resolve()).as_posix()
    return f"{kind}:{arg}:{rel}"


def _digest(kind: str, path: Path, arg: str, digests: FileDigests) -> str:
    try:
        if kind == "file":
            return digests.file(path) if path.is_file() else "missing"
        if kind == "head":
            return _header_digest(path) if path.is_file() else "missing"
        if kind == "tree":
            limit = int(arg) if arg else None
            if not path.exists():
                return "missing"
            return digests.tree(path) if limit is None else digests.tree(path, limit)
        names = sorted(p.name for p in path.glob(arg)) if path.is_dir() else []
        return hashlib.sha256("\0".join(names).encode()).hexdigest()
    except OSError as exc:
        return f"unreadable: {exc.strerror}"


def _header_digest(path: Path) -> str:
    """sha256 of an image header as its reader parses it (NIfTI header block, NRRD fields)."""
    try:
        if path.name.endswith(".nrrd") or path.name.endswith(".nhdr"):
            import nrrd

            fields = nrrd.read_header(str(path))
            blob = json.dumps({k: str(v) for k, v in fields.items()}, sort_keys=True).encode()
        else:
            import nibabel as nib

            blob = nib.load(str(path)).header.binaryblock
    except Exception as exc:  # unreadable: a digest that cannot match a readable header
        return f"unreadable header: {type(exc).__name__}"
    return hashlib.sha256(blob).hexdigest()


def changed(inputs: dict[str, str], data_root: Path, digests: FileDigests) -> list[str]:
    """Keys of recorded ``inputs`` whose digest differs now (empty when all are unchanged)."""
    out = []
    for key, old in inputs.items():
        kind, arg, rel = key.split(":", 2)
        if _digest(kind, Path(data_root) / rel, arg, digests) != old:
            out.append(key)
    return out


@cache
def code_identity() -> dict[str, str]:
    """sha256 of this package's source files and the versions of the libraries it relies on."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            h.update(f"{path.relative_to(root).as_posix()}\0".encode())
            h.update(path.read_bytes())
    out = {"alignprep_sources": h.hexdigest()}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def params_fingerprint(params: Any) -> str:
    """sha256 of an item's effective parameters and :func:`code_identity`."""
    blob = json.dumps({"code": code_identity(), "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
