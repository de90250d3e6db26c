"""IBL ALF normalisation of converter output (pure arrays) and the probe-folder check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alignprep.stages import alf

# Two analyzers as the converter concatenates them: shank groups 2 (x 500/532 um) and 3
# (x 750/782) of a 4-shank probe whose raw channel table has every shank: the converter's analyzer
# enumeration (0, 1) differs from the GUI shank rank (2, 3).
BASE_XY = np.array([[0.0, 0.0], [32.0, 0.0], [0.0, 15.0], [32.0, 15.0]])
XY = {k: BASE_XY + np.array([250.0 * k, 0.0]) for k in range(4)}
GROUPS = [
    alf.GroupInfo(2, ("3", "7"), XY[2]),
    alf.GroupInfo(3, ("3", "5", "9"), XY[3]),
]
# channel table rows: 0..3 = XY[3][[2, 3, 0, 1]], 4..7 = XY[2], 8..11 = XY[0], 12..15 = XY[1]
TABLE = alf.ChannelTable(
    local_coordinates_um=np.vstack([XY[3][[2, 3, 0, 1]], XY[2], XY[0], XY[1]]),
    raw_ind=np.arange(16),
    shank_ind=np.repeat([3, 2, 0, 1], 4),
)


def waveforms_uv(peaks: list[int]) -> np.ndarray:
    """(n_clu, 6, 4) templates whose channel ``peaks[c]`` has the largest swing."""
    wf = np.zeros((len(peaks), 6, 4))
    for c, p in enumerate(peaks):
        wf[c, :, :] = np.linspace(-1, 1, 6)[:, None] * (1 + np.arange(4))[None, :] * 0.1
        wf[c, 2, p], wf[c, 4, p] = -100.0, 40.0
    return wf


def converter_output() -> alf.ConverterSpikes:
    metrics = pd.DataFrame(
        {
            "cluster_id": ["3", "7", "3", "5", "9"],
            "snr": [1.0, 2.0, 3.0, 4.0, 5.0],
            "cluster_id.1": ["3", "7", "3", "5", "9"],
            "default_qc": [True, False, True, True, False],
        }
    )
    return alf.ConverterSpikes(
        times_s=np.array([0.1, 0.5, 0.9, 0.2, 0.3, 1.0]),
        clusters_local=np.array([0, 1, 0, 2, 0, 1]),
        amps_uv=np.array([50.0, 60.0, 70.0, 80.0, 90.0, 100.0]),
        depths_um=np.array([0.0, 5.0, 10.0, 15.0, 20.0, 25.0]),
        spike_group=np.array([0, 0, 0, 1, 1, 1]),
        cluster_channel_local=np.array([1, 2, 3, 0, 2]),
        peak_to_trough_s=np.array([5e-4, -3e-4, 6e-4, 7e-4, 4e-4]),
        waveforms_uv=waveforms_uv([1, 2, 3, 0, 2]),
        cluster_group=np.array([0, 0, 1, 1, 1]),
        metrics=metrics,
    )


def test_global_cluster_ids_add_shank_offsets():
    ids = alf.global_cluster_ids(np.array([0, 1, 0, 2]), np.array([0, 0, 1, 1]), [2, 3])
    assert ids.tolist() == [0, 1, 2, 4]
    with pytest.raises(ValueError, match="exceeds"):
        alf.global_cluster_ids(np.array([2]), np.array([0]), [2, 3])
    with pytest.raises(ValueError, match="out of range"):
        alf.global_cluster_ids(np.array([0]), np.array([2]), [2, 3])


def test_channel_rows_by_location_and_contact_id():
    assert alf.channel_rows(GROUPS[1], TABLE).tolist() == [2, 3, 0, 1]
    assert alf.channel_rows(GROUPS[0], TABLE).tolist() == [4, 5, 6, 7]
    # contact ids are used when both sides have them and the locations agree
    ids = np.array([f"s{k}e{e}" for k, order in ((3, [2, 3, 0, 1]), (2, range(4)), (0, range(4)),
                                                 (1, range(4))) for e in order])  # fmt: skip
    table = alf.ChannelTable(TABLE.local_coordinates_um, TABLE.raw_ind, TABLE.shank_ind, ids)
    info = alf.GroupInfo(3, ("1",), XY[3], ("s3e0", "s3e1", "s3e2", "s3e3"))
    assert alf.channel_rows(info, table).tolist() == [2, 3, 0, 1]
    # a contact id whose location disagrees is not trusted: the location decides
    wrong = alf.GroupInfo(3, ("1",), XY[3], ("s3e1", "s3e0", "s3e2", "s3e3"))
    assert alf.channel_rows(wrong, table).tolist() == [2, 3, 0, 1]
    # an unknown location is reported as -1, not silently mapped
    lost = alf.GroupInfo(2, ("1",), np.array([[999.0, 0.0]]))
    assert alf.channel_rows(lost, TABLE).tolist() == [-1]


def test_normalise_units_ids_order_and_shanks():
    arrays, notes = alf.normalise(converter_output(), GROUPS, TABLE)
    assert notes == []
    # global ids: group 0 -> 0..1, group 1 -> 2..4; then sorted by time
    assert arrays["spikes.times.npy"].tolist() == [0.1, 0.2, 0.3, 0.5, 0.9, 1.0]
    assert arrays["spikes.clusters.npy"].tolist() == [0, 4, 2, 1, 0, 3]
    assert arrays["spikes.amps.npy"] == pytest.approx([50e-6, 80e-6, 90e-6, 60e-6, 70e-6, 100e-6])
    assert arrays["spikes.depths.npy"].tolist() == [0.0, 15.0, 20.0, 5.0, 10.0, 25.0]
    # GUI shank = x-group rank among all recorded channels (2 and 3), not analyzer order (0, 1)
    assert arrays["spike_shank_indices.npy"].tolist() == [2, 3, 3, 2, 2, 3]
    assert arrays["unit_shank_indices.npy"].tolist() == [2, 2, 3, 3, 3]
    # peak channels as rows of channels.*: group 2 local 1,2 -> 5,6; group 3 local 3,0,2 -> 1,2,0
    assert arrays["clusters.channels.npy"].tolist() == [5, 6, 1, 2, 0]
    assert arrays["clusters.peakToTrough.npy"] == pytest.approx([0.5, -0.3, 0.6, 0.7, 0.4])
    wf = arrays["clusters.waveforms.npy"]
    assert wf[:, 2, 0] == pytest.approx([-100e-6] * 5)  # the peak channel is column 0, in volts
    assert arrays["clusters.waveformsChannels.npy"][:, 0].tolist() == [5, 6, 1, 2, 0]
    metrics = arrays["clusters.metrics.csv"]
    assert metrics["cluster_id"].tolist() == [0, 1, 2, 3, 4]
    assert metrics["unit_id"].tolist() == ["3", "7", "3", "5", "9"]
    assert metrics["shank"].tolist() == [2, 2, 3, 3, 3]
    assert metrics["snr"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert "cluster_id.1" not in metrics


def test_normalise_rejects_mismatched_output():
    spk = converter_output()
    wrong_ids = spk.metrics.assign(cluster_id=["3", "7", "5", "3", "9"])
    with pytest.raises(ValueError, match="do not follow"):
        alf.normalise(alf.ConverterSpikes(**{**spk.__dict__, "metrics": wrong_ids}), GROUPS, TABLE)
    with pytest.raises(ValueError, match="clusters for 6 units"):
        alf.normalise(spk, [GROUPS[0], alf.GroupInfo(3, ("3", "5", "9", "10"), XY[3])], TABLE)
    far = alf.GroupInfo(3, ("3", "5", "9"), XY[3] + 1000.0)
    with pytest.raises(ValueError, match=r"not in channels\.localCoordinates"):
        alf.normalise(spk, [GROUPS[0], far], TABLE)


def test_normalise_notes_truncated_waveforms():
    spk = converter_output()
    narrow = alf.ConverterSpikes(**{**spk.__dict__, "waveforms_uv": spk.waveforms_uv[:, :, :2]})
    arrays, notes = alf.normalise(narrow, GROUPS, TABLE)
    assert arrays["clusters.waveforms.npy"].shape == (5, 6, 2)
    assert len(notes) == 1 and "3 cluster(s)" in notes[0]


def write_folder(path: Path, arrays: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    alf.write_alf(path, arrays)
    np.save(path / "channels.localCoordinates.npy", TABLE.local_coordinates_um)
    np.save(path / "channels.rawInd.npy", TABLE.raw_ind)
    np.save(path / "_iblqc_ephysTimeRmsAP.rms.npy", np.ones((3, 16), np.float32))
    np.save(path / "_iblqc_ephysTimeRmsAP.timestamps.npy", np.array([2.0, 6.0, 10.0]))
    return path


def test_check_folder_accepts_normalised_output(tmp_path):
    arrays, _ = alf.normalise(converter_output(), GROUPS, TABLE)
    path = write_folder(tmp_path / "probe", arrays)
    assert alf.check_folder(path) == []
    reread = alf.read_converter_spikes(path)
    assert reread is not None and reread.times_s.tolist() == sorted(reread.times_s.tolist())


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
    arrays, _ = alf.normalise(converter_output(), GROUPS, TABLE)
    path = write_folder(tmp_path / "probe", {**arrays, **change})
    problems = alf.check_folder(path)
    assert any(message in p for p in problems), problems


def test_check_folder_spikes_without_clusters(tmp_path):
    arrays, _ = alf.normalise(converter_output(), GROUPS, TABLE)
    path = write_folder(tmp_path / "probe", arrays)
    for p in path.glob("clusters.*"):
        p.unlink()
    assert "spikes.* and clusters.* must be both present or both absent" in alf.check_folder(path)


def test_check_folder_qc_columns_cover_raw_ind(tmp_path):
    arrays, _ = alf.normalise(converter_output(), GROUPS, TABLE)
    path = write_folder(tmp_path / "probe", arrays)
    np.save(path / "_iblqc_ephysTimeRmsAP.rms.npy", np.ones((3, 5), np.float32))
    assert any("columns <= max(rawInd) 15" in p for p in alf.check_folder(path))
