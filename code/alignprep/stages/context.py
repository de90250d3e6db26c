"""What every stage of one mouse shares: the asset, its frames and the transform chains."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PipelineConfig
from ..errors import InputError
from ..inputs import neuroglancer as ng
from ..inputs.field_store import FieldStore
from ..inputs.identity import check_subject, subject_from_name, subjects_of
from ..inputs.locate import confine
from ..inputs.manifest import Manifest
from ..inputs.omezarr import Multiscale
from ..inputs.references import CcfLabels, TemplateToCcf, check_ccf_template, template_to_ccf
from ..inputs.smartspim import SmartSpimAsset, discover
from ..logs import get_logger
from ..reads import Reads, note_file, note_listing, recorded_cache, recording
from ..resources import available_cpus
from ..space.fields import ChainMap
from ..space.frames import ImageHeader, native_header
from ..space.pipeline_frame import (
    REGISTRATION_LEVEL,
    FrameDecision,
    PipelineFrame,
    decide_frame,
    pipeline_frame,
)
from ..space.transforms import Chain, ccf_to_individual, individual_to_ccf, individual_to_template

log = get_logger("stages.context")


@dataclass
class MouseContext:
    """Discovered once per mouse; read-only afterwards."""

    config: PipelineConfig
    mouse_id: str
    # The light-sheet part: None for a mouse whose tracks all come from tracing tools in the CCF
    # (no SmartSPIM asset; :meth:`prepare_ccf`). Only light-sheet items ever use these.
    asset: SmartSpimAsset = None  # type: ignore[assignment]
    multiscale: Multiscale = None  # type: ignore[assignment]  # registration channel
    native0: ImageHeader = None  # type: ignore[assignment]  # F2, level 0
    frame: PipelineFrame = None  # type: ignore[assignment]  # F3 construction
    registration0: ImageHeader = None  # type: ignore[assignment]  # registration frame, level 0
    decision: FrameDecision = None  # type: ignore[assignment]
    template_to_ccf: TemplateToCcf = None  # type: ignore[assignment]
    ccf_template: ImageHeader = None  # type: ignore[assignment]
    warnings: tuple[str, ...] = ()
    image_sources: ng.ImageSources | None = None  # the main state's image layers
    reads: Reads = field(default_factory=Reads)  # what preparing the context read

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for a worker without its caches (the labels volume is read there if used)."""
        return {k: v for k, v in self.__dict__.items() if not k.startswith("_")}

    @classmethod
    def prepare(cls, config: PipelineConfig, manifest: Manifest) -> MouseContext:
        """Discover the asset, frames and transforms of the manifest's mouse (reads recorded)."""
        with recording() as reads:
            ctx = cls._prepare(config, manifest)
        ctx.reads = reads
        return ctx

    @classmethod
    def prepare_ccf(cls, config: PipelineConfig, manifest: Manifest) -> MouseContext:
        """The context of a mouse without light-sheet data: every track comes from a tracing
        tool already in the CCF, so only the CCF labels of the data root are needed."""
        return cls(config=config, mouse_id=manifest.mouse_id)  # reads nothing until used

    @property
    def light_sheet(self) -> bool:
        """Whether the mouse has its SmartSPIM asset (image, registration) in this run."""
        return self.asset is not None

    @classmethod
    def _prepare(cls, config: PipelineConfig, manifest: Manifest) -> MouseContext:
        state_path, state = neuroglancer_state(config, manifest.mouse_id)
        sources = ng.image_sources(state, config.data_root, state_path)
        override = manifest.registration_asset
        registration = config.input_path(override, "registration_asset") if override else None
        confine(sources.asset_path, config.data_root, "SmartSPIM asset of the image layers")
        asset = discover(sources.asset_path, registration)
        subject_warnings = check_subject(asset.path, manifest.mouse_id, "SmartSPIM asset")
        ms = asset.multiscale()
        lv0 = ms.levels[0]
        native0 = native_header(asset.orientation, lv0.spacing_mm, lv0.size)
        warnings = [*sources.warnings, *asset.processing.warnings, *subject_warnings]
        if len(ms.levels) > REGISTRATION_LEVEL:
            reg_level = ms.levels[REGISTRATION_LEVEL]
            s_reg, size_reg = reg_level.spacing_mm, reg_level.size
        else:
            s_reg = lv0.spacing_mm * 2**REGISTRATION_LEVEL
            size_reg = tuple(int(np.ceil(n / 2**REGISTRATION_LEVEL)) for n in lv0.size)
            warnings.append(f"{ms.path}: no level {REGISTRATION_LEVEL}; its geometry is derived")
        frame = pipeline_frame(
            native_header(asset.orientation, s_reg, size_reg, lv0.spacing_mm),
            lv0.size,
            asset.processing.import_version,
        )
        warnings += frame.warnings
        try:
            decision = decide_frame(asset.sidecar, native0, frame.header0, str(asset.sidecar_path))
        except ValueError as exc:
            raise InputError(str(exc), file=asset.sidecar_path) from None
        t2c = template_to_ccf(config, manifest.template_to_ccf_asset)
        for key, path in _input_files(asset, t2c):
            confine(path, config.data_root, key)
        ccf_template = check_ccf_template(config)
        log.info(
            "asset %s: orientation %s, import %s, frame %s (%s); template->CCF %s",
            asset.path.name,
            asset.orientation,
            asset.processing.import_version,
            decision.frame,
            decision.reason,
            t2c.directory,
        )
        return cls(
            config=config,
            mouse_id=manifest.mouse_id,
            asset=asset,
            multiscale=ms,
            native0=native0,
            frame=frame,
            registration0=frame.header0 if decision.frame == "pipeline" else native0,
            decision=decision,
            template_to_ccf=t2c,
            ccf_template=ccf_template,
            warnings=tuple(warnings),
            image_sources=sources,
        )

    @property
    def to_template(self) -> Chain:
        """Points: registration frame -> LCA template."""
        return individual_to_template(self.asset.ls_to_template)

    @property
    def to_ccf(self) -> Chain:
        """Points: registration frame -> CCF (also resamples CCF volumes onto image grids)."""
        return individual_to_ccf(self.asset.ls_to_template, self.template_to_ccf.registration)

    @property
    def image_to_ccf(self) -> Chain:
        """Resamples registration-frame images onto the CCF grid (needs both 1Warp files)."""
        return ccf_to_individual(self.asset.ls_to_template, self.template_to_ccf.registration)

    def release_caches(self) -> None:
        """Forget what was read on first use (the labels volume, the chain maps): an item that
        needs it again reads it again, in its own process."""
        for key in [k for k in self.__dict__ if k.startswith("_")]:
            del self.__dict__[key]

    @property
    def threads(self) -> int:
        """Threads for this process's numerical work: the cores it may use."""
        if "_threads" not in self.__dict__:
            self.__dict__["_threads"] = available_cpus()
        return self.__dict__["_threads"]

    @property
    def field_store(self) -> FieldStore:
        """Decoded displacement fields, shared by every process of the run (scratch)."""
        return FieldStore(self.config.scratch_root)

    def chain_map(self, chain: Chain) -> ChainMap:
        """``chain`` ready to evaluate: affines parsed, fields decoded once per file version
        (:mod:`alignprep.inputs.field_store`; the transform check usually did it already)."""
        maps: dict[Chain, ChainMap] = self.__dict__.setdefault("_chain_maps", {})
        for path in chain.files:  # every use depends on the files, not only the first one
            note_file(path)
        if chain not in maps:
            maps[chain] = self.field_store.chain_map(chain)
        return maps[chain]

    def map_points(self, chain: Chain, points_lps_mm: np.ndarray) -> np.ndarray:
        """(n, 3) LPS mm points through ``chain`` (ANTs's rules, double precision)."""
        return self.chain_map(chain).apply(points_lps_mm, self.threads)

    @recorded_cache
    def labels(self) -> CcfLabels:
        """The lateralized CCF labels (read on first use)."""
        return CcfLabels.load(self.config)

    def registration_header(self, level: int, size: tuple[int, int, int]) -> ImageHeader:
        """Header of zarr level ``level`` in the frame the registration expects."""
        if self.decision.frame == "pipeline":
            return self.frame.header_at(level, size)
        lv = self.multiscale.levels[level]
        return native_header(self.asset.orientation, lv.spacing_mm, size, self.native0.spacing)


