"""IBL ALF normalisation of analyzer data (pure arrays) and the probe-folder check."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignprep.inputs.analyzers import AnalyzerMeta, AnalyzerSpikes
from alignprep.inputs.curation import UnitCuration
from alignprep.inputs.sorted import AnalyzerRef
from alignprep.stages import alf

FS_HZ = 30000.0
N_SAMP = 6
# Two analyzers of a 4-shank probe: shank groups 2 (x 500/532 um) and 3 (x 750/782); the raw
# channel table has every shank, so the analyzer order (0, 1) differs from the GUI shank (2, 3).
BASE_XY = np.array([[0.0, 0.0], [32.0, 0.0], [0.0, 15.0], [32.0, 15.0]])
XY = {k: BASE_XY + np.array([250.0 * k, 0.0]) for k in range(4)}
# channel table rows: 0..3 = XY[3][[2, 3, 0, 1]], 4..7 = XY[2], 8..11 = XY[0], 12..15 = XY[1]
TABLE = alf.ChannelTable(
    local_coordinates_um=np.vstack([XY[3][[2, 3, 0, 1]], XY[2], XY[0], XY[1]]),
    raw_ind=np.arange(16),
    shank_ind=np.repeat([3, 2, 0, 1], 4),
)


def meta(unit_ids: tuple[str, ...], xy: np.ndarray, contact_ids=None) -> AnalyzerMeta:
    return AnalyzerMeta(unit_ids, xy, contact_ids, 1, 1.0, FS_HZ, True, {})


def templates_uv(peaks: list[int], extrema: list[float]) -> np.ndarray:
    """(n_units, 6, 4) templates: channel ``peaks[u]`` swings to ``extrema[u]`` at sample 2 and
    back to -0.4 x that at sample 4; the other channels carry a small ramp."""
    wf = np.zeros((len(peaks), N_SAMP, 4))
    for u, (p, e) in enumerate(zip(peaks, extrema, strict=True)):
        wf[u] = np.linspace(-1, 1, N_SAMP)[:, None] * (1 + np.arange(4))[None, :] * 0.1
        wf[u, 2, p], wf[u, 4, p] = e, -0.4 * e
    return wf


def spikes(
    group: int,
    unit_ids: tuple[str, ...],
    samples: list[int],
    units: list[int],
    amps_uv: list[float],
    peaks: list[int],
    extrema: list[float],
    metrics: pd.DataFrame | None = None,
) -> AnalyzerSpikes:
    ref = AnalyzerRef(Path(f"g{group}.zarr"), 1, 1, group, None, probe="rec/ProbeB")
    n = len(samples)
    return AnalyzerSpikes(
        ref=ref,
        meta=meta(unit_ids, XY[group]),
        sample_index=np.asarray(samples),
        unit_index=np.asarray(units),
        amplitudes_uv=np.asarray(amps_uv, float),
        depths_um=np.arange(n, dtype=float) * 5.0 + 100 * group,
        templates_uv=templates_uv(peaks, extrema),
        metrics=metrics if metrics is not None else pd.DataFrame(index=list(unit_ids)),
    )


def two_groups(**kwargs) -> list[alf.SortedGroup]:
    """Group 2: units "3", "7"; group 3: units "3", "5", "9" (a positive-going unit "5")."""
    m2 = pd.DataFrame({"snr": [1.0, 2.0]}, index=["3", "7"])
    m3 = pd.DataFrame({"snr": [3.0, 4.0, 5.0], "drift_ptp": [0.1, 0.2, 0.3]}, index=["3", "5", "9"])
    g2 = spikes(2, ("3", "7"), [3000, 15000, 27000], [0, 1, 0], [-50, -60, -70], [1, 2],
                [-100.0, -80.0], m2)  # fmt: skip
    g3 = spikes(3, ("3", "5", "9"), [6000, 9000, 30000], [2, 0, 1], [-80, -90, 100], [3, 0, 2],
                [-90.0, 120.0, -70.0], m3)  # fmt: skip
    labels2 = {"default_qc": np.array([True, False]), "unitrefine_label": np.array(["sua", "mua"])}
    labels3 = {"default_qc": np.array([True, True, False])}
    return [
        alf.SortedGroup(g2, UnitCuration(labels2), kwargs.get("keep2")),
        alf.SortedGroup(g3, UnitCuration(labels3), kwargs.get("keep3")),
    ]


def test_channel_rows_by_location_and_contact_id():
    assert alf.channel_rows(meta(("1",), XY[3]), TABLE).tolist() == [2, 3, 0, 1]
    assert alf.channel_rows(meta(("1",), XY[2]), TABLE).tolist() == [4, 5, 6, 7]
    # contact ids are used when both sides have them and the locations agree
    ids = np.array([f"s{k}e{e}" for k, order in ((3, [2, 3, 0, 1]), (2, range(4)), (0, range(4)),
                                                 (1, range(4))) for e in order])  # fmt: skip
    table = alf.ChannelTable(TABLE.local_coordinates_um, TABLE.raw_ind, TABLE.shank_ind, ids)
    info = meta(("1",), XY[3], ("s3e0", "s3e1", "s3e2", "s3e3"))
    assert alf.channel_rows(info, table).tolist() == [2, 3, 0, 1]
    # a contact id whose location disagrees is not trusted: the location decides
    wrong = meta(("1",), XY[3], ("s3e1", "s3e0", "s3e2", "s3e3"))
    assert alf.channel_rows(wrong, table).tolist() == [2, 3, 0, 1]
    # an unknown location is reported as -1, not silently mapped
    assert alf.channel_rows(meta(("1",), np.array([[999.0, 0.0]])), TABLE).tolist() == [-1]


def test_normalise_units_ids_order_and_shanks():
    arrays, notes = alf.normalise(two_groups(), TABLE)
    assert len(notes) == 1 and "no IBL label column" in notes[0]  # no metrics it needs
    # global ids: group 2 -> 0..1, group 3 -> 2..4; spikes sorted by time (samples / 30 kHz)
    assert arrays["spikes.times.npy"].tolist() == [0.1, 0.2, 0.3, 0.5, 0.9, 1.0]
    assert arrays["spikes.clusters.npy"].tolist() == [0, 4, 2, 1, 0, 3]
    assert arrays["spikes.clusters.npy"].dtype == np.uint32
    assert arrays["spikes.depths.npy"].tolist() == [200.0, 300.0, 305.0, 205.0, 210.0, 310.0]
    # GUI shank = x-group rank among all recorded channels (2 and 3), not analyzer order (0, 1)
    assert arrays["spike_shank_indices.npy"].tolist() == [2, 3, 3, 2, 2, 3]
    assert arrays["unit_shank_indices.npy"].tolist() == [2, 2, 3, 3, 3]
    # peak channels as rows of channels.*: group 2 local 1,2 -> 5,6; group 3 local 3,0,2 -> 1,2,0
    assert arrays["clusters.channels.npy"].tolist() == [5, 6, 1, 2, 0]
    # peak-to-trough: argmax - argmin of the peak channel = +-2 samples at 30 kHz, in ms
    two_samples_ms = 2 / FS_HZ * 1e3
    expected_ptt = [two_samples_ms, two_samples_ms, two_samples_ms, -two_samples_ms, two_samples_ms]
    assert arrays["clusters.peakToTrough.npy"] == pytest.approx(expected_ptt)
    wf = arrays["clusters.waveforms.npy"]
    assert wf.dtype == np.float32 and wf.shape == (5, N_SAMP, 4)
    assert wf[:, 2, 0] == pytest.approx([-100e-6, -80e-6, -90e-6, 120e-6, -70e-6])  # V, peak first
    assert arrays["clusters.waveformsChannels.npy"][:, 0].tolist() == [5, 6, 1, 2, 0]
    metrics = arrays["clusters.metrics.csv"]
    assert metrics["cluster_id"].tolist() == [0, 1, 2, 3, 4]
    assert metrics["unit_id"].tolist() == ["3", "7", "3", "5", "9"]
    assert metrics["shank"].tolist() == [2, 2, 3, 3, 3]
    assert metrics["snr"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert metrics["drift_ptp"].iloc[2:].tolist() == [0.1, 0.2, 0.3]
    assert metrics["drift_ptp"].iloc[:2].isna().all()  # a metric one analyzer lacks: empty
    assert metrics["default_qc"].tolist() == [True, False, True, True, False]
    assert metrics["unitrefine_label"].iloc[:2].tolist() == ["sua", "mua"]
    assert list(metrics.columns[:3]) == ["cluster_id", "unit_id", "shank"]


def test_amplitudes_are_positive_volts_whatever_the_template_sign():
    """IBL: spikes.amps > 0 in V. SI gives positive values for a positive-going unit ("5") and
    values of either sign on a unit near the noise; the converter negated them all."""
    groups = two_groups()
    small = replace(
        groups[0].spikes,
        amplitudes_uv=np.array([-5.0, 4.0, 3.0]),  # unit "3" (negative-going), noise flips it
    )
    arrays, _ = alf.normalise([replace(groups[0], spikes=small), groups[1]], TABLE)
    by_time = {0.1: 5.0, 0.2: 80.0, 0.3: 90.0, 0.5: 4.0, 0.9: 3.0, 1.0: 100.0}
    expected_v = [by_time[t] * 1e-6 for t in arrays["spikes.times.npy"]]
    assert arrays["spikes.amps.npy"] == pytest.approx(expected_v)
    assert np.all(arrays["spikes.amps.npy"] > 0)
    # unit "5" (global 3) is positive-going: its waveform column 0 is positive at the peak
    assert arrays["clusters.waveforms.npy"][3, 2, 0] == pytest.approx(120e-6)


def test_keep_mask_drops_units_and_their_spikes_and_renumbers():
    groups = two_groups(keep2=np.array([True, False]), keep3=np.array([False, True, True]))
    arrays, _ = alf.normalise(groups, TABLE)
    # kept: group 2 unit "3" -> 0; group 3 units "5", "9" -> 1, 2
    assert arrays["clusters.metrics.csv"]["unit_id"].tolist() == ["3", "5", "9"]
    assert arrays["clusters.metrics.csv"]["cluster_id"].tolist() == [0, 1, 2]
    assert arrays["spikes.times.npy"].tolist() == [0.1, 0.2, 0.9, 1.0]
    assert arrays["spikes.clusters.npy"].tolist() == [0, 2, 0, 1]
    assert arrays["clusters.channels.npy"].tolist() == [5, 2, 0]
    with pytest.raises(ValueError, match="removed every unit"):
        alf.normalise(
            two_groups(keep2=np.zeros(2, bool), keep3=np.zeros(3, bool)),
            TABLE,
        )


def test_ibl_label_only_with_every_metric_it_needs():
    groups = two_groups()
    arrays, notes = alf.normalise(groups, TABLE)
    assert "label" not in arrays["clusters.metrics.csv"]
    assert len(notes) == 1 and "no IBL label column" in notes[0]
    assert "rec/ProbeB, shank group 2" in notes[0] and "noise_cutoff" in notes[0]
    metrics = {
        "sliding_rp_violation": [0.05, 0.2],
        "noise_cutoff": [1.0, 1.0],
        "amplitude_median": [-80.0, 60.0],
    }
    with_metrics = []
    for grp in groups:
        n = len(grp.spikes.meta.unit_ids)
        table = pd.DataFrame(
            {k: (v * 2)[:n] for k, v in metrics.items()}, index=list(grp.spikes.meta.unit_ids)
        )
        with_metrics.append(replace(grp, spikes=replace(grp.spikes, metrics=table)))
    arrays, notes = alf.normalise(with_metrics, TABLE)
    assert notes == []
    # rp 0.05 passes, 0.2 fails; noise cutoff 1 passes; |median| 80 and 60 pass
    assert arrays["clusters.metrics.csv"]["label"].tolist() == pytest.approx(
        [1.0, 2 / 3, 1.0, 2 / 3, 1.0]
    )


def test_normalise_rejects_mismatched_inputs():
    groups = two_groups()
    far = replace(groups[1].spikes, meta=meta(("3", "5", "9"), XY[3] + 1000.0))
    with pytest.raises(ValueError, match=r"shank group 3: peak channels of units"):
        alf.normalise([groups[0], replace(groups[1], spikes=far)], TABLE)
    longer = replace(groups[1].spikes, templates_uv=np.zeros((3, N_SAMP + 1, 4)))
    with pytest.raises(ValueError, match="different numbers of samples"):
        alf.normalise([groups[0], replace(groups[1], spikes=longer)], TABLE)


def test_waveforms_keep_each_units_largest_channels_when_analyzers_differ():
    """A narrower analyzer sets the waveform width; each unit keeps its own largest channels."""
    groups = two_groups()
    narrow = replace(
        groups[0].spikes,
        meta=meta(("3", "7"), XY[2][:3]),
        templates_uv=groups[0].spikes.templates_uv[:, :, :3],
    )
    arrays, _ = alf.normalise([replace(groups[0], spikes=narrow), groups[1]], TABLE)
    wf, rows = arrays["clusters.waveforms.npy"], arrays["clusters.waveformsChannels.npy"]
    assert wf.shape == (5, N_SAMP, 3)
    # group 3 unit "3" peaks on its local channel 3 (row 1), beyond the first 3 channels
    assert rows[2, 0] == 1 and wf[2, 2, 0] == pytest.approx(-90e-6)


def write_folder(path: Path, arrays: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    alf.write_alf(path, arrays)
    np.save(path / "channels.localCoordinates.npy", TABLE.local_coordinates_um)
    np.save(path / "channels.rawInd.npy", TABLE.raw_ind)
    np.save(path / "_iblqc_ephysTimeRmsAP.rms.npy", np.ones((3, 16), np.float32))
    np.save(path / "_iblqc_ephysTimeRmsAP.timestamps.npy", np.array([2.0, 6.0, 10.0]))
    return path


def test_check_folder_accepts_normalised_output(tmp_path):
    arrays, _ = alf.normalise(two_groups(), TABLE)
    path = write_folder(tmp_path / "probe", arrays)
    assert alf.check_folder(path) == []
    metrics = pd.read_csv(path / "clusters.metrics.csv")
    assert metrics["cluster_id"].tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"spikes.times.npy": np.array([0.1, 0.3, 0.2, 0.5, 0.9, 1.0])}, "not sorted"),
        ({"spikes.clusters.npy": np.array([0, 4, 2, 1, 0, 5], np.uint32)}, ">= number of"),
        ({"clusters.channels.npy": np.array([5, 6, 1, 2, 16])}, "past channels"),
        ({"spikes.amps.npy": np.ones(5)}, "spikes.*: inconsistent dimensions"),
        ({"spike_shank_indices.npy": np.zeros(5, int)}, "spike_shank_indices"),
    ],
)
def test_check_folder_finds_problems(tmp_path, change, message):
    arrays, _ = alf.normalise(two_groups(), TABLE)
    path = write_folder(tmp_path / "probe", {**arrays, **change})
    problems = alf.check_folder(path)
    assert any(message in p for p in problems), problems


def test_check_folder_spikes_without_clusters(tmp_path):
    arrays, _ = alf.normalise(two_groups(), TABLE)
    path = write_folder(tmp_path / "probe", arrays)
    for p in path.glob("clusters.*"):
        p.unlink()
    assert "spikes.* and clusters.* must be both present or both absent" in alf.check_folder(path)


def test_check_folder_qc_columns_cover_raw_ind(tmp_path):
    arrays, _ = alf.normalise(two_groups(), TABLE)
    path = write_folder(tmp_path / "probe", arrays)
    np.save(path / "_iblqc_ephysTimeRmsAP.rms.npy", np.ones((3, 5), np.float32))
    assert any("columns <= max(rawInd) 15" in p for p in alf.check_folder(path))
