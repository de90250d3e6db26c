"""Ephys stage on the synthetic ground truth: spikes, ids, units, ALF loading, RMS/LFP, bad inputs.

The synthetic ephys (an NP1.0 ProbeA and a 4-shank NP2.0 ProbeB, in the newest AIND layout:
zarr analyzers, UnitRefine/Bombcell labels, curation.json) is built once per session and
extracted once with two worker processes; bad-input tests break a private copy and run serially.
Other layouts and the sorted-asset checks are in ``test_sorted_assets.py``.
"""

from __future__ import annotations

import shutil

import numpy as np
import one.alf.io as alfio
import pytest
import spikeinterface as si

from alignprep.inputs.manifest import read_manifest
from alignprep.stages import alf
from alignprep.stages.ephys import EphysSettings, plan_ephys
from alignprep.stages.shanks import x_groups
from alignprep.synthetic.ephys import band_rms_uv, raw_zarr_path

from .helpers import (
    PROBES,
    analyzer,
    assert_other_ok,
    cluster_of,
    folder,
    folder_bytes,
    load,
    run,
    sorted_dir,
    truth_units,
)


def test_every_probe_ok_once_per_folder(ephys_data, extracted):
    results, root = extracted
    assert {k: r.status for k, r in results.items()} == {"ProbeA": "ok", "ProbeB": "ok"}
    assert results["ProbeB"].job.lines == (3, 4, 5, 6)  # four manifest rows, one extraction
    assert all(r.warnings == [] for r in results.values())
    rec_dir = folder(root, ephys_data.truth, "ProbeA").parent
    assert sorted(p.name for p in rec_dir.iterdir()) == ["ProbeA", "ProbeB"]  # no temp leftovers


@pytest.mark.parametrize("probe", PROBES)
def test_spike_times_identical_to_truth(ephys_data, extracted, probe):
    d = load(folder(extracted[1], ephys_data.truth, probe))
    pt = ephys_data.truth["probes"][probe]
    fs = ephys_data.truth["sampling_frequency_hz"]
    units = list(truth_units(pt))
    assert len(d["clusters.metrics"]) == len(units)
    assert len(d["spikes.times"]) == sum(len(s) for _, _, s in units)
    for group, unit, samples in units:
        cid = cluster_of(d["clusters.metrics"], group, unit)
        assert np.array_equal(d["spikes.times"][d["spikes.clusters"] == cid], samples / fs)


@pytest.mark.parametrize("probe", PROBES)
def test_ids_consistent_across_spikes_clusters_metrics(ephys_data, extracted, probe):
    path = folder(extracted[1], ephys_data.truth, probe)
    d = load(path)
    n_clu = len(d["clusters.channels"])
    metrics = d["clusters.metrics"]
    assert np.array_equal(metrics["cluster_id"], np.arange(n_clu))
    assert len(d["clusters.peakToTrough"]) == len(d["clusters.waveforms"]) == n_clu
    assert np.array_equal(np.unique(d["spikes.clusters"]), np.arange(n_clu))
    assert len(np.load(path / "unit_shank_indices.npy")) == n_clu
    # metrics rows are the converter's rows re-ordered by global id, not per-shank restarts
    groups = {g["group"] for g in ephys_data.truth["probes"][probe]["groups"]}
    assert sorted(set(metrics["shank"])) == sorted(g or 0 for g in groups)


LABELS = ("default_qc", "unitrefine_label", "unitrefine_probability", "decoder_label",
          "decoder_probability", "bombcell_label")  # fmt: skip


@pytest.mark.parametrize("probe", PROBES)
def test_every_label_column_follows_curation(ephys_data, extracted, probe):
    metrics = load(folder(extracted[1], ephys_data.truth, probe))["clusters.metrics"]
    assert set(LABELS) <= set(metrics.columns)
    for g in ephys_data.truth["probes"][probe]["groups"]:
        assert set(g["labels"]) == set(LABELS)
        for unit in g["units"]:
            row = metrics.iloc[cluster_of(metrics, g["group"], unit)]
            for column in LABELS:
                assert row[column] == g["labels"][column][unit], (column, unit)


