"""Neuroglancer data-source URLs: which format, which store, which path (inputs.md section 3).

Neuroglancer writes a source either in the legacy form ``<format>://<store-url>`` (``zarr://``,
``zarr2://``, ``zarr3://``, ``n5://``, ``precomputed://``) or as a URL pipeline
``<store-url>|<adapter>:...|<format>:<extra/path>`` (``s3://b/x.zarr/|zarr2:``). A store URL is
``s3://bucket/...``, ``gs://bucket/...``, ``http(s)://host/...``, ``file:///...`` or, in our
capsule, a plain path. This module only parses; it reads nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

ASSET_MARKER = "image_tile_fusing"
OMEZARR_FOLDER = "OMEZarr"
CHANNEL_SUFFIXES = (".ome.zarr", ".zarr")  # longest first
ZARR_FORMATS = frozenset({"zarr", "zarr2", "zarr3"})
# Neuroglancer data formats and services that are not zarr (legacy ``<name>://`` prefixes).
OTHER_FORMATS = frozenset(
    {
        "n5",
        "precomputed",
        "nifti",
        "deepzoom",
        "graphene",
        "boss",
        "brainmaps",
        "dvid",
        "render",
        "python",
        "vtk",
        "obj",
        "nggraph",
        "local",
        "ngauth",
        "middleauth",
    }
)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.DOTALL)
_PIPE_PART = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):(.*)$", re.DOTALL)
# "zarr:s3://..." or "zarr:/s3://...": a format prefix written without its two slashes
_SHORT_PREFIX = re.compile(r"^(zarr[23]?|n5|precomputed):/?(?=[A-Za-z][A-Za-z0-9+.\-]*://)", re.I)


@dataclass(frozen=True)
class DataSource:
    """A parsed source URL.

    ``format`` is ``"zarr"`` for every zarr version, another format name, or None when the URL
    names none (Neuroglancer then auto-detects). ``scheme`` is the store scheme (``"s3"``,
    ``"gs"``, ``"https"``, ``"file"``, ...) or ``""`` for a plain path. ``parts`` are the
    percent-decoded path components inside the store (bucket or host excluded). ``adapters``
    lists other pipeline stages (``zip``, ``ocdbt``...), which our layout never uses.
    """

    url: str
    format: str | None
    scheme: str
    parts: tuple[str, ...]
    adapters: tuple[str, ...]
    local: bool  # file:// URL or plain absolute path

    @property
    def local_path(self) -> str | None:
        """The absolute local path for ``file://`` URLs and plain absolute paths, else None."""
        return "/" + "/".join(self.parts) if self.local else None


def parse_source(url: str) -> DataSource:
    """Parse a Neuroglancer source URL (legacy prefix or pipeline form); never raises."""
    text = url.strip()
    stages = text.split("|")
    store, fmt = stages[0].strip(), None
    short = _SHORT_PREFIX.match(store)
    if short:
        store = f"{short.group(1)}://{store[short.end() :]}"
    legacy = _SCHEME.match(store)
    if legacy and legacy.group(1).lower() in ZARR_FORMATS | OTHER_FORMATS:
        name = legacy.group(1).lower()
        fmt = "zarr" if name in ZARR_FORMATS else name
        store = legacy.group(2)
    extra: list[str] = []
    adapters: list[str] = []
    for stage in stages[1:]:
        match = _PIPE_PART.match(stage.strip())
        name = match.group(1).lower() if match else stage.strip()
        rest = match.group(2).split("#", 1)[0] if match else ""
        if name in ZARR_FORMATS:
            fmt = "zarr"
            extra.append(rest)
        elif name in OTHER_FORMATS or name == "neuroglancer-precomputed":
            fmt = "precomputed" if name.startswith("neuroglancer") else name
        else:
            adapters.append(name)
    scheme, path = "", store
    kv = _SCHEME.match(store)
    if kv:
        scheme = kv.group(1).lower()
        split = urlsplit(store)
        if scheme == "file" and split.netloc not in ("", "localhost"):
            path = split.netloc + split.path  # file://relative/path: not a standard form
        else:  # the bucket (s3, gs) or host (http, https) is not part of the path
            path = split.path
    path = path.split("#", 1)[0]
    components = [unquote(p) for p in "/".join([path, *extra]).split("/")]
    parts = tuple(p for p in components if p not in ("", "."))
    return DataSource(
        url=url,
        format=fmt,
        scheme=scheme,
        parts=parts,
        adapters=tuple(adapters),
        local=scheme == "file" or (not kv and store.startswith("/")),
    )


def channel_name(folder: str) -> str | None:
    """``Ex_639_Em_667`` from ``Ex_639_Em_667.zarr`` or ``Ex_639_Em_667.ome.zarr``; else None."""
    for suffix in CHANNEL_SUFFIXES:
        if folder.endswith(suffix) and len(folder) > len(suffix):
            return folder[: -len(suffix)]
    return None


@dataclass(frozen=True)
class AssetChannel:
    """Where an image source sits in the SmartSPIM layout."""

    asset: str  # the folder directly above image_tile_fusing
    channel: str  # channel name, without .zarr / .ome.zarr
    folder: str  # the channel folder as written (<channel>.zarr or <channel>.ome.zarr)
    local_asset: str | None  # absolute local asset path when the source is a local path


def asset_channel(source: DataSource) -> tuple[AssetChannel | None, str]:
    """The asset and channel of an OME-Zarr channel source, or (None, why it is not one).

    The expected layout is ``<...>/<asset>/image_tile_fusing/OMEZarr/<channel>(.ome).zarr``;
    anything before ``<asset>`` (bucket, nested prefixes, host) is ignored.
    """
    if source.adapters:
        return None, f"it goes through {'/'.join(source.adapters)} (not a plain zarr folder)"
    if source.format not in (None, "zarr"):
        return None, f"its format is {source.format}, not OME-Zarr"
    parts = source.parts
    if ASSET_MARKER not in parts or parts.index(ASSET_MARKER) == 0:
        return None, f"its path has no '<asset>/{ASSET_MARKER}/' component"
    i = parts.index(ASSET_MARKER)
    tail = parts[i + 1 :]
    channel = channel_name(tail[-1]) if len(tail) == 2 and tail[0] == OMEZARR_FOLDER else None
    if channel is None:
        return None, (
            f"its path after '{ASSET_MARKER}/' is {'/'.join(tail) or 'empty'!r}, not "
            f"'{OMEZARR_FOLDER}/<channel>.zarr' (or .ome.zarr)"
        )
    if source.format is None and source.scheme not in ("", "file", "s3", "gs", "http", "https"):
        return None, f"its store scheme {source.scheme!r} is unknown"
    local_asset = "/" + "/".join(parts[:i]) if source.local else None
    return AssetChannel(parts[i - 1], channel, tail[-1], local_asset), ""
