"""Small Neuroglancer states for the unit tests of alignprep.inputs.neuroglancer."""

from __future__ import annotations

from pathlib import Path

FILE = Path("/states/probe.json")
SRC = (
    "zarr://s3://bucket/SmartSPIM_123_stitched/image_tile_fusing/OMEZarr/Ex_639_Em_667.zarr|zarr2:"
)
DIMS_XYZT = {"x": [1.8e-6, "m"], "y": [1.8e-6, "m"], "z": [2e-6, "m"], "t": [0.001, "s"]}
DIMS_ZYX = {"z": [2e-6, "m"], "y": [1.8e-6, "m"], "x": [1.8e-6, "m"]}


def ann_layer(name: str, points: list, dims: dict | None = None, **source_extra) -> dict:
    source: dict = {"url": "local://annotations", **source_extra}
    if dims is not None:
        source.setdefault("transform", {})["outputDimensions"] = dims
    return {
        "type": "annotation",
        "name": name,
        "source": source,
        "annotations": [{"point": p, "type": "point", "id": str(i)} for i, p in enumerate(points)],
    }


def make_state(*layers: dict, dims: dict | None = None) -> dict:
    state: dict = {"layers": list(layers)}
    if dims is not None:
        state["dimensions"] = dims
    return state


def image(name: str, source) -> dict:
    return {"type": "image", "name": name, "source": source}