@pytest.mark.parametrize("probe", PROBES)
def test_ibl_label_by_ibls_rule_on_the_analyzer_metrics(ephys_data, extracted, probe):
    """label = mean(slidingRP <= 10 % contamination, noise_cutoff < 5, |amp median| > 50 uV)."""
    metrics = load(folder(extracted[1], ephys_data.truth, probe))["clusters.metrics"]
    for g in ephys_data.truth["probes"][probe]["groups"]:
        qm = analyzer(ephys_data, g["analyzer"]).get_extension("quality_metrics").get_data()
        for unit in g["units"]:
            m = qm.loc[unit]
            passed = [
                m["sliding_rp_violation"] <= 0.10,  # NaN compares False: fails, as in IBL
                m["noise_cutoff"] < 5,
                abs(m["amplitude_median"]) > 50,
            ]
            row = metrics.iloc[cluster_of(metrics, g["group"], unit)]
            assert row["label"] == pytest.approx(sum(passed) / 3)
    assert metrics["label"].nunique() > 1  # the rule separates units here


@pytest.mark.parametrize("probe", PROBES)
def test_units_volts_and_ms_and_channels(ephys_data, extracted, probe):
    d = load(folder(extracted[1], ephys_data.truth, probe))
    fs = ephys_data.truth["sampling_frequency_hz"]
    xy = d["channels.localCoordinates"]
    for g in ephys_data.truth["probes"][probe]["groups"]:
        an = analyzer(ephys_data, g["analyzer"])
        amps_uv = an.get_extension("spike_amplitudes").get_data()
        templates_uv = an.get_extension("templates").get_templates()
        vector = an.sorting.to_spike_vector()
        for k, unit in enumerate(an.unit_ids):
            cid = cluster_of(d["clusters.metrics"], g["group"], str(unit))
            mine = d["spikes.clusters"] == cid
            # ALF wants positive volts: the magnitude of SI's amplitude at the main channel
            si_amps = amps_uv[vector["unit_index"] == k]
            assert np.allclose(d["spikes.amps"][mine], np.abs(si_amps) * 1e-6)
            tpl = templates_uv[k]
            peak = int(np.argmax(np.ptp(tpl, axis=0)))
            ptt_ms = (np.argmax(tpl[:, peak]) - np.argmin(tpl[:, peak])) / fs * 1e3
            assert d["clusters.peakToTrough"][cid] == pytest.approx(ptt_ms)
            row = d["clusters.channels"][cid]
            assert np.allclose(xy[row], an.get_channel_locations()[peak])
            assert d["channels.shankInd"][row] == (g["group"] or 0)
            assert np.allclose(d["clusters.waveforms"][cid][:, 0], tpl[:, peak] * 1e-6, atol=1e-9)
            assert d["clusters.waveformsChannels"][cid][0] == row
    assert 1e-5 < np.median(d["spikes.amps"]) < 1e-3  # tens to hundreds of uV, in volts
    assert np.all(d["spikes.amps"] >= 0)  # 0 only where SI read exactly 0 (checked above)


@pytest.mark.parametrize("probe", PROBES)
def test_amplitudes_positive_for_positive_going_and_small_units(ephys_data, extracted, probe):
    """The synthetic templates of unit 1 are sign-flipped (positive-going) and of unit 2 scaled
    to about the noise: SI's amplitudes are then positive, or of both signs; the converter's
    negation made them negative spikes.amps."""
    d = load(folder(extracted[1], ephys_data.truth, probe))
    seen = set()
    for g in ephys_data.truth["probes"][probe]["groups"]:
        an = analyzer(ephys_data, g["analyzer"])
        amps_uv = an.get_extension("spike_amplitudes").get_data()
        vector = an.sorting.to_spike_vector()
        for k, unit in enumerate(an.unit_ids):
            scale = g["unit_scales"][str(unit)]
            si_amps = amps_uv[vector["unit_index"] == k]
            ours = d["spikes.amps"][d["spikes.clusters"] == cluster_of(
                d["clusters.metrics"], g["group"], str(unit))]  # fmt: skip
            if scale < 0 and np.all(si_amps > 0):
                seen.add("positive-going")
            if scale == 0.08 and np.any(si_amps > 0) and np.any(si_amps < 0):
                seen.add("both signs")
            assert np.all((ours > 0) | (si_amps == 0))
            assert np.allclose(ours, np.abs(si_amps) * 1e-6)
    assert seen == {"positive-going", "both signs"}


