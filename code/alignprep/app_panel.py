"""The Code Ocean App Panel (``.codeocean/app-panel.json``), generated from the parameters.

Every user-facing parameter of ``code/params.json`` (all but the three roots, which Code Ocean
fixes) becomes a named App Panel field with its type, default and help, so the panel and the
parameters cannot drift (``tests/test_app_panel.py`` regenerates and compares). Code Ocean passes
named parameters as ``--<param_name> <value>``; :mod:`alignprep.cli` accepts that underscore
spelling and treats a blank field as "the default".

Regenerate after changing a parameter::

    python -m alignprep.app_panel
"""

from __future__ import annotations

import hashlib
import json
import typing
from pathlib import Path
from typing import Any, Literal

from .cli import iter_parameters
from .config import PipelineConfig, expected_type, load_defaults

PANEL_PATH = Path(__file__).resolve().parents[2] / ".codeocean" / "app-panel.json"
FIXED_BY_CODE_OCEAN = ("data_root", "results_root", "scratch_root")


def _id(key: str) -> str:
    """A stable 16-character id per parameter (the panel keeps values across regenerations)."""
    digest = hashlib.sha256(key.encode()).digest()
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:16])


def _choices(annotation: Any) -> list[str] | None:
    """The allowed values of a boolean or a ``Literal`` (possibly wrapped in Annotated)."""
    if annotation is bool:
        return ["false", "true"]
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) is Literal:
        return [str(a) for a in typing.get_args(annotation)]
    return None


def _text(value: Any) -> str:
    """A default as the App Panel shows it ("" for null: blank means the default)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def app_panel(defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """The App Panel document for the current parameters and defaults."""
    defaults = load_defaults() if defaults is None else defaults
    params = []
    for key, field, default, model in iter_parameters(PipelineConfig, defaults):
        if key in FIXED_BY_CODE_OCEAN:
            continue
        name = key.replace(".", "_")
        expected = expected_type(model, key.rsplit(".", 1)[-1])
        entry: dict[str, Any] = {
            "id": _id(key),
            "name": name,
            "param_name": name,
            "description": field.description,
            "help_text": f"{field.description} Expected: {expected}. Blank = the default.",
            "type": "text",
            "value_type": "string",
            "default_value": _text(default),
        }
        choices = _choices(field.annotation)
        if choices is not None:
            entry.update(type="list", extra_data=choices)
        elif field.annotation in (int, float) or "number" in expected:
            entry["value_type"] = "number"
        params.append(entry)
    return {"version": 1, "named_parameters": True, "parameters": params}


def panel_text(defaults: dict[str, Any] | None = None) -> str:
    """The file's exact text (tab-indented JSON, as Code Ocean writes it)."""
    return json.dumps(app_panel(defaults), indent="\t", ensure_ascii=False) + "\n"


def main() -> None:
    """Write ``.codeocean/app-panel.json``."""
    PANEL_PATH.parent.mkdir(exist_ok=True)
    PANEL_PATH.write_text(panel_text(), encoding="utf-8")


if __name__ == "__main__":
    main()
