"""Locate and read input files: the only candidate for a null path, JSON objects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError


def single_top_level_file(data_root: Path, pattern: str, what: str) -> Path:
    """The only file matching ``pattern`` directly in ``data_root``; InputError otherwise."""
    matches = sorted(p for p in Path(data_root).glob(pattern) if p.is_file())
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise InputError(
            f"expected exactly one {what} ({pattern}) at the top of the data root, found: {found}; "
            "name it with its parameter",
            file=data_root,
        )
    return matches[0]


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; InputError naming the file otherwise."""
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read JSON: {exc}", file=path) from None
    if not isinstance(obj, dict):
        raise InputError("expected a JSON object", file=path)
    return obj
