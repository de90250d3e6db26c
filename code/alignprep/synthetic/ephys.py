"""Seeded synthetic AIND-like ephys assets (sorted + raw) with their ground truth.

``build_ephys(data_root, ...)`` writes, under ``data_root``, the raw session
``<recording_id>/ecephys/{ecephys_clipped,ecephys_compressed}`` (minimal Open Ephys metadata and
WavPack-compressed SpikeInterface zarrs) and the sorted asset ``<recording_id>_sorted_<dt>/``
(SortingAnalyzers in ``postprocessed/``, labelled sortings in ``curated/``, in the AIND layout
the preset asks for: :mod:`.ephys_sorted`), and the truth JSON beside ``data_root``
(``ephys_truth.json``). Probes: an NP1.0 ``ProbeA`` (AP 30 kHz + LFP 2.5 kHz streams, one
analyzer) and a 4-shank NP2.0 ``ProbeB`` (one wideband stream, one analyzer per shank
``_group0.._group3``, shanks 250 um apart). Building again into the same ``data_root`` replaces
both assets and writes the same bytes.

Spikes come from ``spikeinterface``'s ground-truth generator; ``unit_scales`` multiplies unit
templates (a negative scale makes a positive-going unit, a small one a unit near the noise). One
channel per probe carries a known signal instead of the generated trace: seeded white noise of
std ``noise_uv`` plus sinusoids, so the band RMS and the LFP spectral peak have analytic values
(:func:`band_rms_uv`).
"""

from __future__ import annotations

import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .ephys_signals import (
    KnownSignalRecording,
    band_rms_uv,
    np1_probe,
    np2_probe,
    np2_shank_indices,
)
from .ephys_sorted import write_sorted_group
from .tracks import SESSION, sorted_recording
from .volumes import _single_threaded_blosc, write_json

__all__ = ["PRESETS", "EphysPreset", "band_rms_uv", "build_ephys", "raw_zarr_path"]

RECORD_NODE = "Record Node 104"
DEVICE = "Neuropix-PXI-100"
GAIN_UV = 0.195  # Open Ephys Neuropix-PXI bit_volts
AP_RATE_HZ, LF_RATE_HZ = 30000.0, 2500.0
AP_SINE_HZ, LF_SINE_HZ = 1000.0, 20.0


@dataclass(frozen=True)
class EphysPreset:
    """Size of a synthetic ephys dataset."""

    name: str
    duration_s: float
    np1_channels: int
    np2_channels_per_shank: int
    np1_units: int
    np2_units_per_shank: int
    probes: tuple[str, ...] = ("ProbeA", "ProbeB")
    noise_uv: float = 10.0  # AP / wideband noise std
    lfp_noise_uv: float = 20.0  # NP1 LFP-stream noise std
    ap_sine_uv: float = 50.0
    lf_sine_uv: float = 40.0
    firing_rate_hz: float = 8.0
    n_jobs: int = 1
    analyzer_format: str = "zarr"  # or "binary_folder"
    label_layout: str = "unitrefine"  # or "decoder" (ephys_sorted.LABEL_LAYOUTS)
    unit_scales: tuple[float, ...] = ()  # template factor of units 0, 1, ... of every sorting


PRESETS = {
    # unit 1: positive-going; unit 2: peak about 0.8 x the noise std, so SI amplitudes flip sign
    "test": EphysPreset("test", 10.0, 48, 12, 6, 3, unit_scales=(1.0, -1.0, 0.08)),
    "benchmark": EphysPreset("benchmark", 120.0, 384, 96, 40, 10, probes=("ProbeA",), n_jobs=2),
    # four probe folders of the test's size (C like A, D like B): the executors benchmark
    "four_probes": EphysPreset(
        "four_probes", 10.0, 48, 12, 6, 3, probes=("ProbeA", "ProbeB", "ProbeC", "ProbeD")
    ),
}


def recording_id(mouse_id: str) -> str:
    """The raw session name of the synthetic recording (= sorted name before ``_sorted``)."""
    return f"ecephys_{mouse_id}_{SESSION}"