@pytest.mark.parametrize("probe", PROBES)
def test_spikes_sorted_and_shank_indices(ephys_data, extracted, probe):
    d = load(folder(extracted[1], ephys_data.truth, probe))
    assert np.all(np.diff(d["spikes.times"]) >= 0)
    gui_shank = x_groups(d["channels.localCoordinates"][:, 0])
    expected = gui_shank[d["clusters.channels"][d["spikes.clusters"]]]
    assert np.array_equal(d["spike_shank_indices"], expected)
    if probe == "ProbeB":  # shanks 250 um apart: GUI shank = analyzer group for every spike
        groups = d["clusters.metrics"]["shank"].to_numpy()[d["spikes.clusters"]]
        assert np.array_equal(d["spike_shank_indices"], groups)
        assert set(np.unique(groups)) == {0, 1, 2, 3}
    else:
        assert not d["spike_shank_indices"].any()


@pytest.mark.parametrize("probe", PROBES)
def test_alf_objects_load_with_consistent_dimensions(ephys_data, extracted, probe):
    path = folder(extracted[1], ephys_data.truth, probe)
    for obj in ("spikes", "clusters", "channels"):
        assert alfio.check_dimensions(alfio.load_object(path, obj)) == 0, obj
    qc = sorted({p.name.split(".")[0][len("_iblqc_") :] for p in path.glob("_iblqc_*")})
    assert {"ephysTimeRmsAP", "ephysTimeRmsLF", "ephysSpectralDensityLF"} <= set(qc)
    for obj in qc:
        assert alfio.check_dimensions(alfio.load_object(path, obj, namespace="iblqc")) == 0, obj
    n_ch = len(np.load(path / "channels.rawInd.npy"))
    for name in ("ephysTimeRmsAP.rms", "ephysTimeRmsLF.rms", "ephysSpectralDensityLF.power"):
        assert np.load(path / f"_iblqc_{name}.npy").shape[1] == n_ch
    assert alf.check_folder(path) == []
    gui_owned = ("channel_locations*.json", "prev_alignments*.json", "ccf_channel_locations*")
    assert not [p for pattern in gui_owned for p in path.glob(pattern)]


# (probe, signal, band, whether the noise term is > 2 % of the RMS by design)
SIGNAL_CASES = [
    ("ProbeA", 0, "ap", True),  # 1 kHz sine + 10 uV noise, AP stream, band > 300 Hz
    ("ProbeA", 1, "lf", True),  # 20 Hz sine + 20 uV noise, LFP stream at 2.5 kHz, 1-300 Hz
    ("ProbeB", 0, "ap", True),  # both sines + 10 uV noise on one wideband channel
    ("ProbeB", 0, "lf", False),  # at 30 kHz only 2 % of the white noise is in 1-300 Hz
]


@pytest.mark.parametrize(("probe", "index", "band", "noise_matters"), SIGNAL_CASES)
def test_rms_matches_analytic_value(ephys_data, extracted, probe, index, band, noise_matters):
    path = folder(extracted[1], ephys_data.truth, probe)
    sig = ephys_data.truth["probes"][probe]["signals"][index]
    xy = np.load(path / "channels.localCoordinates.npy")
    row = int(np.flatnonzero(np.all(np.abs(xy - sig["xy_um"]) < 0.5, axis=1))[0])
    fs = sig["sampling_frequency_hz"]
    band_hz = (300.0, fs / 2) if band == "ap" else (1.0, 300.0)
    expected_v = band_rms_uv(sig["sines"], sig["noise_uv"], fs, band_hz) * 1e-6
    rms = np.load(path / f"_iblqc_ephysTimeRms{band.upper()}.rms.npy")[:, row].astype(float)
    measured_v = np.sqrt(np.mean(rms**2))
    assert measured_v == pytest.approx(expected_v, rel=0.02)
    sines_only_v = band_rms_uv(sig["sines"], 0.0, fs, band_hz) * 1e-6
    assert (abs(measured_v / sines_only_v - 1) > 0.02) == noise_matters


