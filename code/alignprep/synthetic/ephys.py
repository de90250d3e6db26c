"""Seeded synthetic AIND-like ephys assets (sorted + raw) with their ground truth.

``build_ephys(data_root, ...)`` writes, under ``data_root``, the raw session
``<recording_id>/ecephys/{ecephys_clipped,ecephys_compressed}`` (minimal Open Ephys metadata and
WavPack-compressed SpikeInterface zarrs) and the sorted asset ``<recording_id>_sorted_<dt>/``
(zarr SortingAnalyzers in ``postprocessed/``, labelled sortings in ``curated/``), and the truth
JSON beside ``data_root`` (``ephys_truth.json``). Probes: an NP1.0 ``ProbeA`` (AP 30 kHz + LFP
2.5 kHz streams, one analyzer) and a 4-shank NP2.0 ``ProbeB`` (one wideband stream, one analyzer
per shank ``_group0.._group3``, shanks 250 um apart).

Spikes come from ``spikeinterface``'s ground-truth generator. One channel per probe carries a known
signal instead of the generated trace: seeded white noise of std ``noise_uv`` plus sinusoids, so
the band RMS and the LFP spectral peak have analytic values (:func:`band_rms_uv`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from spikeinterface.core import BaseRecordingSegment
from spikeinterface.preprocessing.basepreprocessor import BasePreprocessor

from .tracks import SESSION, sorted_recording
from .volumes import write_json

RECORD_NODE = "Record Node 104"
DEVICE = "Neuropix-PXI-100"
GAIN_UV = 0.195  # Open Ephys Neuropix-PXI bit_volts
AP_RATE_HZ, LF_RATE_HZ = 30000.0, 2500.0
AP_SINE_HZ, LF_SINE_HZ = 1000.0, 20.0
QUALITY_METRICS = ("num_spikes", "firing_rate", "snr", "isi_violation", "amplitude_median")
DECODER_LABELS = ("sua", "mua", "noise")


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


PRESETS = {
    "test": EphysPreset("test", 10.0, 48, 12, 6, 3),
    "benchmark": EphysPreset("benchmark", 120.0, 384, 96, 40, 10, probes=("ProbeA",), n_jobs=2),
}


def recording_id(mouse_id: str) -> str:
    """The raw session name of the synthetic recording (= sorted name before ``_sorted``)."""
    return f"ecephys_{mouse_id}_{SESSION}"


def stream_name(probe: str, band: str | None = None) -> str:
    """Open Ephys / neo stream name, e.g. ``Record Node 104#Neuropix-PXI-100.ProbeA-AP``."""
    return f"{RECORD_NODE}#{DEVICE}.{probe}" + (f"-{band}" if band else "")


def band_rms_uv(sines: list[tuple[float, float]], noise_uv: float, fs_hz: float, band_hz) -> float:
    """Analytic RMS in a band of white noise (std ``noise_uv``) plus ``(amplitude, freq)`` sines.

    White noise spreads its variance evenly over 0..fs/2, so the band keeps ``(hi-lo)/(fs/2)`` of
    it; a sinusoid in the band contributes ``A**2 / 2``.
    """
    lo, hi = band_hz
    hi = min(hi, fs_hz / 2)
    power = noise_uv**2 * (hi - lo) / (fs_hz / 2)
    power += sum(a**2 / 2 for a, f in sines if lo <= f <= hi)
    return float(np.sqrt(power))


class KnownSignalRecording(BasePreprocessor):
    """int16 copy of a float uV recording in which some channels are replaced by a known signal.

    Channel ``channel_indices[k]`` becomes seeded white noise of std ``noise_uv[k]`` plus the
    sinusoids ``sines[k]`` (``[amplitude_uv, frequency_hz]`` pairs, phase 0 at sample 0). Every
    sample is then quantised to ``gain_uv`` (rounded), as the raw Open Ephys data is.
    """

    def __init__(self, recording, channel_indices, noise_uv, sines, gain_uv, seed) -> None:
        from spikeinterface.generation import NoiseGeneratorRecording

        BasePreprocessor.__init__(self, recording, dtype="int16")
        noise = NoiseGeneratorRecording(
            num_channels=len(channel_indices),
            sampling_frequency=recording.get_sampling_frequency(),
            durations=[recording.get_duration(s) for s in range(recording.get_num_segments())],
            noise_levels=np.asarray(noise_uv, dtype="float32"),
            dtype="float32",
            seed=seed,
            strategy="on_the_fly",
        )
        fs = recording.get_sampling_frequency()
        for s in range(recording.get_num_segments()):
            self.add_recording_segment(
                _KnownSignalSegment(
                    recording._recording_segments[s],
                    noise._recording_segments[s],
                    list(channel_indices),
                    [[tuple(p) for p in ch] for ch in sines],
                    float(gain_uv),
                    fs,
                )
            )
        self.set_channel_gains(gain_uv)
        self.set_channel_offsets(0.0)
        self._kwargs = dict(
            recording=recording,
            channel_indices=[int(c) for c in channel_indices],
            noise_uv=[float(v) for v in noise_uv],
            sines=[[list(map(float, p)) for p in ch] for ch in sines],
            gain_uv=float(gain_uv),
            seed=int(seed),
        )