def stream_name(probe: str, band: str | None = None) -> str:
    """Open Ephys / neo stream name, e.g. ``Record Node 104#Neuropix-PXI-100.ProbeA-AP``."""
    return f"{RECORD_NODE}#{DEVICE}.{probe}" + (f"-{band}" if band else "")


# --- builder ---------------------------------------------------------------------------------


@dataclass
class _Target:
    """Where one build writes, and the Open Ephys stream entries it collects."""

    spec: EphysPreset
    session: Path  # <recording_id>/ecephys
    sorted_dir: Path
    oebin: list[dict[str, Any]]


def build_ephys(
    data_root: Path,
    mouse_id: str = "000123",
    seed: int = 0,
    preset: str | EphysPreset = "test",
    truth_path: Path | None = None,
) -> dict[str, Any]:
    """Write the raw and sorted ephys assets of ``preset`` under ``data_root``; return the truth.

    The truth (also written to ``truth_path``, default ``data_root/../ephys_truth.json``) holds,
    per probe: stream names, the channel locations, per analyzer group the spike sample indices
    of every unit and its curation labels, and the known-signal channels.
    """
    spec = PRESETS[preset] if isinstance(preset, str) else preset
    data_root = Path(data_root)
    rid = recording_id(mouse_id)
    target = _Target(spec, data_root / rid / "ecephys", data_root / sorted_recording(mouse_id), [])
    for folder in (target.session.parent, target.sorted_dir):  # a rebuild replaces both assets
        shutil.rmtree(folder, ignore_errors=True)
    for sub in ("postprocessed", "curated"):
        (target.sorted_dir / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    truth: dict[str, Any] = {
        "preset": asdict(spec),
        "recording_id": rid,
        "sorted_recording": target.sorted_dir.name,
        "sampling_frequency_hz": AP_RATE_HZ,
        "gain_uv": GAIN_UV,
        "probes": {},
    }
    builders = {
        "ProbeA": _build_np1,
        "ProbeB": _build_np2,
        "ProbeC": _build_np1,
        "ProbeD": _build_np2,
    }
    with warnings.catch_warnings(), _single_threaded_blosc():
        warnings.simplefilter("ignore")  # SpikeInterface / codec chatter about the fake data
        for probe in spec.probes:
            truth["probes"][probe] = builders[probe](target, probe, int(rng.integers(2**31)))
    _write_open_ephys(target.session / "ecephys_clipped", target.oebin)
    description = {
        "name": target.sorted_dir.name,
        "subject_id": mouse_id,
        "source_data": [rid],
        "input_data_name": rid,
    }
    write_json(target.sorted_dir / "data_description.json", description)
    write_json(
        target.session.parent / "data_description.json", {"name": rid, "subject_id": mouse_id}
    )
    write_json(truth_path or data_root.parent / "ephys_truth.json", truth)
    return truth


def _ground_truth(spec: EphysPreset, probe: Any, n_units: int, seed: int) -> tuple[Any, Any]:
    """A generated recording and its sorting; templates scaled by ``spec.unit_scales``."""
    from spikeinterface.generation import generate_ground_truth_recording

    kwargs = {
        "durations": [spec.duration_s],
        "sampling_frequency": AP_RATE_HZ,
        "probe": probe,
        "seed": seed,
        "noise_kwargs": {"noise_levels": spec.noise_uv, "strategy": "on_the_fly"},
    }
    rec, sorting = generate_ground_truth_recording(
        num_units=n_units,
        generate_sorting_kwargs={"firing_rates": spec.firing_rate_hz, "refractory_period_ms": 4.0},
        **kwargs,
    )
    scales = np.ones(n_units)
    scales[: len(spec.unit_scales)] = spec.unit_scales[:n_units]
    if np.any(scales != 1.0):
        templates = rec.templates * scales[:, None, None].astype(rec.templates.dtype)
        rec, sorting = generate_ground_truth_recording(
            sorting=sorting, templates=templates, **kwargs
        )
    return rec, sorting


def _build_np1(target: _Target, probe_name: str, seed: int) -> dict[str, Any]:
    """NP1.0: AP stream (spikes; a 1 kHz sine channel) and LFP stream (noise; a 20 Hz channel)."""
    from spikeinterface.generation import NoiseGeneratorRecording

    spec, n = target.spec, target.spec.np1_channels
    probe = np1_probe(n)
    gt_rec, sorting = _ground_truth(spec, probe, spec.np1_units, seed)
    c_ap, c_lf = n - 3, n - 6
    ap_sines, lf_sines = [(spec.ap_sine_uv, AP_SINE_HZ)], [(spec.lf_sine_uv, LF_SINE_HZ)]
    ap = KnownSignalRecording(gt_rec, [c_ap], [spec.noise_uv], [ap_sines], GAIN_UV, seed + 1)
    lf_base = NoiseGeneratorRecording(
        num_channels=n,
        sampling_frequency=LF_RATE_HZ,
        durations=[spec.duration_s],
        noise_levels=spec.lfp_noise_uv,
        dtype="float32",
        seed=seed + 2,
        strategy="on_the_fly",
    )
    lf_base.set_probe(probe)
    lf = KnownSignalRecording(lf_base, [c_lf], [spec.lfp_noise_uv], [lf_sines], GAIN_UV, seed + 3)
    streams = {"ap": stream_name(probe_name, "AP"), "lf": stream_name(probe_name, "LFP")}
    ap_mem = _save_raw(target, ap, streams["ap"])
    _save_raw(target, lf, streams["lf"])
    xy = probe.contact_positions
    return {
        "kind": "NP1",
        "streams": streams,
        "channels_xy_um": xy.tolist(),
        "groups": [_sorted_group(target, sorting, ap_mem, streams["ap"], None, seed)],
        "signals": [
            _signal("ap", c_ap, xy, spec.noise_uv, ap_sines, AP_RATE_HZ),
            _signal("lf", c_lf, xy, spec.lfp_noise_uv, lf_sines, LF_RATE_HZ),
        ],
    }


def _build_np2(target: _Target, probe_name: str, seed: int) -> dict[str, Any]:
    """NP2.0 4-shank: one wideband stream, one ground truth per shank; sines on shank 2."""
    from spikeinterface.core import aggregate_channels

    spec, per_shank = target.spec, target.spec.np2_channels_per_shank
    shank_idx = np2_shank_indices(per_shank)
    probe = np2_probe(np.concatenate(shank_idx))
    parts = [
        _ground_truth(spec, np2_probe(idx), spec.np2_units_per_shank, seed + k)
        for k, idx in enumerate(shank_idx)
    ]
    ids = [f"CH{i + 1}" for i in range(per_shank * len(shank_idx))]
    agg = aggregate_channels([rec for rec, _ in parts], renamed_channel_ids=ids)
    agg.set_probe(probe, group_mode="by_shank")
    c = 3 * per_shank - 2  # near the top of shank 2
    sines = [(spec.ap_sine_uv, AP_SINE_HZ), (spec.lf_sine_uv, LF_SINE_HZ)]
    wide = KnownSignalRecording(agg, [c], [spec.noise_uv], [sines], GAIN_UV, seed + 10)
    streams = {"ap": stream_name(probe_name)}
    mem = _save_raw(target, wide, streams["ap"])
    xy = probe.contact_positions
    return {
        "kind": "NP2-4shank",
        "streams": streams,
        "channels_xy_um": xy.tolist(),
        "groups": [
            _sorted_group(target, sorting, mem, streams["ap"], k, seed + 20 + k)
            for k, (_, sorting) in enumerate(parts)
        ],
        "signals": [_signal("ap", c, xy, spec.noise_uv, sines, AP_RATE_HZ)],
    }


def _signal(
    stream: str, channel: int, xy: np.ndarray, noise_uv: float, sines: list, fs_hz: float
) -> dict[str, Any]:
    return {
        "stream": stream,
        "channel_index": int(channel),
        "xy_um": [float(v) for v in xy[channel]],
        "noise_uv": float(noise_uv),
        "sines": [[float(a), float(f)] for a, f in sines],
        "sampling_frequency_hz": float(fs_hz),
    }


def raw_zarr_path(session: Path, stream: str, experiment: int = 1) -> Path:
    """``ecephys_compressed/experiment<N>_<stream>.zarr`` of a raw session folder."""
    return session / "ecephys_compressed" / f"experiment{experiment}_{stream}.zarr"


def _save_raw(target: _Target, rec: Any, stream: str) -> Any:
    """Generate the traces once (in memory), write the WavPack zarr; return the memory copy."""
    from wavpack_numcodecs import WavPack

    job = {"n_jobs": target.spec.n_jobs, "chunk_duration": "1s", "progress_bar": False}
    mem = rec.save(format="memory", sharedmem=False, **job)
    path = raw_zarr_path(target.session, stream)
    mem.save(format="zarr", folder=path, compressor=WavPack(level=3, bps=None), **job)
    target.oebin.append(_oebin_entry(stream, mem))
    return mem


def _sorted_group(
    target: _Target, sorting: Any, rec: Any, stream: str, group: int | None, seed: int
) -> dict[str, Any]:
    """One analyzer (and its curated sorting) on the raw channels of ``group``."""
    sorting = sorting.clone()
    if "main_channel_id" in sorting.get_property_keys():  # generator ids, renamed channels
        sorting.delete_property("main_channel_id")
    if group is not None:
        rec = rec.split_by("group")[group]
    rec_name = f"experiment1_{stream}_recording1" + ("" if group is None else f"_group{group}")
    spec = target.spec
    written = write_sorted_group(
        target.sorted_dir,
        rec_name,
        sorting,
        rec,
        analyzer_format=spec.analyzer_format,
        label_layout=spec.label_layout,
        seed=seed,
        n_jobs=spec.n_jobs,
    )
    ids = [str(u) for u in sorting.unit_ids]
    scales = [1.0] * len(ids)
    scales[: len(spec.unit_scales)] = list(spec.unit_scales[: len(ids)])
    return {
        "group": group,
        **written,
        "channel_ids": [str(c) for c in rec.channel_ids],
        "units": {u: sorting.get_unit_spike_train(u, 0).astype(int).tolist() for u in ids},
        "unit_scales": dict(zip(ids, scales, strict=True)),
    }


def _oebin_entry(stream: str, rec: Any) -> dict[str, Any]:
    folder = stream.split("#", 1)[1]
    return {
        "folder_name": f"{folder}/",
        "sample_rate": float(rec.get_sampling_frequency()),
        "source_processor_name": "Neuropix-PXI",
        "source_processor_id": 100,
        "stream_name": folder.split(".", 1)[1],
        "recorded_processor": "Record Node",
        "recorded_processor_id": 104,
        "num_channels": int(rec.get_num_channels()),
        "channels": [
            {"channel_name": f"CH{i + 1}", "bit_volts": GAIN_UV, "units": "uV", "description": ""}
            for i in range(rec.get_num_channels())
        ],
    }


def _write_open_ephys(clipped: Path, continuous: list[dict[str, Any]]) -> None:
    """``structure.oebin`` and clipped (empty) continuous files, as the AIND upload leaves them."""
    rec_dir = clipped / RECORD_NODE / "experiment1" / "recording1"
    for entry in continuous:
        folder = rec_dir / "continuous" / entry["folder_name"].rstrip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "continuous.dat").write_bytes(b"")
        np.save(folder / "sample_numbers.npy", np.zeros(0, dtype=np.int64))
        np.save(folder / "timestamps.npy", np.zeros(0, dtype=np.float64))
    write_json(
        rec_dir / "structure.oebin",
        {"GUI version": "0.6.7", "continuous": continuous, "events": [], "spikes": []},
    )