@pytest.mark.parametrize(("probe", "index"), [("ProbeA", 1), ("ProbeB", 0)])
def test_lfp_spectrum_peaks_at_injected_frequency(ephys_data, extracted, probe, index):
    path = folder(extracted[1], ephys_data.truth, probe)
    sig = ephys_data.truth["probes"][probe]["signals"][index]
    xy = np.load(path / "channels.localCoordinates.npy")
    row = int(np.flatnonzero(np.all(np.abs(xy - sig["xy_um"]) < 0.5, axis=1))[0])
    power = np.load(path / "_iblqc_ephysSpectralDensityLF.power.npy")
    freqs = np.load(path / "_iblqc_ephysSpectralDensityLF.freqs.npy")
    lf_hz = [f for _, f in sig["sines"] if f <= 300]
    assert freqs[np.argmax(power[:, row])] == pytest.approx(lf_hz[0])
    other = (row + 1) % power.shape[1]  # a noise-only channel has no such peak
    assert power[np.searchsorted(freqs, lf_hz[0]), other] < 0.01 * power[:, row].max()


def test_plan_deduplicates_rows(ephys_data):
    jobs = plan_ephys(read_manifest(ephys_data.data_root / "manifest.csv"))
    assert [(j.collection, j.lines, j.ephys_shanks) for j in jobs] == [
        ("ProbeA", (2,), (None,)),
        ("ProbeB", (3, 4, 5, 6), (0, 1, 2, 3)),
    ]


# --- bad inputs: one probe broken, the other unaffected ------------------------------------


def test_missing_analyzer_writes_sorting_error(ephys_data, broken, tmp_path):
    truth = ephys_data.truth
    group = truth["probes"]["ProbeA"]["groups"][0]
    shutil.rmtree(sorted_dir(broken, truth) / "postprocessed" / group["analyzer"])
    shutil.rmtree(sorted_dir(broken, truth) / "curated" / group["curated"])
    results = run(broken, tmp_path / "results")
    res = results["ProbeA"]
    assert res.status == "no_spikes"
    assert "No postprocessed sorting output found for ProbeA" in res.reason
    path = folder(tmp_path / "results", truth, "ProbeA")
    assert (path / "sorting_error.txt").is_file()
    assert not list(path.glob("spikes.*")) and not list(path.glob("clusters.*"))
    assert (path / "channels.localCoordinates.npy").is_file()
    assert alf.check_folder(path) == []
    assert_other_ok(results, "ProbeA", tmp_path / "results", truth)


def test_missing_raw_stream_is_a_clear_error(ephys_data, broken, tmp_path):
    truth = ephys_data.truth
    stream = truth["probes"]["ProbeB"]["streams"]["ap"]
    shutil.rmtree(raw_zarr_path(broken / truth["recording_id"] / "ecephys", stream))
    results = run(broken, tmp_path / "results")
    res = results["ProbeB"]
    assert res.status == "failed"
    assert "ecephys_compressed" in res.reason and f"{stream!r}" in res.reason
    assert "found none" in res.reason
    assert not folder(tmp_path / "results", truth, "ProbeB").exists()
    assert_other_ok(results, "ProbeB", tmp_path / "results", truth)


def test_analyzer_without_required_extension(ephys_data, broken, tmp_path):
    truth = ephys_data.truth
    name = truth["probes"]["ProbeB"]["groups"][1]["analyzer"]
    shutil.rmtree(sorted_dir(broken, truth) / "postprocessed" / name / "extensions/templates")
    results = run(broken, tmp_path / "results")
    res = results["ProbeB"]
    assert res.status == "failed"
    assert name in res.reason and "['templates']" in res.reason
    assert "shank group 1" in res.reason and "clusters.waveforms" in res.reason  # what needs it
    assert not folder(tmp_path / "results", truth, "ProbeB").exists()
    assert_other_ok(results, "ProbeB", tmp_path / "results", truth)


