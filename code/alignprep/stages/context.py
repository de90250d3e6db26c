"""What every stage of one mouse shares: the asset, its frames and the transform chains."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import PipelineConfig
from ..errors import InputError
from ..inputs import neuroglancer as ng
from ..inputs.identity import check_subject
from ..inputs.locate import confine, single_top_level_file
from ..inputs.manifest import Manifest
from ..inputs.omezarr import Multiscale
from ..inputs.references import CcfLabels, TemplateToCcf, check_ccf_template, template_to_ccf
from ..inputs.smartspim import SmartSpimAsset, discover
from ..logs import get_logger
from ..reads import recorded_cache
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
    asset: SmartSpimAsset
    multiscale: Multiscale  # registration channel
    native0: ImageHeader  # F2, level 0
    frame: PipelineFrame  # F3 construction (whether or not it is used)
    registration0: ImageHeader  # the frame the ANTs registration expects, level 0
    decision: FrameDecision
    template_to_ccf: TemplateToCcf
    ccf_template: ImageHeader
    warnings: tuple[str, ...] = ()
    image_sources: ng.ImageSources | None = None  # the main state's image layers

    @classmethod
    def prepare(cls, config: PipelineConfig, manifest: Manifest) -> MouseContext:
        """Discover the asset, frames and transforms of the manifest's mouse."""
        state_path = config.neuroglancer or single_top_level_file(
            config.data_root, "*.json", "Neuroglancer state", "--neuroglancer"
        )
        sources = ng.image_sources(ng.read_state(state_path), config.data_root, state_path)
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


def _input_files(asset: SmartSpimAsset, t2c: TemplateToCcf) -> list[tuple[str, object]]:
    """(what, path) of every asset file and folder the stages read."""
    files: list[tuple[str, object]] = [(f"channel {n}", p) for n, p in asset.channels.items()]
    files += [("ls_to_template registration", p) for p in asset.ls_to_template.files()]
    files += [("template_to_ccf registration", p) for p in t2c.registration.files()]
    if asset.sidecar_path is not None:
        files.append(("registration sidecar", asset.sidecar_path))
    return files
