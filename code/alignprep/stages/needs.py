"""What a run will need: peak memory and disk, estimated from its own inputs before it starts.

A fixed threshold is wrong both ways: 8 GB refuses the demo on a 4 GB laptop and lets a real
mouse start on a machine it will run out of. The estimate follows what the stages hold at once:

* histology, per item: the channels part holds the chosen level as float32 and G (float32, then
  rounded); the atlas part the two CCF volumes and their two volumes on G; each CCF QC item a
  channel on G and its CCF-grid volume. The displacement fields are not in memory: they are
  decoded once into scratch (disk: X*Y*Z*3*4 bytes each, from the NIfTI headers) and read
  through memory maps a brick at a time (a constant: ``FIELD_PAGES_BYTES``);
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
FIELD_PAGES_BYTES = 256 << 20  # warp pages one brick maps (space/sampling.py: +0.21 GB measured)
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
    """Bytes of a displacement field file's float32 vectors, from its header."""
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
    regs = (ctx.asset.ls_to_template, ctx.template_to_ccf.registration)
    store = sum(field_bytes(p) for r in regs for p in (r.inverse_warp, r.warp))
    item = ctx.multiscale.dtype.itemsize
    read = level_vox * 4 + g_vox * (4 + 4 + item)  # float32 level, zoomed, rounded, stored
    ccf_read = ccf_vox * 4 * 2  # a stored CCF volume and its canonical copy, while reading
    resample = ccf_vox * (2 + 2) + g_vox * (2 + 2) + FIELD_PAGES_BYTES
    atlas = max(ccf_read, resample, g_vox * (2 + 4 + 4))  # labels: index, ids, the NRRD bytes
    qc = g_vox * item + ccf_vox * item * 2 + FIELD_PAGES_BYTES  # moving, output, NRRD bytes
    qc = qc if cfg.histology.write_ccf_space else 0
    ram = max(read, atlas, qc)
    disk = g_vox * (2 + 2 + 2 + 4 + 2 * (n_channels - 1))  # registration (+twin), ccf, labels
    if cfg.histology.write_ccf_space:
        disk += ccf_vox * 2 * n_channels
    parts = {
        "level read": read,
        "atlas": atlas,
        "CCF QC": qc,
        "histology disk": disk,
        "decoded fields (scratch)": store,
    }
    return ram, disk + store, parts


def histology_items(ctx, parts: dict[str, int]) -> list[int]:
    """The peak of each histology item, which may run at once on several workers: the
    channels part (the level read), the atlas part and each channel's CCF QC."""
    items = [parts["level read"], parts["atlas"]]
    if parts["CCF QC"]:
        items += [parts["CCF QC"]] * len(ctx.asset.channels)
    return items


def estimate(contexts: list, probe_zarrs: dict[str, list[Path]], n_jobs: int) -> Needs:
    """The run's needs: each mouse's histology and every probe, on ``n_jobs`` workers."""
    needs = Needs()
    peaks: list[int] = []
    for ctx in contexts:
        if not ctx.light_sheet:
            continue  # tracks from tracing tools: no histology item
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
