"""Neuroglancer states: image layers -> SmartSPIM asset; annotation layers -> probe-track points.

Contract: ``inputs.md`` sections 3 and 3b, ``coordinates.md`` section 1 (F0 -> F1), and
docs/inputs/neuroglancer.md. Pieces: :mod:`.ng_state` (the JSON), :mod:`.ng_sources` (source
URLs), :mod:`.ng_transform` (source transforms), :mod:`.ng_annotations` (pick lists) and
:mod:`.ng_tracks` (picks -> voxel indices).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .locate import one_file_below
from .ng_sources import ASSET_MARKER, asset_channel, parse_source
from .ng_state import entry_url, read_state, source_entries, state_layers
from .ng_tracks import TrackPoints, to_level0_index, track_points
from .ng_transform import IDENTITY, Placement, SourceTransform, image_placement

__all__ = [
    "ImageLayer",
    "ImageSources",
    "TrackPoints",
    "drawn_over",
    "find_probe_file",
    "image_layers",
    "image_sources",
    "read_state",
    "to_level0_index",
    "track_points",
]

logger = logging.getLogger("alignprep.inputs.neuroglancer")

ASSET_PREFIX = "SmartSPIM_"  # the Allen GUI globs <data_root>/SmartSPIM_<subject>*/...
EXPECTED_SOURCE = f"<asset>/{ASSET_MARKER}/OMEZarr/<channel>.zarr (or .ome.zarr)"


# ----------------------------------------------------------------------------------- image layers


@dataclass(frozen=True)
class ImageLayer:
    """One image-layer source that shows a channel of a SmartSPIM asset."""

    layer: str
    url: str
    asset: str
    channel: str
    local_asset: Path | None  # an existing local copy named by an absolute path / file:// URL
    placement: Placement


def image_layers(state: dict, file: Path) -> tuple[list[ImageLayer], list[str]]:
    """The asset-channel sources of a state's image layers, and why the others were ignored.

    Raises
    ------
    InputError
        A source that is neither a URL nor an object with ``url``, or a malformed transform.
    """
    found: list[ImageLayer] = []
    ignored: list[str] = []
    for layer in state_layers(state, file):
        if layer.get("type") != "image" or not isinstance(layer.get("name"), str):
            continue
        name = layer["name"]
        if not source_entries(layer):
            ignored.append(f"layer {name!r}: it has no source")
        for entry in source_entries(layer):
            url = entry_url(entry)
            if not isinstance(url, str):
                msg = f"image layer source is {entry!r}; expected a URL or an object with 'url'"
                raise InputError(msg, file=file, layer=name)
            where, why = asset_channel(parse_source(url))
            if where is None:
                ignored.append(f"layer {name!r} source {url!r}: {why}")
                continue
            raw = entry.get("transform") if isinstance(entry, dict) else None
            loc = {"file": file, "layer": name}
            transform = None if raw is None else SourceTransform.from_json(raw, loc)
            local = None
            if where.local_asset is not None and Path(where.local_asset).exists():
                local = Path(where.local_asset)
            found.append(
                ImageLayer(name, url, where.asset, where.channel, local, image_placement(transform))
            )
    for why in ignored:
        logger.info("%s: ignored %s (expected %s)", file, why, EXPECTED_SOURCE)
    return found, ignored


@dataclass(frozen=True)
class ImageSources:
    """The SmartSPIM asset that the image layers of a state point at."""

    asset_name: str
    asset_path: Path
    layer_names: tuple[str, ...]
    warnings: tuple[str, ...]
    layers: tuple[ImageLayer, ...] = ()
    file: Path | None = None

    def placement_key(self) -> list[list[Any]]:
        """Each asset layer's placement (JSON-able), for re-run fingerprints of the tracks."""
        return [[lay.layer, lay.channel, lay.placement.key()] for lay in self.layers]


