"""How a synthetic dataset is laid out: asset and channel folder names, Neuroglancer states.

``Layout()`` (the default) reproduces the original layout byte for byte: a ``SmartSPIM_`` asset,
``<channel>.zarr`` folders, image sources ``zarr://s3://aind-open-data/<asset>/...`` as plain
strings, dimensions in metres, point annotations, no source transforms. Every other value writes
one of the layouts real data uses (docs/inputs/neuroglancer.md, docs/inputs/smartspim.md), so a
test can run the pipeline on exactly that layout and compare with the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

BUCKET = "aind-open-data"
SOURCE_STYLES = (
    "zarr_s3",  # zarr://s3://bucket/<asset>/.../<ch>.zarr (default)
    "plain_s3",  # s3://bucket/<asset>/.../<ch>.zarr (format auto-detected)
    "zarr2_s3",  # zarr2://s3://...
    "zarr3_s3",  # zarr3://s3://...
    "pipe_zarr2",  # s3://bucket/<asset>/.../<ch>.zarr/|zarr2:
    "trailing_slash",  # zarr://s3://.../<ch>.zarr/
    "object_url",  # {"url": "zarr://s3://..."}
    "nested_s3",  # zarr://s3://bucket/a/nested/prefix/<asset>/...
    "gs",  # zarr://gs://bucket/<asset>/...
    "https",  # zarr://https://bucket.s3.amazonaws.com/<asset>/...
    "file",  # zarr://file:///<absolute local asset path>/...
)
SIBLINGS = ("precomputed", "n5")
UNITS = ("m", "mm", "um", "nm")
ANNOTATION_KINDS = (
    "points",  # one point per pick (default)
    "lines",  # chained lines (p0, p1), (p1, p2), ...
    "disjoint_lines",  # separate lines (p0, p1), (p2, p3), ...
    "polyline",  # one polyline through every pick
    "segments",  # line, polyline, line, polyline ... chained, in that order
    "points_and_line",  # points then a line: an ambiguous mix, refused by the reader
)
_PER_UM = {"m": Decimal("1e-6"), "mm": Decimal("1e-3"), "um": Decimal(1), "nm": Decimal(1000)}


@dataclass(frozen=True)
class Layout:
    """Options of the on-disk and Neuroglancer layout (defaults: the original layout).

    Image-layer transforms: ``image_translation_vox_xyz`` (level-0 voxels) is written on the
    image layers of ``translated_channels`` (None: every channel), in the main state and, with
    ``image_layers_in_annotations``, in every annotation file (as Neuroglancer saves a whole
    state). Annotations are written where an annotator drawing over the registration channel
    would have put them, so the truth stays the truth. ``image_linear_xyz`` replaces the
    spatial linear part (a rotation or scale the reader must refuse).
    """

    asset_prefix: str = "SmartSPIM_"
    channel_suffix: str = ".zarr"
    extra_channels: tuple[str, ...] = ()
    source_style: str = "zarr_s3"
    sibling_sources: tuple[str, ...] = ()
    ng_unit: str = "m"
    annotation_kind: str = "points"
    annotation_translation_vox_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    image_layers_in_annotations: bool = False
    image_translation_vox_xyz: tuple[float, float, float] = (0.0, 0.0, 0.0)
    translated_channels: tuple[str, ...] | None = None
    image_linear_xyz: tuple[tuple[float, float, float], ...] | None = None

    def __post_init__(self) -> None:
        checks = [
            ("channel_suffix", self.channel_suffix, (".zarr", ".ome.zarr")),
            ("source_style", self.source_style, SOURCE_STYLES),
            ("ng_unit", self.ng_unit, UNITS),
            ("annotation_kind", self.annotation_kind, ANNOTATION_KINDS),
        ]
        checks += [("sibling_sources", s, SIBLINGS) for s in self.sibling_sources]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"Layout.{name} = {value!r}; expected one of {allowed}")

    def changed(self) -> dict[str, Any]:
        """The fields that differ from the default (for the truth file)."""
        default = Layout()
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def drawn_over_translation(self, registration_channel: str) -> np.ndarray:
        """Translation (voxels, x y z) of the layer the annotator is taken to draw over."""
        translated = self.translated_channels
        if translated is None or registration_channel in translated:
            return np.asarray(self.image_translation_vox_xyz, dtype=np.float64)
        return np.zeros(3)


def dimensions(spacing0_um_xyz: tuple[float, float, float], unit: str) -> dict[str, list[Any]]:
    """Neuroglancer ``dimensions`` at the level-0 voxel size in ``unit`` (plus ``t``)."""
    if unit == "m":  # the original float arithmetic, kept for byte-identical defaults
        sx, sy, sz = (v * 1e-6 for v in spacing0_um_xyz)
    else:
        sx, sy, sz = (float(Decimal(str(v)) * _PER_UM[unit]) for v in spacing0_um_xyz)
    return {"x": [sx, unit], "y": [sy, unit], "z": [sz, unit], "t": [0.001, "s"]}


def _url(layout: Layout, asset_name: str, asset_path: Path, tail: str) -> str:
    style = layout.source_style
    where = f"{BUCKET}/{asset_name}/{tail}"
    if style == "nested_s3":
        where = f"{BUCKET}/some/nested/prefix/{asset_name}/{tail}"
    urls = {
        "plain_s3": f"s3://{where}",
        "zarr2_s3": f"zarr2://s3://{where}",
        "zarr3_s3": f"zarr3://s3://{where}",
        "pipe_zarr2": f"s3://{where}/|zarr2:",
        "trailing_slash": f"zarr://s3://{where}/",
        "gs": f"zarr://gs://{where}",
        "https": f"zarr://https://{BUCKET}.s3.amazonaws.com/{asset_name}/{tail}",
        "file": f"zarr://{Path(asset_path).resolve().as_uri()}/{tail}",
    }
    return urls.get(style, f"zarr://s3://{where}")


def _image_transform(
    unit_dims: dict[str, list[Any]], translation_xyz: np.ndarray, linear: Any
) -> dict[str, Any]:
    """A 5-D (t, c', z, y, x) source transform, as Neuroglancer writes one for SmartSPIM."""
    out = {"t": unit_dims["t"], "c'": [1, ""], **{a: unit_dims[a] for a in "zyx"}}
    matrix = np.eye(5, 6)
    if linear is not None:
        matrix[2:, 2:5] = np.asarray(linear, dtype=np.float64)[::-1, ::-1]  # xyz -> zyx
    matrix[2:, 5] = np.asarray(translation_xyz, dtype=np.float64)[::-1]
    return {"outputDimensions": out, "matrix": matrix.tolist()}


def image_layers(
    layout: Layout,
    asset_name: str,
    asset_path: Path,
    channels: list[str],
    spacing0_um_xyz: tuple[float, float, float],
) -> list[dict[str, Any]]:
    """One image layer per channel (plus ignored siblings), in the layout's source style."""
    dims = dimensions(spacing0_um_xyz, layout.ng_unit)
    translation = np.asarray(layout.image_translation_vox_xyz, dtype=np.float64)
    layers = []
    for ch in channels:
        tail = f"image_tile_fusing/OMEZarr/{ch}{layout.channel_suffix}"
        url = _url(layout, asset_name, asset_path, tail)
        moved = layout.translated_channels is None or ch in layout.translated_channels
        if (moved and translation.any()) or layout.image_linear_xyz is not None:
            shift = translation if moved else np.zeros(3)
            source: Any = {
                "url": url,
                "transform": _image_transform(dims, shift, layout.image_linear_xyz),
            }
        elif layout.source_style == "object_url":
            source = {"url": url}
        else:
            source = url
        layers.append({"type": "image", "name": ch, "source": source})
    for kind in layout.sibling_sources:  # other formats of the same image: to be ignored
        ch = channels[0]
        url = {
            "precomputed": f"precomputed://s3://{BUCKET}/{asset_name}/image_tile_fusing/precomputed/{ch}",
            "n5": f"n5://s3://{BUCKET}/{asset_name}/image_tile_fusing/OMEN5/{ch}.n5",
        }[kind]
        # a different translation: if the reader used it, the layers would disagree
        transform = _image_transform(dims, translation + np.array([7.0, -5.0, 3.0]), None)
        layers.append(
            {
                "type": "image",
                "name": f"{ch}_{kind}",
                "source": {"url": url, "transform": transform},
            }
        )
    return layers


def annotations(layout: Layout, track_id: str, coords: np.ndarray) -> list[dict[str, Any]]:
    """The annotation list of one track: ``coords`` (n, rank) stored coordinates in pick order."""
    pts = [c.tolist() for c in coords]
    n, kind = len(pts), layout.annotation_kind

    def line(k: int, a: int, b: int) -> dict[str, Any]:
        return {"type": "line", "id": f"{track_id}-{k}", "pointA": pts[a], "pointB": pts[b]}

    def polyline(k: int, a: int, b: int) -> dict[str, Any]:
        return {"type": "polyline", "id": f"{track_id}-{k}", "points": pts[a : b + 1]}

    if kind == "points":
        return [{"type": "point", "id": f"{track_id}-{k}", "point": p} for k, p in enumerate(pts)]
    if kind == "lines":
        return [line(k, k, k + 1) for k in range(n - 1)]
    if kind == "disjoint_lines":  # an odd count ends with a line chained to the last one
        out = [line(k, 2 * k, 2 * k + 1) for k in range(n // 2)]
        return out + ([line(n // 2, n - 2, n - 1)] if n % 2 else [])
    if kind == "polyline":
        return [polyline(0, 0, n - 1)]
    if kind == "segments":  # line, polyline (3 vertices), line, polyline (rest), chained
        if n < 6:
            raise ValueError(f"annotation_kind 'segments' needs at least 6 picks, got {n}")
        cuts = [0, 1, 3, 4, n - 1]
        makers = [line, polyline, line, polyline]
        return [makers[k](k, cuts[k], cuts[k + 1]) for k in range(4)]
    points = [{"type": "point", "id": f"{track_id}-{k}", "point": p} for k, p in enumerate(pts)]
    return [*points[:-2], line(n - 2, n - 2, n - 1)]  # points_and_line


def annotation_source(layout: Layout, dims: dict[str, list[Any]]) -> dict[str, Any]:
    """The ``local://annotations`` source, with the layout's own translation if any."""
    transform: dict[str, Any] = {"outputDimensions": dims}
    shift = np.asarray(layout.annotation_translation_vox_xyz, dtype=np.float64)
    if shift.any():
        matrix = np.eye(len(dims), len(dims) + 1)
        matrix[:3, -1] = shift  # dims order: x, y, z, t
        transform["matrix"] = matrix.tolist()
    return {"url": "local://annotations", "transform": transform}