def test_without_spike_locations_depths_come_from_the_peak_channel(
    ephys_data, extracted, broken, tmp_path
):
    """spikes.depths can be computed without spike_locations: each spike at its unit's peak
    channel depth (no unit_locations either). The run report says so."""
    truth = ephys_data.truth
    g = truth["probes"]["ProbeB"]["groups"][1]
    shutil.rmtree(sorted_dir(broken, truth) / "postprocessed" / g["analyzer"] / "extensions"
                  / "spike_locations")  # fmt: skip
    results = run(broken, tmp_path / "results")
    res = results["ProbeB"]
    assert res.status == "ok"
    assert "'spike_locations'" in res.reason and "peak channel" in res.reason
    assert "shank group 1" in res.reason
    d = load(folder(tmp_path / "results", truth, "ProbeB"))
    an = analyzer(ephys_data, g["analyzer"])
    templates = an.get_extension("templates").get_templates()
    ys = an.get_channel_locations()[:, 1]
    for k, unit in enumerate(an.unit_ids):
        cid = cluster_of(d["clusters.metrics"], 1, str(unit))
        peak_y = ys[np.argmax(np.ptp(templates[k], axis=0))]
        assert np.all(d["spikes.depths"][d["spikes.clusters"] == cid] == peak_y)
    reference = load(folder(extracted[1], truth, "ProbeB"))
    other = d["clusters.metrics"]["shank"].to_numpy()[d["spikes.clusters"]] != 1
    assert np.array_equal(d["spikes.depths"][other], reference["spikes.depths"][other])


def test_without_quality_metrics_the_table_keeps_ids_and_labels(ephys_data, broken, tmp_path):
    truth = ephys_data.truth
    g = truth["probes"]["ProbeA"]["groups"][0]
    shutil.rmtree(sorted_dir(broken, truth) / "postprocessed" / g["analyzer"] / "extensions"
                  / "quality_metrics")  # fmt: skip
    res = run(broken, tmp_path / "results")["ProbeA"]
    assert res.status == "ok"
    assert "'quality_metrics'" in res.reason and "no IBL label column" in res.reason
    metrics = load(folder(tmp_path / "results", truth, "ProbeA"))["clusters.metrics"]
    assert list(metrics.columns) == ["cluster_id", "unit_id", "shank", *LABELS]
    assert metrics["unit_id"].astype(str).tolist() == list(g["units"])
    assert metrics["default_qc"].tolist() == [g["labels"]["default_qc"][u] for u in g["units"]]


def test_placeholder_of_a_failed_sort_skips_the_probe(ephys_data, extracted, broken, tmp_path):
    from alignprep.synthetic.ephys_sorted import write_placeholder

    truth = ephys_data.truth
    post = sorted_dir(broken, truth) / "postprocessed"
    name = truth["probes"]["ProbeA"]["groups"][0]["analyzer"]
    shutil.rmtree(post / name)
    write_placeholder(post / name)  # what aind-ephys-postprocessing leaves for a failed sort
    results = run(broken, tmp_path / "results")
    res = results["ProbeA"]
    assert res.status == "skipped"
    assert str(post / name) in res.reason and "placeholder.npy" in res.reason
    assert "expected postprocessed/<rec>.zarr (zarr) or postprocessed/<rec>/" in res.reason
    assert not folder(tmp_path / "results", truth, "ProbeA").exists()
    good = folder(tmp_path / "results", truth, "ProbeB")
    assert folder_bytes(good) == folder_bytes(folder(extracted[1], truth, "ProbeB"))


def test_removed_units_dropped_only_on_request(ephys_data, extracted, broken, tmp_path):
    """curation.json's removed units are kept by default, dropped with drop_removed_units;
    its proposed merges are never applied (each unit keeps its own spikes)."""
    truth = ephys_data.truth
    fs = truth["sampling_frequency_hz"]
    kept = load(folder(extracted[1], truth, "ProbeB"))
    settings = EphysSettings(drop_removed_units=True)
    res = run(ephys_data.data_root, tmp_path / "results", settings=settings)["ProbeB"]
    assert res.status == "ok" and "dropped the" in res.reason
    dropped = load(folder(tmp_path / "results", truth, "ProbeB"))
    removed = {(g["group"], u) for g in truth["probes"]["ProbeB"]["groups"] for u in g["removed"]}
    assert removed  # the synthetic curation removes some units
    all_units = list(truth_units(truth["probes"]["ProbeB"]))
    assert len(kept["clusters.metrics"]) == len(all_units)
    assert len(dropped["clusters.metrics"]) == len(all_units) - len(removed)
    assert np.array_equal(
        dropped["clusters.metrics"]["cluster_id"], np.arange(len(dropped["clusters.metrics"]))
    )
    for group, unit, samples in all_units:
        in_table = dropped["clusters.metrics"]
        hit = in_table[(in_table["shank"] == group) & (in_table["unit_id"].astype(str) == unit)]
        if (group, unit) in removed:
            assert hit.empty
        else:
            cid = int(hit["cluster_id"].iloc[0])
            assert np.array_equal(dropped["spikes.times"][dropped["spikes.clusters"] == cid],
                                  samples / fs)  # fmt: skip
    merges = [m for g in truth["probes"]["ProbeB"]["groups"] for m in g["merges"]]
    assert merges  # proposed, never applied: the default output has every unit separately
    assert len(np.unique(kept["spikes.clusters"])) == len(all_units)