def image_sources(state: dict, data_root: Path, file: Path) -> ImageSources:
    """Resolve the image layers of ``state`` to the one SmartSPIM asset they display.

    Sources that are not OME-Zarr channels of an asset (``precomputed://``, ``n5://``, other
    paths) are ignored with a log line.

    Raises
    ------
    InputError
        No usable image source, or image sources from several assets.
    """
    layers, ignored = image_layers(state, file)
    if not layers:
        seen = f" (ignored: {'; '.join(ignored)})" if ignored else ""
        raise InputError(
            f"no image layer shows a SmartSPIM asset channel{seen}; expected an image layer "
            f"(type 'image' with a 'name') whose source is {EXPECTED_SOURCE}",
            file=file,
        )
    assets = {lay.asset for lay in layers}
    if len(assets) > 1:
        mapping = ", ".join(f"{lay.layer!r} -> {lay.asset!r}" for lay in layers)
        raise InputError(
            f"image layers resolve to {len(assets)} different assets ({mapping}); "
            "expected every image layer to come from one stitched SmartSPIM asset",
            file=file,
        )
    asset_name = assets.pop()
    # local-path branch: an existing absolute local copy of the asset is used as it is
    local_dirs = sorted({str(lay.local_asset) for lay in layers if lay.local_asset is not None})
    if len(local_dirs) > 1:
        msg = f"image layers use several local copies of the asset: {', '.join(local_dirs)}"
        raise InputError(f"{msg}; expected one", file=file)
    asset_path = Path(local_dirs[0]) if local_dirs else Path(data_root) / asset_name
    warnings = []
    if not asset_name.startswith(ASSET_PREFIX):
        warnings.append(
            f"asset folder {asset_name!r} has no {ASSET_PREFIX!r} prefix: the Allen GUI looks "
            f"for <data_root>/{ASSET_PREFIX}<subject>*/image_atlas_alignment/ and will not find "
            "this asset's transforms unless it is attached under such a name"
        )
    for lay in layers:
        if not lay.placement.is_identity:
            logger.info("%s: image layer %r is %s", file, lay.layer, lay.placement.describe())
    names = tuple(dict.fromkeys(lay.layer for lay in layers))
    return ImageSources(asset_name, asset_path, names, tuple(warnings), tuple(layers), Path(file))


def drawn_over(
    state: dict,
    file: Path,
    layer_name: str,
    sources: ImageSources | None,
    registration_channel: str,
) -> Placement:
    """Placement of the image the annotations of ``file`` were drawn over.

    The image layers of the annotation file itself decide (the annotations live in that
    state); a file without image layers of the asset falls back to the main state's. Every
    channel of the asset shares one voxel grid, so any agreeing layer gives the registration
    channel's voxels.

    Raises
    ------
    InputError
        The layers disagree (which one the annotations were drawn over is unknown), the common
        transform is not a pure translation, the file shows another asset, or the file has no
        image layer while the main state's are transformed.
    """
    loc = {"file": Path(file), "layer": layer_name}
    here, _ = image_layers(state, Path(file))
    if here and sources is not None:
        others = sorted({lay.asset for lay in here} - {sources.asset_name})
        if others:
            raise InputError(
                f"the annotation file's image layers show asset(s) {others}, but the main state "
                f"shows {sources.asset_name!r}; expected the annotations to be drawn over the "
                "asset being processed",
                **loc,
            )
    candidates = here or (list(sources.layers) if sources is not None else [])
    where = "this annotation file" if here else f"the main state {sources.file if sources else ''}"
    if not candidates:
        return IDENTITY
    groups: list[tuple[Placement, list[str]]] = []
    for lay in candidates:
        label = f"{lay.layer!r} ({lay.channel})"
        for placement, labels in groups:
            if placement.same_as(lay.placement):
                labels.append(label)
                break
        else:
            groups.append((lay.placement, [label]))
    if len(groups) > 1:
        detail = "; ".join(f"{', '.join(labels)}: {p.describe()}" for p, labels in groups)
        raise InputError(
            f"the image layers of the asset in {where} are placed differently ({detail}). The "
            "state does not record which one the annotations were drawn over, so the voxel "
            f"under a pick (registration channel {registration_channel}) is ambiguous; expected "
            "every image layer of the asset to have the same source transform, or the layers "
            "not used for tracing removed",
            **loc,
        )
    placement, labels = groups[0]
    if placement.problem:
        raise InputError(
            f"image layer(s) {', '.join(labels)} in {where}: {placement.problem}. The picks "
            "cannot be mapped back to image voxels; expected at most a translation",
            **loc,
        )
    if not here and not placement.is_identity:
        raise InputError(
            "this annotation file has no image layer of the asset, and the image layers of "
            f"{where} are {placement.describe()}; whether the annotations were drawn over that "
            "transformed image is unknown. Expected the annotation file to hold the image "
            "layers it was traced over (Neuroglancer saves the whole state), or untransformed "
            "image layers in the main state",
            **loc,
        )
    if not placement.is_identity:
        logger.info(
            "%s, layer %r: drawn over image layers %s, %s",
            file,
            layer_name,
            ", ".join(labels),
            placement.describe(),
        )
    return placement


# ------------------------------------------------------------------------------ annotation files


def find_probe_file(data_root: Path, probe_file: str) -> Path:
    """Find ``data_root/*/<probe_file>.json``, exactly one directory level down.

    Raises
    ------
    InputError
        No match (the message names the pattern), or more than one (every match is listed).
    """
    hint = " (give probe_file without '.json')" if probe_file.endswith(".json") else ""
    return one_file_below(data_root, probe_file, f"{probe_file}.json", "annotation file", hint)
