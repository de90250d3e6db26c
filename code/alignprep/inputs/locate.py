"""Locate inputs that a parameter may leave unset (``null`` = the only candidate)."""

from __future__ import annotations

from pathlib import Path

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
