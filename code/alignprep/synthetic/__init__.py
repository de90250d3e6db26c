"""Seeded synthetic datasets in the exact input layout, with their ground truth written beside them.

``build_dataset(root, spec, layout)`` writes ``root/data`` (a data_root) and ``root/truth.json``;
``layout`` (:class:`Layout`) chooses the asset / channel folder names and the Neuroglancer layout
(default: the original one, byte for byte). Truth is
made forward: every track is placed in CCF first, then mapped through the exact forward chain
(CCF -> template -> individual registration frame, numpy only) to level-0 voxel indices, from
which the Neuroglancer annotations are written. The pipeline goes the other way with ANTs and the
numerical inverse fields, so the comparison measures our frame handling plus the inverse error.

Levels finer than ``spec.content_level`` hold no voxel data (zarr fill value 0, no chunk files):
their metadata is exact, and nothing reads them, which keeps datasets small.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..inputs.smartspim import ATLAS_ALIGNMENT_NOTES, OMEZARR_DIR
from ..space import atlas
from ..space.frames import ImageHeader, direction_from_code, level_origin, native_header
from ..space.pipeline_frame import REGISTRATION_LEVEL, bbox_lps, pipeline_frame
from .geometry import SyntheticRegistration, box_header, invert_field, random_affine, smooth_field
from .layout import Layout, image_layers
from .tracks import (
    TrackSpec,
    default_tracks,
    four_probe_tracks,
    four_shank_tracks,
    single_shank_track,
    write_annotations,
    write_manifest,
    write_ng_state,
)
from .volumes import brain_volumes, downsample2, write_ants_image, write_ccf_volumes, write_json
from .volumes import write_ome_zarr as _write_ome_zarr

BUILT_NAME = "built.json"  # written last: what built the dataset, and its paths (relative)
REG_CHANNEL = "Ex_639_Em_667"
OTHER_CHANNEL = "Ex_488_Em_525"
LETTER_DIRECTION = {
    "R": "Left_to_right",
    "L": "Right_to_left",
    "A": "Posterior_to_anterior",
    "P": "Anterior_to_posterior",
    "S": "Inferior_to_superior",
    "I": "Superior_to_inferior",
}


@dataclass(frozen=True)
class SyntheticSpec:
    """What to build. Defaults: a small, fast dataset with non-identity warps."""

    seed: int = 0
    mouse_id: str = "000123"
    orientation: str = "RPI"
    import_version: str = "0.0.25"
    ccf_shape_apdvml: tuple[int, int, int] = (160, 120, 320)
    brain_center_um: tuple[float, float, float] = (5739.0, 2000.0, 1500.0)  # ML, AP, DV
    brain_semi_axes_um: tuple[float, float, float] = (1900.0, 1700.0, 1250.0)
    spacing0_um_xyz: tuple[float, float, float] = (1.8, 1.8, 2.0)
    n_levels: int = 5
    content_level: int | None = 4  # None: no voxel data at all (geometry-only tests)
    warp_amplitude_mm: float = 0.08  # 0: affine-only chain
    warp_width_mm: float = 0.8
    field_spacing_mm: float = 0.1
    fov_margin_mm: float = 0.6
    ng_voxel_origin: str = "center"
    registration_frame: str = "pipeline"  # "native": registered in F2, with a transform sidecar
    level0_size_xyz: tuple[int, int, int] | None = None  # None: fit the brain plus margins
    ephys_preset: str | None = None  # "test" / "benchmark": also build the ephys assets
    tracks: tuple[TrackSpec, ...] = field(default_factory=default_tracks)

    def affine_only(self) -> SyntheticSpec:
        """The same dataset with zero displacement fields."""
        return replace(self, warp_amplitude_mm=0.0)

    @classmethod
    def four_probes(cls, seed: int = 0) -> SyntheticSpec:
        """The test dataset with four probe folders (two NP1.0, two 4-shank NP2.0)."""
        return cls(seed=seed, tracks=four_probe_tracks(), ephys_preset="four_probes")

    @classmethod
    def real_scale(cls, seed: int = 0) -> SyntheticSpec:
        """Real SmartSPIM / CCF sizes: CCF 528x320x456; level 4 = 640x462x247 at 28.8/28.8/32 um."""
        tracks = (single_shank_track(6000.0, 3000.0, 16), *four_shank_tracks(6500.0, 2500.0))
        return cls(
            seed=seed,
            ccf_shape_apdvml=(528, 320, 456),
            brain_center_um=(5739.0, 6600.0, 3900.0),
            brain_semi_axes_um=(4400.0, 5000.0, 2900.0),
            level0_size_xyz=(640 * 16, 462 * 16, 247 * 16),
            tracks=tracks,
        )


@dataclass(frozen=True)
class SyntheticDataset:
    """Paths of a built dataset and its truth."""

    root: Path
    data_root: Path
    asset: Path
    manifest: Path
    neuroglancer: Path
    truth_path: Path

    @property
    def truth(self) -> dict[str, Any]:
        """The ground truth (``truth.json``)."""
        return json.loads(self.truth_path.read_text())


def build_dataset(
    root: Path, spec: SyntheticSpec | None = None, layout: Layout | None = None
) -> SyntheticDataset:
    """Build the dataset of ``spec`` under ``root`` (``root/data`` + ``root/truth.json``)."""
    spec = spec or SyntheticSpec()
    layout = layout or Layout()
    (Path(root) / BUILT_NAME).unlink(missing_ok=True)  # complete again only when written last
    rng = np.random.default_rng(spec.seed)
    data = Path(root) / "data"
    asset_name = (
        f"{layout.asset_prefix}{spec.mouse_id}_2025-01-10_12-00-00_stitched_2025-01-11_09-00-00"
    )
    asset = data / asset_name
    mid_ml = float(atlas.BREGMA_MLAPDV_UM[0])

    # --- CCF-like brain (F6) ----------------------------------------------------------------
    ccf_hdr = atlas.ccf_header(spec.ccf_shape_apdvml)
    center_um, semi_um = np.array(spec.brain_center_um), np.array(spec.brain_semi_axes_um)
    template_ccf, labels = brain_volumes(spec.ccf_shape_apdvml, center_um, semi_um, mid_ml, rng)
    refs = {
        "ccf_template": data / "allen_mouse_ccf/average_template/average_template_25.nii.gz",
        "ccf_labels_compact": data
        / "allen_mouse_ccf_annotations_lateralized_compact"
        / "ccf_2017_annotation_25_lateralized_compact.nrrd",
        "ccf_labels_unique_values": data
        / "allen_mouse_ccf_annotations_lateralized_compact"
        / "ccf_2017_annotation_25_lateralized_unique_vals.npz",
        "lca_template": data / "smartspim_lca_template/smartspim_lca_template_25.nii.gz",
    }
    write_ccf_volumes(
        template_ccf,
        labels,
        ccf_hdr,
        refs["ccf_template"],
        refs["ccf_labels_compact"],
        refs["ccf_labels_unique_values"],
    )
    corners_um = center_um + semi_um * np.array(np.meshgrid(*[[-1, 1]] * 3)).reshape(3, -1).T
    brain_ccf = atlas.ccf_um_to_ccf_lps_mm(corners_um)
    lo_c, hi_c = brain_ccf.min(0), brain_ccf.max(0)
    center_c = (lo_c + hi_c) / 2

    # --- template (F5) and the template -> CCF registration (fixed CCF, moving template) -------
    t2c_aff = random_affine(rng, center_c, center_c + np.array([1.0, -2.0, 3.0]), 6.0, (0.95, 1.05))
    brain_t = t2c_aff(brain_ccf)
    m = spec.fov_margin_mm
    t2c_field_hdr = box_header(lo_c - m, hi_c + m, spec.field_spacing_mm, ccf_hdr.direction)
    t2c = _registration(rng, t2c_aff, t2c_field_hdr, spec)
    tpl_hdr = box_header(brain_t.min(0) - m, brain_t.max(0) + m, 0.025, direction_from_code("RAS"))

    # --- individual brain (F3 registration frame) and LS -> template (fixed template) ----------
    reg_code = spec.orientation.upper()
    s0 = np.array(spec.spacing0_um_xyz) * 1e-3
    extent = (brain_t.max(0) - brain_t.min(0)) * 1.25 + 2 * m  # rotation / scaling headroom
    world = np.argmax(np.abs(direction_from_code(reg_code)), axis=0)
    step = 2 ** (spec.n_levels - 1)
    size0 = spec.level0_size_xyz or tuple(
        int(np.ceil(extent[w] / s0[a] / step) * step) for a, w in enumerate(world)
    )
    s_reg = s0 * 2**REGISTRATION_LEVEL
    size_reg = tuple(n // 2**REGISTRATION_LEVEL for n in size0)
    frame = pipeline_frame(native_header(reg_code, s_reg, size_reg, s0), size0, spec.import_version)
    native0 = native_header(reg_code, s0, size0)
    if spec.registration_frame not in ("pipeline", "native"):
        raise ValueError(f"registration_frame {spec.registration_frame!r}")
    reg0 = frame.header0 if spec.registration_frame == "pipeline" else native0
    center_ls = reg0.index_to_physical((np.asarray(size0) - 1) / 2)[0]
    ls_aff = random_affine(
        rng, (brain_t.min(0) + brain_t.max(0)) / 2, center_ls, 10.0, (0.92, 1.08)
    )
    ls_field_hdr = box_header(
        brain_t.min(0) - m, brain_t.max(0) + m, spec.field_spacing_mm, tpl_hdr.direction
    )
    ls = _registration(rng, ls_aff, ls_field_hdr, spec)
    reg_dir = asset / "image_atlas_alignment" / REG_CHANNEL
    ls_files = ls.write(reg_dir / "ls_to_template_SyN_")
    if spec.registration_frame == "native":
        _write_sidecar(reg_dir / "ls_to_template_transform_information.json", native0, tpl_hdr)
    t2c_files = t2c.write(data / "spim_template_to_ccf" / "syn_")

    # --- images: LCA template and the SmartSPIM pyramid ----------------------------------------
    if spec.content_level is not None:
        _write_lca_template(tpl_hdr, refs, t2c_files)
    _write_smartspim(asset, spec, layout, reg0, size0, ls_files, t2c_files, refs["ccf_template"])

    # --- tracks, Neuroglancer, manifest, truth -----------------------------------------------
    truth_tracks = {}
    for track in spec.tracks:
        ccf_um = track.points_ccf_um(center_um, semi_um, rng)
        ccf_mm = atlas.ccf_um_to_ccf_lps_mm(ccf_um)
        tpl_mm = t2c.fixed_to_moving(ccf_mm)
        ls_mm = ls.fixed_to_moving(tpl_mm)
        idx0 = reg0.physical_to_index(ls_mm)
        spim_mm = native0.index_to_physical(idx0)
        truth_tracks[track.track_id] = {
            **track.manifest_fields(),
            "ccf_um": ccf_um.tolist(),
            "ccf_lps_mm": ccf_mm.tolist(),
            "bregma_um": atlas.ccf_um_to_bregma_um(ccf_um).tolist(),
            "template_lps_mm": tpl_mm.tolist(),
            "registration_frame_lps_mm": ls_mm.tolist(),
            "level0_index_xyz": idx0.tolist(),
            "spim_lps_mm": spim_mm.tolist(),
            "image_ras_um": (spim_mm * [-1000, -1000, 1000]).tolist(),
        }
    shown = [REG_CHANNEL, OTHER_CHANNEL, *layout.extra_channels]
    img_layers = image_layers(layout, asset_name, asset, shown, spec.spacing0_um_xyz)
    in_files = img_layers if layout.image_layers_in_annotations else None
    ng_files = write_annotations(data, spec, truth_tracks, layout, in_files, REG_CHANNEL)
    state = write_ng_state(data / "neuroglancer.json", img_layers, spec, layout.ng_unit)
    manifest = write_manifest(data / "manifest.csv", spec, ng_files)
    if spec.ephys_preset:
        from .ephys import build_ephys

        build_ephys(
            data,
            mouse_id=spec.mouse_id,
            seed=spec.seed,
            preset=spec.ephys_preset,
            truth_path=Path(root) / "ephys_truth.json",
        )
    truth = {
        "spec": {k: v for k, v in asdict(spec).items() if k != "tracks"},
        "asset": asset_name,
        "registration_channel": REG_CHANNEL,
        "channels": sorted(shown),
        "level0_size_xyz": list(size0),
        "pipeline_header0": frame.header0.to_json(),
        "native_header0": native0.to_json(),
        "pipeline_steps": list(frame.steps),
        "registration_frame": spec.registration_frame,
        "tracks": truth_tracks,
        "ephys_truth": "ephys_truth.json" if spec.ephys_preset else None,
    }
    if layout.changed():
        truth["layout"] = {k: _jsonable(v) for k, v in layout.changed().items()}
    truth_path = write_json(Path(root) / "truth.json", truth)
    dataset = SyntheticDataset(Path(root), data, asset, manifest, state, truth_path)
    rel = {f.name: str(getattr(dataset, f.name).relative_to(root)) for f in fields(dataset)}
    write_json(Path(root) / BUILT_NAME, {"built_by": _build_stamp(spec, layout), "paths": rel})
    return dataset


def open_dataset(root: Path) -> SyntheticDataset:
    """A dataset built earlier under ``root`` (or copied there: its paths are relative).

    Raises ``FileNotFoundError`` / ``ValueError`` when ``root`` holds no complete dataset.
    """
    rel = json.loads((Path(root) / BUILT_NAME).read_text())["paths"]
    return SyntheticDataset(**{name: Path(root) / path for name, path in rel.items()})


def build_or_reuse(
    root: Path, spec: SyntheticSpec | None = None, layout: Layout | None = None
) -> tuple[SyntheticDataset, bool]:
    """The dataset of ``spec`` under ``root``, and whether it was reused.

    Reused when ``root`` holds a complete dataset built from the same spec and layout by the
    same alignprep sources (the builder is seeded: it would write the same bytes); otherwise
    ``root`` is emptied and built anew.
    """
    spec, layout = spec or SyntheticSpec(), layout or Layout()
    if built_by(root) == _build_stamp(spec, layout):
        return open_dataset(root), True
    shutil.rmtree(root, ignore_errors=True)
    return build_dataset(root, spec, layout), False


def built_by(root: Path) -> dict[str, str] | None:
    """The stamp of what built the dataset under ``root`` (None: no complete dataset)."""
    try:
        return json.loads((Path(root) / BUILT_NAME).read_text())["built_by"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def build_stamp(**described: str) -> dict[str, str]:
    """What builds a dataset: its description and the alignprep sources (the builder is seeded,
    so the same stamp means the same bytes)."""
    from ..reads import code_identity

    return {**described, "alignprep_sources": code_identity()["alignprep_sources"]}


def _build_stamp(spec: SyntheticSpec, layout: Layout) -> dict[str, str]:
    return build_stamp(spec=repr(spec), layout=repr(layout))


def _jsonable(value: Any) -> Any:
    return [_jsonable(v) for v in value] if isinstance(value, tuple | list) else value


def _registration(
    rng: np.random.Generator, affine, field_hdr: ImageHeader, spec: SyntheticSpec
) -> SyntheticRegistration:
    warp = smooth_field(
        rng, field_hdr, spec.warp_amplitude_mm, spec.warp_width_mm, taper_mm=spec.fov_margin_mm
    )
    return SyntheticRegistration(affine, warp, invert_field(warp))


def _write_lca_template(tpl_hdr: ImageHeader, refs: dict[str, Path], t2c_files) -> None:
    import ants

    fixed = ants.from_numpy(np.zeros(tpl_hdr.size, np.float32), **tpl_hdr.ants_kwargs())
    moving = ants.image_read(str(refs["ccf_template"]))
    out = ants.apply_transforms(
        fixed,
        moving,
        [str(t2c_files[0]), str(t2c_files[2])],
        whichtoinvert=[True, False],
        interpolator="linear",
    )
    write_ants_image(out.numpy(), tpl_hdr, refs["lca_template"], "unsigned int")


def _write_sidecar(path: Path, moving0: ImageHeader, fixed: ImageHeader) -> None:
    """A transform sidecar (inputs.md §7) describing a registration computed in ``moving0``."""

    def domain(h: ImageHeader) -> dict[str, Any]:
        box = bbox_lps(h)
        return {
            "definition": "voxel-center",
            "spacing_LPS": np.abs(h.direction @ h.spacing).tolist(),
            "bbox": {axis: box[k].tolist() for k, axis in enumerate("LPS")},
        }

    obj = {"schema": "1.0", "frame": "LPS", "units": "mm"}
    write_json(path, {**obj, "fixed_domain": domain(fixed), "moving_domain": domain(moving0)})


def _write_smartspim(
    asset: Path,
    spec: SyntheticSpec,
    layout: Layout,
    reg0: ImageHeader,
    size0,
    ls_files,
    t2c_files,
    ccf_template: Path,
) -> None:
    """OME-Zarr channels, metadata.nd.json and processing.json of the stitched asset."""
    s0_zyx = np.array(spec.spacing0_um_xyz)[::-1]
    shapes = [tuple(int(np.ceil(n / 2**k)) for n in size0[::-1]) for k in range(spec.n_levels)]
    names = [REG_CHANNEL, OTHER_CHANNEL, *layout.extra_channels]
    content: dict[str, list[np.ndarray | None]] = {name: [None] * spec.n_levels for name in names}
    if spec.content_level is not None:
        import ants

        lv = spec.content_level
        s_lv = reg0.spacing * 2**lv
        origin = level_origin(reg0.origin, reg0.direction, reg0.spacing, s_lv)
        hdr = ImageHeader(origin, s_lv, reg0.direction, shapes[lv][::-1])
        fixed = ants.from_numpy(np.zeros(hdr.size, np.float32), **hdr.ants_kwargs())
        chain = [str(ls_files[0]), str(ls_files[2]), str(t2c_files[0]), str(t2c_files[2])]
        img = ants.apply_transforms(
            fixed,
            ants.image_read(str(ccf_template)),
            chain,
            whichtoinvert=[True, False, True, False],
        ).numpy()
        reg = np.transpose(img, (2, 1, 0))  # ITK (i, j, k) -> zarr (z, y, x)
        other = np.where(reg > 0, 5000.0 - reg, 0.0)
        # extra channel k (0-based) is the registration channel divided by k + 2, floored
        extra = [(n, np.floor_divide(reg, k + 2)) for k, n in enumerate(layout.extra_channels)]
        for name, vol in ((REG_CHANNEL, reg), (OTHER_CHANNEL, other), *extra):
            levels = content[name]
            levels[lv] = np.clip(vol, 0, 65535).astype(np.uint16)
            for k in range(lv + 1, spec.n_levels):
                levels[k] = np.clip(downsample2(levels[k - 1]), 0, 65535).astype(np.uint16)
    zdir = asset / OMEZARR_DIR
    for name, levels in content.items():
        _write_ome_zarr(zdir / f"{name}{layout.channel_suffix}", levels, shapes, s0_zyx)
    code = spec.orientation.upper()
    write_json(
        asset / "metadata.nd.json",
        {
            "subject": {"subject_id": spec.mouse_id},
            "acquisition": {
                "axes": [
                    {"name": axis.upper(), "dimension": dim, "direction": LETTER_DIRECTION[letter]}
                    for axis, dim, letter in (
                        ("x", 2, code[0]),
                        ("y", 1, code[1]),
                        ("z", 0, code[2]),
                    )
                ]
            },
        },
    )
    write_json(
        asset / "processing.json",
        {
            "processing_pipeline": {
                "pipeline_version": "3.0.0",
                "data_processes": [
                    {"name": "Image importing", "code_version": spec.import_version},
                    {
                        "name": "Image atlas alignment",
                        "notes": ATLAS_ALIGNMENT_NOTES,
                        "input_location": (
                            f"/data/{asset.name}/{OMEZARR_DIR}/{REG_CHANNEL}{layout.channel_suffix}"
                        ),
                    },
                ],
            }
        },
    )
