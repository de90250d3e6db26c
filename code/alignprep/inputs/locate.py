"""Locate and read input files: the only candidate for a null path, JSON objects, confinement."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..reads import note_file, note_listing


def single_top_level_file(data_root: Path, pattern: str, what: str, flag: str = "") -> Path:
    """The only file matching ``pattern`` directly in ``data_root``; InputError otherwise."""
    matches = sorted(p for p in note_listing(data_root, pattern).glob(pattern) if p.is_file())
    if len(matches) != 1:
        found = ", ".join(p.name for p in matches) or "none"
        raise InputError(
            f"expected exactly one {what} ({pattern}) at the top of the data root, found: {found}; "
            f"name it with {flag or 'its parameter'}",
            file=data_root,
        )
    return matches[0]


def one_file_below(
    data_root: Path, cell: str, name: str, what: str, hint: str = "", mouse_id: str = ""
) -> Path:
    """``data_root/*/<name>``: the one file of that name exactly one folder below the data root.

    ``cell`` is the manifest value the name comes from (a plain name, never a path). With
    ``mouse_id``, when several folders hold the name, the one whose folder name contains the
    mouse id is taken (tools write fixed names). InputError names the pattern, or every match.
    """
    data_root = Path(data_root)
    pattern = data_root / "*" / name
    if not cell or "/" in cell or "\\" in cell or cell in (".", ".."):
        msg = f"probe_file {cell!r} is not a plain file name; expected a basename"
        raise InputError(msg, file=pattern, key="probe_file")
    if not data_root.is_dir():
        raise InputError("data_root is not a directory", file=data_root)
    note_listing(data_root, f"*/{name}")
    matches = sorted(d / name for d in data_root.iterdir() if (d / name).is_file())
    if len(matches) > 1 and mouse_id:
        mine = [m for m in matches if mouse_id in m.parent.name]
        matches = mine if len(mine) == 1 else matches
    if not matches:
        raise InputError(
            f"no {what} matches; expected exactly one, one folder below data_root{hint}",
            file=pattern,
            key="probe_file",
        )
    if len(matches) > 1:
        mice = (
            f" and none or several are in a folder named after mouse {mouse_id!r}"
            if mouse_id
            else ""
        )
        raise InputError(
            f"{len(matches)} {what}s match ({', '.join(map(str, matches))}){mice}; "
            "expected exactly one",
            file=pattern,
            key="probe_file",
        )
    return matches[0]


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; InputError naming the file otherwise."""
    try:
        obj = json.loads(note_file(Path(path)).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read JSON: {exc}", file=path) from None
    if not isinstance(obj, dict):
        raise InputError("expected a JSON object", file=path)
    return obj


def confine(path: Path, data_root: Path, key: str | None = None) -> Path:
    """``path`` if it resolves (symlinks followed) inside ``data_root``; InputError otherwise.

    Every input is read from the data root only: a parameter, a manifest cell or a symlink
    that leads elsewhere is refused, naming where it leads.
    """
    root = Path(data_root).resolve()
    real = Path(path).resolve()
    if not real.is_relative_to(root):
        raise InputError(
            f"resolves to {real}, outside the data root {root}; every input must be inside the "
            "data root (mount or copy it there, or set --data-root to a folder that contains it)",
            file=path,
            key=key,
        )
    return Path(path)
