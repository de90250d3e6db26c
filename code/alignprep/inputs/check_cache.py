"""Passed transform checks, remembered by the content of what they read.

The check of a mouse's two registrations (``transform_check``) reads every file completely and
runs ANTs in a child process: 6-10 s on small data, over a minute at real size. Its verdict
depends only on the bytes of the files it reads (affine, warps, the images it compares, with the
geometry the metadata gives them) and on the check's own rules. A clean pass is therefore stored
under a key made of both, one JSON file per key in ``<cache_root>/transform-checks/``, and a later
run whose files have the same content (wherever they are: paths are not part of the key) reuses
it instead of checking again; the validation report says so on each line. Nothing else is
stored: a registration with an error or a warning is checked anew by every run. Digests are
sha256 of file content, themselves cached by (device, inode, size, mtime) as for re-runs
(``orchestration.state``).

``cache_root`` is ``ALIGNPREP_CACHE_DIR`` when set, else ``<scratch_root>/alignprep-cache``
(empty on every Code Ocean run; kept between local runs that share a scratch folder).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__, outputs
from ..logs import get_logger

if TYPE_CHECKING:
    from ..orchestration.state import FileDigests
    from .registration_check import RegistrationCheck
    from .registration_images import ImageSource
    from .transform_check import TransformReport
    from .transform_files import TransformLimits

log = get_logger("inputs.check_cache")

CACHE_ENV = "ALIGNPREP_CACHE_DIR"
RULES_VERSION = 1  # bump whenever the check's rules change what it concludes


def cache_root(scratch_root: Path, environ: dict[str, str] | None = None) -> Path:
    """``ALIGNPREP_CACHE_DIR`` if set, else ``<scratch_root>/alignprep-cache``."""
    environ = dict(os.environ) if environ is None else environ
    chosen = environ.get(CACHE_ENV, "").strip()
    return Path(chosen) if chosen else Path(scratch_root) / "alignprep-cache"


class CheckCache:
    """Passed verdicts of the transform check under ``<root>/transform-checks/<key>.json``."""

    def __init__(self, root: Path) -> None:
        from ..orchestration.state import FileDigests

        self.folder = Path(root) / "transform-checks"
        self.digests: FileDigests = FileDigests(self.folder / "digests.json")

    def key(self, items: list[RegistrationCheck], limits: TransformLimits) -> str | None:
        """sha256 of the rules (version, limits) and of the content of every file checked.

        None (never cached) when an image does not say which files it is read from.
        """
        images = [src for item in items for src in (item.fixed, item.moving) if src is not None]
        if any(not src.sources for src in images):
            return None
        what = {
            "alignprep": __version__,
            "rules": RULES_VERSION,
            "limits": asdict(limits),
            "registrations": [self._registration(item) for item in items],
        }
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()

    def get(self, key: str) -> TransformReport | None:
        """The stored passed verdict for ``key``, None if absent or unreadable."""
        from .transform_check import TransformReport

        try:
            data = json.loads((self.folder / f"{key}.json").read_text())
            passed = [str(line) for line in data["passed"]]
            seconds = float(data["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return TransformReport(passed=passed, seconds=seconds, cached=True)

    def put(self, key: str, report: TransformReport) -> None:
        """Store a clean pass (atomic). Nothing is stored after an error or a warning (its text
        names files by their path, which differs between copies of the same bytes)."""
        if report.problems:
            return
        body = {
            "passed": report.passed,
            "seconds": round(report.seconds, 3),
        }
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            outputs.write_bytes_atomic(
                self.folder / f"{key}.json", json.dumps(body, indent=1).encode()
            )
            self.digests.save()
        except OSError as exc:  # a cache that cannot be written costs time, never a result
            log.warning("transform check verdict not cached in %s: %s", self.folder, exc)

    def _registration(self, item: RegistrationCheck) -> dict[str, object]:
        reg = item.registration
        return {
            "name": item.name,
            "affine": self.digests.file(reg.affine),
            "inverse_warp": self.digests.file(reg.inverse_warp),
            "warp": self.digests.file(reg.warp) if reg.warp else None,
            "fixed": self._image(item.fixed),
            "moving": self._image(item.moving),
        }

    def _image(self, source: ImageSource | None) -> dict[str, object] | None:
        if source is None:
            return None
        return {
            "name": source.name,
            "geometry": source.geometry,
            "content": [self.digests.tree(p) if p.exists() else None for p in source.sources],
        }
