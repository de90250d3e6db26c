"""What a run will need: peak memory and disk, estimated from its own inputs before it starts.

A fixed threshold is wrong both ways: 8 GB refuses the demo on a 4 GB laptop and lets a real
mouse start on a machine it will run out of. The estimate follows what the stages hold at once:

* histology: the chosen OME-Zarr level (stored and as float32), the output grid G (float32, a
  few copies), and, while ANTs warps, the CCF volume and every displacement field of the chain
  (ANTs loads them whole, float32: X*Y*Z*3*4 bytes each, read from the NIfTI headers);
* ephys, per probe: the converter's windows in flight, which scale with the channel count
  (calibrated on ``tests/benchmarks/ephys.py``: 3.6 GB peak for 384 channels);
* phase 0 runs histology and the probes on ``n_jobs`` workers: the n_jobs largest peaks add up
  (the demo, 2 x 48 channels on 2 workers: estimated 1.8 GB, measured 1.4 GB by
  ``tests/benchmarks/demo.py``);
* disk: every output volume uncompressed (gzip only shrinks them) plus scratch copies.

The numbers are logged with their parts, so a refusal says what to change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..logs import get_logger

log = get_logger("stages.needs")

GB = 1024**3
ORCHESTRATOR_BYTES = 300 << 20  # the supervisor and the run's own process
WORKER_BASE_BYTES = 250 << 20  # a worker with numpy, ANTs and SpikeInterface imported
EPHYS_BASE_BYTES = 100 << 20
EPHYS_PER_CHANNEL_BYTES = int((3.6 * GB - EPHYS_BASE_BYTES - WORKER_BASE_BYTES) / 384)
EPHYS_OUTPUT_BYTES = 200 << 20  # ALF files and QC arrays of one probe
DEFAULT_CHANNELS = 384


@dataclass
class Needs:
    """Estimated peak memory (of the whole run, all workers) and disk (results + scratch)."""

    ram_bytes: int = 0
    disk_bytes: int = 0
    parts: dict[str, int] = field(default_factory=dict)  # what -> bytes, for the log

    def describe(self) -> str:
        """One line: the totals and their parts in GB."""
        parts = ", ".join(f"{k} {v / GB:.2f}" for k, v in self.parts.items())
        return f"RAM ~{self.ram_bytes / GB:.2f} GB, disk ~{self.disk_bytes / GB:.2f} GB ({parts})"


def field_bytes(path: Path | None) -> int:
    """Bytes ANTs holds for a displacement field file (float32 vectors), from its header."""
    if path is None or not Path(path).is_file():
        return 0
    import nibabel as nib

    try:
        shape = nib.load(str(path)).header.get_data_shape()
    except Exception:  # the transform check reports unreadable files
        return 0
    return int(np.prod(shape, dtype=np.int64)) * 4


def probe_channels(zarr: Path) -> int:
    """Channel count of a SpikeInterface raw zarr (``traces_seg0`` is samples x channels)."""
    try:
        meta = json.loads((Path(zarr) / "traces_seg0" / ".zarray").read_text())
        return int(meta["shape"][1])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return DEFAULT_CHANNELS


def histology_needs(ctx) -> tuple[int, int, dict[str, int]]:
    """(peak RAM, disk, parts) of the histology stage of one mouse."""
    from ..space.resample import output_size

    cfg = ctx.config
    level = ctx.multiscale.choose_level(cfg.histology.desired_voxel_size_um)
    level_vox = int(np.prod(level.size, dtype=np.int64))
    out_mm = cfg.histology.output_voxel_size_um * 1e-3
    g_vox = int(np.prod(output_size(level.size, level.spacing_mm, out_mm), dtype=np.int64))
    ccf_vox = int(np.prod(ctx.ccf_template.size, dtype=np.int64))
    n_channels = len(ctx.asset.channels)
    inverse = sum(field_bytes(p) for p in ctx.to_ccf.files if str(p).endswith("Warp.nii.gz"))
    forward = sum(
        field_bytes(r.warp) for r in (ctx.asset.ls_to_template, ctx.template_to_ccf.registration)
    )
    read = level_vox * (ctx.multiscale.dtype.itemsize + 4) + g_vox * 4 * 2
    warp = inverse + ccf_vox * 4 + g_vox * (4 + 1 + 4)
    qc = (forward + ccf_vox * 4 * 2 + g_vox * 4) if cfg.histology.write_ccf_space else 0
    ram = max(read, warp, qc)
    disk = g_vox * (2 + 2 + 2 + 4 + 2 * (n_channels - 1))  # registration (+twin), ccf, labels
    if cfg.histology.write_ccf_space:
        disk += ccf_vox * 2 * n_channels
    disk += ccf_vox * (2 + 4) + max(g_vox, ccf_vox) * 4 + g_vox  # scratch copies and warps
    parts = {
        "level read": read,
        "warp (fields in memory)": warp,
        "QC warp": qc,
        "histology disk": disk,
    }
    return ram, disk, parts


def histology_items(ctx, parts: dict[str, int]) -> list[int]:
    """The peak of each histology item, which may run at once on several workers: the
    channels part (the level read), the atlas part (the warp) and each channel's CCF QC."""
    items = [parts["level read"], parts["warp (fields in memory)"]]
    if parts["QC warp"]:
        items += [parts["QC warp"]] * len(ctx.asset.channels)
    return items


def estimate(contexts: list, probe_zarrs: dict[str, list[Path]], n_jobs: int) -> Needs:
    """The run's needs: each mouse's histology and every probe, on ``n_jobs`` workers."""
    needs = Needs()
    peaks: list[int] = []
    for ctx in contexts:
        _, disk, parts = histology_needs(ctx)
        peaks += [peak + WORKER_BASE_BYTES for peak in histology_items(ctx, parts)]
        needs.disk_bytes += disk
        prefix = f"{ctx.mouse_id} " if len(contexts) > 1 else ""
        needs.parts.update({prefix + k: v for k, v in parts.items()})
    for name, zarrs in sorted(probe_zarrs.items()):
        channels = max((probe_channels(z) for z in zarrs), default=DEFAULT_CHANNELS)
        peak = EPHYS_BASE_BYTES + channels * EPHYS_PER_CHANNEL_BYTES + WORKER_BASE_BYTES
        peaks.append(peak)
        needs.disk_bytes += EPHYS_OUTPUT_BYTES
        needs.parts[f"ephys {name} ({channels} ch)"] = peak
    concurrent = sorted(peaks, reverse=True)[: max(1, n_jobs)]
    needs.ram_bytes = ORCHESTRATOR_BYTES + sum(concurrent)
    needs.parts[f"{len(concurrent)} at once (n_jobs {n_jobs})"] = needs.ram_bytes
    return needs