def neuroglancer_state(config: PipelineConfig, mouse_id: str) -> tuple[Path, dict]:
    """The Neuroglancer state of a mouse: ``neuroglancer``, else the only top-level state, else
    the one top-level state whose image layers show an asset of that subject (several mice in
    one data root)."""
    if config.neuroglancer is not None:
        return config.neuroglancer, ng.read_state(config.neuroglancer)
    found = sorted(
        p for p in note_listing(config.data_root, "*.json").glob("*.json") if p.is_file()
    )
    if len(found) == 1:
        return found[0], ng.read_state(found[0])
    mine = []
    for path in found:
        try:
            state = ng.read_state(path)
            sources = ng.image_sources(state, config.data_root, path)
        except InputError:
            continue  # not a state of a SmartSPIM asset
        asset_subject = subject_from_name(sources.asset_name)
        if asset_subject == mouse_id or mouse_id in subjects_of(sources.asset_path).values():
            mine.append((path, state))
    if len(mine) != 1:
        names = ", ".join(p.name for p in found) or "none"
        raise InputError(
            f"{'no' if not mine else len(mine)} Neuroglancer state(s) at the top of the data root "
            f"show an asset of mouse {mouse_id!r} (states found: {names}); name it with "
            "--neuroglancer",
            file=config.data_root,
        )
    return mine[0]


def _input_files(asset: SmartSpimAsset, t2c: TemplateToCcf) -> list[tuple[str, object]]:
    """(what, path) of every asset file and folder the stages read."""
    files: list[tuple[str, object]] = [(f"channel {n}", p) for n, p in asset.channels.items()]
    files += [("ls_to_template registration", p) for p in asset.ls_to_template.files()]
    files += [("template_to_ccf registration", p) for p in t2c.registration.files()]
    if asset.sidecar_path is not None:
        files.append(("registration sidecar", asset.sidecar_path))
    return files
