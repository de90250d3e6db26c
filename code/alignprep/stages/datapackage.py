"""Read and check ``datapackage.json``: the shipped JSON Schema, reference resolution, loading.

Every file reference is ``{"asset": key | null, "path": relative}``: a null asset is relative to
the mouse folder (where ``datapackage.json`` lives); otherwise ``key`` names an
``external_assets`` entry and ``path`` is inside that asset's folder under ``data_root``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from ..errors import AlignprepError, InputError
from ..outputs import DATAPACKAGE_NAME

#: 4.3.0 (4.1.0 + per probe channel_regions + an optional qc entry) + light_sheet: runs on
#: tracing tools' CCF tracks have no transforms, histology or image-space picks
SCHEMA_VERSION = "4.4.0"
READABLE_VERSIONS = ("4.1.0", "4.2.0", "4.3.0", SCHEMA_VERSION)  # what load_datapackage accepts
CODE_OCEAN_DATA = Path("/data")


class PackageError(AlignprepError):
    """``datapackage.json`` was not written (or cannot be read); ``missing`` lists absent files."""

    def __init__(self, message: str, missing: Sequence[Path] = ()) -> None:
        self.missing = tuple(Path(p) for p in missing)
        super().__init__(message)


# --- schema ----------------------------------------------------------------------------------


def schema_name(version: str = SCHEMA_VERSION) -> str:
    """File name of the shipped schema of a layout version."""
    return f"datapackage-{version}.schema.json"


@cache
def _schema_text(version: str) -> str:
    return resources.files("alignprep").joinpath("schemas", schema_name(version)).read_text("utf-8")


def schema(version: str = SCHEMA_VERSION) -> dict[str, Any]:
    """The shipped JSON Schema (draft 2020-12) of a layout version (a fresh copy)."""
    return json.loads(_schema_text(version))


def document_version(document: Any) -> str:
    """The readable layout a document declares, else the one this package writes."""
    version = document.get("schema_version") if isinstance(document, dict) else None
    return version if version in READABLE_VERSIONS else SCHEMA_VERSION


def schema_errors(document: Any) -> list[str]:
    """Every schema violation of ``document`` as ``<json pointer>: <message>`` (empty if valid),
    against the schema of the version it declares (4.1.0 documents stay readable)."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema(document_version(document)))
    errors = sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    out = [f"/{'/'.join(map(str, e.path))}: {e.message}" for e in errors]
    if not out:
        out = _semantic_errors(document)
    return out


def _semantic_errors(document: dict[str, Any]) -> list[str]:
    """What the schema cannot say: asset keys exist; probe keys match their content."""
    out = []
    assets = document["external_assets"]
    for pointer, ref in iter_references(document):
        if ref["asset"] is not None and ref["asset"] not in assets:
            out.append(f"{pointer}: asset {ref['asset']!r} is not in external_assets")
    for recording, collections in document["probes"].items():
        for collection, probe in collections.items():
            if probe["ephys_collection"] != collection:
                out.append(f"/probes/{recording}/{collection}: ephys_collection differs")
    return out


def iter_references(document: Any, pointer: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every ``{"asset", "path"}`` reference of a document, with its JSON pointer."""
    if isinstance(document, dict):
        if set(document) == {"asset", "path"}:
            yield pointer, document
            return
        for key in sorted(document):
            yield from iter_references(document[key], f"{pointer}/{key}")
    elif isinstance(document, list):
        for k, item in enumerate(document):
            yield from iter_references(item, f"{pointer}/{k}")


# --- reading ---------------------------------------------------------------------------------


def resolve(
    ref: Mapping[str, Any],
    package_dir: Path,
    data_root: Path | None = None,
    assets: Mapping[str, Any] | None = None,
) -> Path:
    """Absolute path of a reference: package-relative, or ``data_root/<asset name>/<path>``.

    ``assets`` is the document's ``external_assets``; an asset with a ``file://`` uri (one that
    is not a folder of ``data_root``) resolves against that uri instead.
    """
    inner = PurePosixPath(ref["path"])
    key = ref["asset"]
    if key is None:
        return Path(package_dir) / inner
    entry = (assets or {}).get(key)
    if entry is None:
        raise PackageError(f"reference {dict(ref)}: asset {key!r} is not in external_assets")
    uri = entry.get("uri")
    if uri and uri.startswith("file:"):
        return Path(unquote(urlparse(uri).path)) / inner
    if data_root is None:
        raise PackageError(f"reference {dict(ref)}: resolving asset {key!r} needs data_root")
    return Path(data_root) / entry["name"] / inner


@dataclass(frozen=True)
class DataPackage:
    """A read, validated ``datapackage.json``."""

    path: Path
    document: dict[str, Any]
    data_root: Path | None = None

    @property
    def package_dir(self) -> Path:
        """The mouse folder (base of every asset-null reference)."""
        return self.path.parent

    def resolve(self, ref: Mapping[str, Any]) -> Path:
        """Absolute path of one reference of this package."""
        return resolve(ref, self.package_dir, self.data_root, self.document["external_assets"])

    def references(self) -> dict[str, Path]:
        """Every reference, by JSON pointer, resolved to an absolute path."""
        return {p: self.resolve(ref) for p, ref in iter_references(self.document)}

    def missing(self) -> list[str]:
        """JSON pointers of the references whose file or folder does not exist."""
        return [p for p, path in self.references().items() if not path.exists()]


def load_datapackage(path: Path, data_root: Path | None = None) -> DataPackage:
    """Read and validate ``datapackage.json`` (or a mouse folder holding one).

    ``data_root`` resolves external assets; default ``/data`` when the package says
    ``platform: code_ocean``.
    """
    path = Path(path)
    if path.is_dir():
        path = path / DATAPACKAGE_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("datapackage not found", file=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read JSON: {exc}", file=path) from None
    problems = schema_errors(document)
    if problems:
        name = schema_name(document_version(document))
        raise InputError(f"does not match {name}: " + "; ".join(problems), file=path)
    if data_root is None and document["platform"] == "code_ocean":
        data_root = CODE_OCEAN_DATA
    return DataPackage(path, document, None if data_root is None else Path(data_root))