def test_same_bytes_with_one_and_two_workers(ephys_data, extracted, tmp_path):
    """Deterministic outputs: metrics (snr included), spikes and QC do not depend on n_jobs."""
    results = run(ephys_data.data_root, tmp_path / "results", n_jobs=1)
    assert {r.status for r in results.values()} == {"ok"}
    for probe in PROBES:
        one = folder_bytes(folder(tmp_path / "results", ephys_data.truth, probe))
        two = folder_bytes(folder(extracted[1], ephys_data.truth, probe))
        assert "clusters.metrics.csv" in one and one == two


def test_recording_shorter_than_one_window(ephys_data, broken, tmp_path):
    truth = ephys_data.truth
    session = broken / truth["recording_id"] / "ecephys"
    zarr = raw_zarr_path(session, truth["probes"]["ProbeA"]["streams"]["lf"])
    rec = si.read_zarr(zarr)
    short = rec.frame_slice(0, int(2.5 * rec.get_sampling_frequency()))
    clipped = zarr.with_name("short.zarr")
    short.save(format="zarr", folder=clipped, progress_bar=False)
    shutil.rmtree(zarr)
    clipped.rename(zarr)
    results = run(broken, tmp_path / "results")
    res = results["ProbeA"]
    assert res.status == "failed"
    assert "2.500 s long, shorter than one RMS/LFP window (4.0 s)" in res.reason
    assert zarr.name in res.reason
    assert_other_ok(results, "ProbeA", tmp_path / "results", truth)


def test_rerun_replaces_previous_outputs(ephys_data, broken, tmp_path, capsys, caplog):
    truth = ephys_data.truth
    results_root = tmp_path / "results"
    caplog.set_level("DEBUG", logger="alignprep")
    assert run(broken, results_root)["ProbeA"].status == "ok"
    assert capsys.readouterr().out == ""  # the converter's prints went to the log
    assert any(m.startswith("converter: ecephys folder:") for m in caplog.messages)
    path = folder(results_root, truth, "ProbeA")
    (path / "xyz_picks.json").write_text("{}")  # written by the probes stage: kept
    name = truth["probes"]["ProbeA"]["groups"][0]["analyzer"]
    shutil.rmtree(sorted_dir(broken, truth) / "postprocessed" / name)
    assert run(broken, results_root)["ProbeA"].status == "no_spikes"
    assert not list(path.glob("spikes.*")) and (path / "xyz_picks.json").is_file()


def test_lone_shank_analyzer(ephys_data, broken, tmp_path):
    """Only ``_group2`` sorted: the converter alone finds no analyzer (it expects no suffix)."""
    truth = ephys_data.truth
    groups = truth["probes"]["ProbeB"]["groups"]
    for g in groups:
        if g["group"] != 2:
            shutil.rmtree(sorted_dir(broken, truth) / "postprocessed" / g["analyzer"])
    res = run(broken, tmp_path / "results")["ProbeB"]
    assert res.status == "ok"
    assert len(res.warnings) == 3
    for k, warning in zip((0, 1, 3), res.warnings, strict=True):
        assert f"manifest ephys_shank {k} has no _group{k} analyzer" in warning
    d = load(folder(tmp_path / "results", truth, "ProbeB"))
    assert set(d["clusters.metrics"]["shank"]) == {2}
    assert np.all(d["spike_shank_indices"] == 2)  # GUI shank rank among all 4 recorded shanks
    fs = truth["sampling_frequency_hz"]
    for unit, samples in groups[2]["units"].items():
        cid = cluster_of(d["clusters.metrics"], 2, unit)
        assert np.array_equal(
            d["spikes.times"][d["spikes.clusters"] == cid], np.array(samples) / fs
        )
