"""Displacement fields decoded once into scratch, shared by the check, the tracks and the volumes.

A 25 um warp is ~0.9 GB of gzip; decompressing it is most of what reading it costs, and ITK
reads it whole (as double: twice its size) for every call. Here each warp file is read exactly
once, by :func:`alignprep.inputs.transform_files.scan_warp` (every check of a complete read:
gzip CRC, header, finite values, magnitudes), which writes its voxels as
raw little-endian float32 to ``<scratch_root>/alignprep-fields/``. Every later use (the transform
check's sample points, every track, every volume, in any process) maps that file read-only and
touches only the pages it needs.

An entry belongs to one file version: its name hashes the file's absolute path and its
(device, inode, size, mtime) identity, the key :class:`alignprep.state.FileDigests` trusts too.
A changed file gets a new entry and the old one is removed; a file that fails the scan gets
none. Entries are written under a temporary name and renamed, so a reader never sees half of
one, and two processes decoding the same file at once both end with the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import outputs
from ..errors import InputError
from ..logs import get_logger
from ..outputs import TEMP_MARK
from ..reads import note_file
from ..space.fields import AffineStep, ChainMap, FieldStep
from ..space.frames import ImageHeader
from ..space.transforms import Chain
from .transform_files import TransformLimits, WarpScan, check_peak, read_itk_affine, scan_warp

log = get_logger("inputs.field_store")

STORE_DIR = "alignprep-fields"
FORMAT = "alignprep-decoded-field/1"


@dataclass(frozen=True)
class DecodedField:
    """One warp file's voxels as raw float32 (3, nk, nj, ni) in the store, and its scan."""

    scan: WarpScan
    data: Path

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(component, k, j, i)."""
        ni, nj, nk = self.scan.header.size
        return (3, nk, nj, ni)

    def open(self) -> np.ndarray:
        """A read-only memory map of the voxels (pages are read on first touch)."""
        return np.memmap(self.data, dtype="<f4", mode="r", shape=self.shape)

    def step(self) -> FieldStep:
        """The field as a chain step."""
        return FieldStep(self.scan.header, self.open, str(self.scan.path))


class FieldStore:
    """The decoded fields under ``<scratch_root>/alignprep-fields``."""

    def __init__(self, scratch_root: Path) -> None:
        self.root = Path(scratch_root) / STORE_DIR

    def get(self, path: Path, limits: TransformLimits | None = None) -> DecodedField:
        """The decoded field of ``path``: from the store, else read (and checked) now."""
        limits = limits or TransformLimits()
        path = Path(path).absolute()
        note_file(path)
        try:
            name = _entry_name(path)
        except OSError as exc:
            raise InputError(f"cannot read the displacement field: {exc}", file=path) from None
        hit = self._load(name, path, limits)
        if hit is not None:
            return hit
        return self._decode(path, name, limits)

    def get_many(
        self, paths: list[Path], limits: TransformLimits | None = None, threads: int = 1
    ) -> dict[Path, DecodedField | InputError]:
        """:meth:`get` for several files at once (decompression runs outside the GIL); a file
        that cannot be read, checked or stored gets its error instead."""

        def one(path: Path) -> DecodedField | InputError:
            try:
                return self.get(path, limits)
            except InputError as exc:
                return exc
            except OSError as exc:  # the store cannot be written (a full or read-only scratch)
                return InputError(f"cannot decode it into {self.root}: {exc}", file=path)

        with ThreadPoolExecutor(max(1, min(threads, len(paths)))) as pool:
            return dict(zip(paths, pool.map(one, paths), strict=True))

    def chain_map(self, chain: Chain, limits: TransformLimits | None = None) -> ChainMap:
        """The steps of an ANTs transform list: affines parsed, fields decoded (once)."""
        steps: list[AffineStep | FieldStep] = []
        for path, invert in zip(chain.files, chain.invert, strict=True):
            if path.name.endswith(".mat"):
                note_file(path)
                aff = read_itk_affine(path)
                try:
                    steps.append(
                        AffineStep.from_itk(aff.matrix, aff.translation, aff.center, invert)
                    )
                except np.linalg.LinAlgError:
                    raise InputError("the affine matrix is singular", file=path) from None
            elif invert:
                raise InputError("a displacement field cannot be inverted by ANTs", file=path)
            else:
                steps.append(self.get(path, limits).step())
        return ChainMap(tuple(steps))

    # --- entries ---------------------------------------------------------------------------

    def _load(self, name: str, path: Path, limits: TransformLimits) -> DecodedField | None:
        meta_path, data = self.root / f"{name}.json", self.root / f"{name}.f32"
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != FORMAT:
                return None
            header = ImageHeader.from_json(meta["header"])
            if data.stat().st_size != 12 * int(np.prod(header.size)):
                return None
        except (OSError, ValueError, KeyError, TypeError):
            return None
        check_peak(float(meta["max_abs_mm"]), limits, path)  # the limits may differ now
        scan = WarpScan(path, header, meta["dtype"], float(meta["max_abs_mm"]))
        return DecodedField(scan, data)

    def _decode(self, path: Path, name: str, limits: TransformLimits) -> DecodedField:
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale(path, name)
        tmp = self.root / f"{TEMP_MARK}{os.getpid()}-{name}.f32"
        try:
            with tmp.open("wb") as sink:
                scan = scan_warp(path, limits, sink=sink)
            data = self.root / f"{name}.f32"
            os.replace(tmp, data)
        finally:
            tmp.unlink(missing_ok=True)
        meta = {
            "format": FORMAT,
            "source": str(path),
            "header": scan.header.to_json(),
            "dtype": scan.dtype,
            "max_abs_mm": scan.max_abs_mm,
        }
        tmp_meta = self.root / f"{TEMP_MARK}{os.getpid()}-{name}.json"
        tmp_meta.write_text(json.dumps(meta, sort_keys=True))
        os.replace(tmp_meta, self.root / f"{name}.json")
        log.debug("decoded %s into %s", path, data)
        return DecodedField(scan, data)

    def _remove_stale(self, path: Path, name: str) -> None:
        """Entries of earlier versions of ``path``, and temporary files of dead processes."""
        prefix = name.split("-")[0]
        for entry in self.root.iterdir():
            if entry.name.startswith(f"{prefix}-") and not entry.name.startswith(name):
                entry.unlink(missing_ok=True)
        outputs.remove_stale_scratch(self.root)


def _entry_name(path: Path) -> str:
    """``<hash of the path>-<hash of its (device, inode, size, mtime)>``."""
    st = path.stat()
    where = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    version = f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    return f"{where}-{hashlib.sha256(version.encode()).hexdigest()[:16]}"
