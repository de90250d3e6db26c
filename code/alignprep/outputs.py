"""The output layout (every path the capsule writes) and atomic writers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

EFFECTIVE_CONFIG_NAME = "effective_config.json"


def effective_config_path(results_root: Path) -> Path:
    """Where the effective configuration of a run is written."""
    return results_root / EFFECTIVE_CONFIG_NAME


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to a temporary sibling, then rename it onto ``path``.

    A reader never sees a partial file: either the old content or the new one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON (stable bytes for equal content)."""
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, text.encode("utf-8"))
