"""Reading a Neuroglancer state file: the JSON object, its layers and their source entries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..reads import note_file

LOCAL_ANNOTATIONS = "local://annotations"


def read_state(path: Path) -> dict:
    """Read a Neuroglancer state file; it must hold one JSON object."""
    path = Path(path)
    if not path.is_file():
        raise InputError("file not found; expected a Neuroglancer state JSON file", file=path)
    try:
        state = json.loads(note_file(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON ({exc.msg}, column {exc.colno}); expected a Neuroglancer state",
            file=path,
            row=exc.lineno,
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the file as UTF-8 text: {exc}", file=path) from exc
    if not isinstance(state, dict):
        what = type(state).__name__
        raise InputError(f"top-level JSON is a {what}; expected an object (a state)", file=path)
    return state


def state_layers(state: dict, file: Path) -> list[dict]:
    """The layer objects of a state (list form, or the legacy ``{"name": {...}}`` form)."""
    layers = state.get("layers", [])
    if isinstance(layers, dict):  # legacy states: {"name": {...}, ...}
        layers = [{"name": k, **v} for k, v in layers.items() if isinstance(v, dict)]
    if not isinstance(layers, list):
        raise InputError("'layers' must be a list of layer objects", file=file, key="layers")
    return [layer for layer in layers if isinstance(layer, dict)]


def source_entries(layer: dict) -> list[Any]:
    """A layer's ``source``: a URL string, an object with ``url``, or a list of those."""
    source = layer.get("source")
    if source is None:
        return []
    return list(source) if isinstance(source, list) else [source]


def entry_url(entry: Any) -> Any:
    """The URL of one source entry (the entry itself when it is a string)."""
    return entry.get("url") if isinstance(entry, dict) else entry
