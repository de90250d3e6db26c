"""CCF-space QC volumes: one channel's image-space volume warped onto the CCF 25 um grid, IRP.

One work item per channel, in phase 1: each reads the image-space volume that the histology
``channels`` part wrote in phase 0 (so the zarr is read once), and items of different channels
run at once on two workers. The chain is the image chain ``[t2c_Warp, t2c_Aff, ls_Warp,
ls_Aff]``, which needs both forward warps; without them there is nothing to do, and the
``channels`` part says so.
"""

from __future__ import annotations

from pathlib import Path

from .. import outputs
from ..config import PipelineConfig
from ..errors import InputError
from ..logs import heartbeat
from ..space.frames import reorient
from ..space.sampling import Moving, resample
from ..work import HistologyCcfWork
from .context import MouseContext
from .histology import OUTPUT_CODE, Grids, HistologyResult, guarded


def ccf_space_missing(ctx: MouseContext) -> str:
    """The affine beside which a forward warp is missing ("" when both exist)."""
    for reg in (ctx.asset.ls_to_template, ctx.template_to_ccf.registration):
        if reg.warp is None:
            return str(reg.affine)
    return ""


def ccf_channels(ctx: MouseContext, channels: HistologyResult) -> list[str]:
    """The channels whose QC volume a run makes (none when a forward warp is missing or the
    ``channels`` part failed)."""
    if ccf_space_missing(ctx) or channels.status != "ok":
        return []
    return channel_names(ctx)


def channel_names(ctx: MouseContext) -> list[str]:
    """The registration channel, then every additional channel."""
    return [ctx.asset.registration_channel, *(m.name for m in ctx.asset.additional_channels())]


def run_ccf_channel(ctx: MouseContext, channel: str) -> HistologyResult:
    """``ccf_space_histology/<channel>.nrrd`` from the channel's image-space volume.

    The volume is sampled (linear, ANTs's rules) at every voxel of the CCF 25 um grid in IRP
    order through the image chain; its voxels are placed by the registration-frame geometry of G.
    """
    import nrrd

    def body(result: HistologyResult, writer, timed) -> None:
        root, mouse = ctx.config.results_root, ctx.mouse_id
        registration = channel == ctx.asset.registration_channel
        # the registration channel's item never lists the others: it would depend on their files
        if not registration and channel not in channel_names(ctx):
            raise InputError(f"no channel {channel!r} in the asset", file=ctx.asset.path)
        grids = Grids.build(ctx)
        ccf_irp, _ = reorient(ctx.ccf_template, OUTPUT_CODE)  # the CCF voxel centres, IRP order
        with timed(f"{channel} -> CCF (QC)"), heartbeat(f"{channel} on the CCF grid"):
            source = source_path(ctx.config, mouse, channel, registration)
            data, _ = nrrd.read(str(source))  # ITK (i, j, k) order, the dtype it was written in
            moving = Moving(data, grids.registration, "linear", data.dtype)
            (volume,) = resample(ccf_irp, ctx.chain_map(ctx.image_to_ccf), [moving], ctx.threads)
            del data, moving
            writer.nrrd(outputs.ccf_space_path(root, mouse, channel), volume, ccf_irp)

    return guarded(ctx, body)


def upstream_files(config: PipelineConfig, work: HistologyCcfWork) -> list[Path]:
    """The image-space volume this item reads (an output of the ``channels`` part): its
    re-run fingerprint holds the digest."""
    path = source_path(config, work.mouse_id, work.channel, work.registration)
    return [path] if path.is_file() else []


def source_path(config: PipelineConfig, mouse_id: str, channel: str, registration: bool) -> Path:
    """The image-space volume of ``channel`` (pipeline geometry for the registration channel)."""
    if registration:
        return outputs.histology_paths(config.results_root, mouse_id)["registration_pipeline"]
    return outputs.channel_path(config.results_root, mouse_id, channel)


def discard_ccf_channel(config: PipelineConfig, work: HistologyCcfWork) -> None:
    """Remove the QC volume of an item whose worker died mid-way."""
    outputs.ccf_space_path(config.results_root, work.mouse_id, work.channel).unlink(missing_ok=True)
