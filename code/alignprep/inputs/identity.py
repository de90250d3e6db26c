"""Whose data is this? The subject of an asset, from its name and its metadata.

AIND assets are named ``<modality>_<subject>_<YYYY-MM-DD>_<HH-MM-SS>[_<process>_<date>_<time>]``
and carry the subject in ``data_description.json`` (``subject_id``), ``subject.json``
(``subject_id``) or ``metadata.nd.json`` (``subject.subject_id``). The manifest's mouse id must
equal every subject found, as text: ``123`` is not ``000123``. Attaching another mouse's asset is
otherwise silent, because its data look just as plausible.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import InputError
from ..reads import note_file

NAME_RE = re.compile(
    r"^(?:[A-Za-z][A-Za-z0-9-]*_)?(?P<subject>[^_]+)_\d{4}-\d{2}-\d{2}_\d{2}-\d{2}-\d{2}(?:_|$)"
)
METADATA = (
    ("data_description.json", ("subject_id",)),
    ("subject.json", ("subject_id",)),
    ("metadata.nd.json", ("subject", "subject_id")),
    ("metadata.nd.json", ("data_description", "subject_id")),
)


def subject_from_name(name: str) -> str | None:
    """The subject token of an AIND asset name, or None when the name has no date/time."""
    match = NAME_RE.match(name)
    return match.group("subject") if match else None


def subjects_of(folder: Path) -> dict[str, str]:
    """``{where: subject}`` from the folder's name and its metadata files (those that say)."""
    found: dict[str, str] = {}
    name = subject_from_name(folder.name)
    if name is not None:
        found[f"folder name {folder.name!r}"] = name
    for filename, keys in METADATA:
        path = folder / filename
        if not path.is_file():
            continue
        try:
            node = json.loads(note_file(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # the readers that need this file report it
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str | int) and not isinstance(node, bool) and str(node).strip():
            found[f"{path.name} {'.'.join(keys)}"] = str(node).strip()
    return found


def check_subject(folder: Path, mouse_id: str, what: str) -> list[str]:
    """Raise InputError naming both values when ``folder`` belongs to another subject.

    Returns warnings: none when the subject was confirmed, one when nothing names a subject.
    """
    found = subjects_of(Path(folder))
    wrong = {where: s for where, s in found.items() if s != mouse_id}
    if wrong:
        detail = "; ".join(f"{where} says {s!r}" for where, s in wrong.items())
        raise InputError(
            f"{what} belongs to another subject: {detail}, but the manifest's mouseid is "
            f"{mouse_id!r} (ids are compared as text: 123 is not 000123)",
            file=folder,
        )
    if not found:
        return [f"{what} {folder}: no subject id in its name or metadata; not verified"]
    return []