class _KnownSignalSegment(BaseRecordingSegment):
    def __init__(self, parent, noise, channels, sines, gain_uv: float, fs_hz: float) -> None:
        BaseRecordingSegment.__init__(self, sampling_frequency=fs_hz)
        self.fs_hz = fs_hz
        self.parent, self.noise = parent, noise
        self.channels, self.sines, self.gain_uv = channels, sines, gain_uv

    def get_num_samples(self) -> int:
        return self.parent.get_num_samples()

    def get_traces(self, start_frame=None, end_frame=None, channel_indices=None) -> np.ndarray:
        start = 0 if start_frame is None else int(start_frame)
        end = self.get_num_samples() if end_frame is None else int(end_frame)
        traces = np.array(self.parent.get_traces(start, end, slice(None)), dtype="float64")
        noise = self.noise.get_traces(start, end, slice(None))
        t_s = np.arange(start, end, dtype="float64") / self.fs_hz
        for k, c in enumerate(self.channels):
            signal = noise[:, k].astype("float64")
            for amplitude_uv, freq_hz in self.sines[k]:
                signal += amplitude_uv * np.sin(2 * np.pi * freq_hz * t_s)
            traces[:, c] = signal
        out = np.clip(np.rint(traces / self.gain_uv), -32768, 32767).astype("int16")
        return out if channel_indices is None else out[:, channel_indices]


# --- probes ----------------------------------------------------------------------------------


def np1_probe(n_channels: int) -> Any:
    """The first ``n_channels`` contacts of an NP1.0 (4 staggered columns, 20 um pitch)."""
    from probeinterface.neuropixels_tools import build_neuropixels_probe

    probe = build_neuropixels_probe("NP1000").get_slice(np.arange(n_channels))
    probe.set_device_channel_indices(np.arange(n_channels))
    return probe


def np2_shank_indices(per_shank: int, n_shanks: int = 4) -> list[np.ndarray]:
    """Contact indices of the ``per_shank`` deepest contacts of each NP2.0 4-shank shank."""
    from probeinterface.neuropixels_tools import build_neuropixels_probe

    full = build_neuropixels_probe("NP2014")
    shank_ids = np.asarray(full.shank_ids).astype(int)
    pos = full.contact_positions
    out = []
    for k in range(n_shanks):
        idx = np.flatnonzero(shank_ids == k)
        out.append(idx[np.lexsort((pos[idx, 0], pos[idx, 1]))][:per_shank])
    return out


def np2_probe(indices: np.ndarray) -> Any:
    """A slice of the NP2.0 4-shank probe (shank ``k`` at x = 250 k um, contact ids s<k>e<n>)."""
    from probeinterface.neuropixels_tools import build_neuropixels_probe

    probe = build_neuropixels_probe("NP2014").get_slice(np.asarray(indices))
    probe.set_device_channel_indices(np.arange(len(indices)))
    return probe


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
    builders = {"ProbeA": _build_np1, "ProbeB": _build_np2}
    with warnings.catch_warnings():
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
    from spikeinterface.generation import generate_ground_truth_recording

    return generate_ground_truth_recording(
        durations=[spec.duration_s],
        sampling_frequency=AP_RATE_HZ,
        probe=probe,
        num_units=n_units,
        seed=seed,
        noise_kwargs={"noise_levels": spec.noise_uv, "strategy": "on_the_fly"},
        generate_sorting_kwargs={"firing_rates": spec.firing_rate_hz, "refractory_period_ms": 4.0},
    )


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
    import spikeinterface as si

    sorting = sorting.clone()
    if "main_channel_id" in sorting.get_property_keys():  # generator ids, renamed channels
        sorting.delete_property("main_channel_id")
    if group is not None:
        rec = rec.split_by("group")[group]
    name = f"experiment1_{stream}_recording1" + ("" if group is None else f"_group{group}")
    name += ".zarr"
    job = {"n_jobs": target.spec.n_jobs, "progress_bar": False}
    analyzer = si.create_sorting_analyzer(
        sorting, rec, format="zarr", folder=target.sorted_dir / "postprocessed" / name,
        seed=seed, job_kwargs=job,
    )  # fmt: skip
    analyzer.compute(
        ["random_spikes", "noise_levels", "templates", "spike_amplitudes", "spike_locations"],
        extension_params={"random_spikes": {"max_spikes_per_unit": 200, "seed": seed}},
        **job,
    )
    analyzer.compute("quality_metrics", metric_names=list(QUALITY_METRICS))
    rng = np.random.default_rng(seed)
    default_qc = rng.random(len(sorting.unit_ids)) < 0.6
    decoder = rng.choice(DECODER_LABELS, size=len(sorting.unit_ids))
    curated = sorting.clone()
    curated.set_property("default_qc", default_qc)
    curated.set_property("decoder_label", decoder)
    curated.save(format="zarr", folder=target.sorted_dir / "curated" / name)
    ids = [str(u) for u in sorting.unit_ids]
    return {
        "group": group,
        "analyzer": name,
        "channel_ids": [str(c) for c in rec.channel_ids],
        "units": {u: sorting.get_unit_spike_train(u, 0).astype(int).tolist() for u in ids},
        "default_qc": dict(zip(ids, map(bool, default_qc), strict=True)),
        "decoder_label": dict(zip(ids, map(str, decoder), strict=True)),
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
