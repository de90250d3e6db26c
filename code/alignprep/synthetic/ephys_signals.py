"""Known signals and probe geometries for the synthetic ephys assets.

:class:`KnownSignalRecording` replaces chosen channels by seeded white noise plus sinusoids (then
quantises like Open Ephys), so RMS and spectra have analytic values (:func:`band_rms_uv`);
``np1_probe`` / ``np2_probe`` are probeinterface Neuropixels layouts cut to a few contacts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from spikeinterface.core import BaseRecordingSegment
from spikeinterface.preprocessing.basepreprocessor import BasePreprocessor


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
