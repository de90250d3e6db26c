"""Sorted / raw ecephys discovery on hand-made folder layouts (no real data needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from alignprep.errors import InputError
from alignprep.inputs import sorted as srt

NODE = "Record Node 104"
RID = "ecephys_000123_2025-01-15_10-00-00"
SORTED = f"{RID}_sorted_2025-01-16_08-00-00"
NP1_AP = f"{NODE}#Neuropix-PXI-100.ProbeA-AP"
NP1_LF = f"{NODE}#Neuropix-PXI-100.ProbeA-LFP"
NP2 = f"{NODE}#Neuropix-PXI-100.ProbeB"


def make_raw(session: Path, streams: list[str], zarrs: list[str], nested: bool = True) -> Path:
    """A raw session with a structure.oebin listing ``streams`` and empty compressed zarrs."""
    base = session / "ecephys" if nested else session
    rec = base / "ecephys_clipped" / NODE / "experiment1" / "recording1"
    entries = []
    for stream in streams:
        folder = stream.split("#", 1)[1]
        (rec / "continuous" / folder).mkdir(parents=True)
        (rec / "continuous" / folder / "continuous.dat").write_bytes(b"")
        np.save(rec / "continuous" / folder / "sample_numbers.npy", np.zeros(0, np.int64))
        channels = [{"channel_name": "CH1", "bit_volts": 0.195, "units": "uV"}]
        entries.append(
            {"folder_name": folder + "/", "sample_rate": 30000.0, "num_channels": 1,
             "channels": channels}
        )  # fmt: skip
    (rec / "structure.oebin").write_text(json.dumps({"continuous": entries, "events": []}))
    for name in zarrs:
        (base / "ecephys_compressed" / name).mkdir(parents=True)
    return session


def make_sorted(root: Path, analyzers: list[str], curated: list[str] = ()) -> Path:
    """Analyzer folders with every extension the stage reads; ``curated/<name>`` folders."""
    for name in analyzers:
        for ext in srt.EXTENSION_USES:
            (root / "postprocessed" / name / "extensions" / ext).mkdir(parents=True)
    for name in curated:
        (root / "curated" / name).mkdir(parents=True)
    return root


@pytest.mark.parametrize(
    ("stream", "token"),
    [(NP1_AP, "ProbeA"), (NP1_LF, "ProbeA"), (NP2, "ProbeB"), (f"{NODE}#X.45883-1", "45883-1")],
)
def test_probe_token(stream, token):
    assert srt.probe_token(stream) == token


def test_find_analyzers_groups_experiments_curated(tmp_path):
    names = [
        f"experiment10_{NP2}_recording1_group0.zarr",
        f"experiment2_{NP2}_recording1_group1.zarr",
        f"experiment2_{NP2}_recording1_group0.zarr",
        f"experiment2_{NP2}_recording1_group3.zarr",
        f"experiment2_{NP1_AP}_recording1.zarr",  # another probe
        f"experiment2_{NP2}2_recording1_group0.zarr",  # another probe with a prefix-equal name
    ]
    # the AIND collector names the curated sorting without .zarr; a .zarr name is accepted too
    curated = [names[2].removesuffix(".zarr"), names[1]]
    root = make_sorted(tmp_path / SORTED, names, curated=curated)
    notes: list[str] = []
    refs = srt.find_analyzers(root, NP2, notes)
    # experiment2 before experiment10 (numeric, not text order), groups in order, gap kept
    assert [r.path.name for r in refs] == [names[2], names[1], names[3]]
    assert [r.group for r in refs] == [0, 1, 3]
    assert [r.experiment for r in refs] == [2, 2, 2]
    assert refs[0].curated == root / "curated" / curated[0]
    assert refs[1].curated == root / "curated" / curated[1] and refs[2].curated is None
    assert refs[0].format == "zarr" and not any(r.placeholder for r in refs)
    assert len(notes) == 1 and "(2, 1), (10, 1)" in notes[0]


def test_find_analyzers_binary_folder_without_recording_number(tmp_path):
    root = make_sorted(tmp_path / SORTED, [f"experiment1_{NP1_AP}"])
    (ref,) = srt.find_analyzers(root, NP1_AP, [])
    assert ref.format == "binary_folder" and ref.group is None and ref.recording is None
    assert srt.find_analyzers(root, NP2, []) == ()


def test_missing_extensions(tmp_path):
    root = make_sorted(tmp_path / SORTED, ["a.zarr"])
    (root / "postprocessed/a.zarr/extensions/templates").rmdir()
    (root / "postprocessed/a.zarr/extensions/spike_locations").rmdir()
    assert srt.missing_extensions(root / "postprocessed/a.zarr") == ["templates"]
    assert srt.missing_extensions(root / "postprocessed/a.zarr", srt.OPTIONAL_EXTENSIONS) == [
        "spike_locations"
    ]


def test_two_curated_sortings_for_one_analyzer_are_refused(tmp_path):
    name = f"experiment1_{NP2}_recording1"
    root = make_sorted(tmp_path / SORTED, [f"{name}.zarr"], curated=[name, f"{name}.zarr"])
    with pytest.raises(InputError, match="two curated sortings for one analyzer") as err:
        srt.find_analyzers(root, NP2, [])
    assert err.value.file == str(root / "curated")


def test_raw_session_by_name_nested_or_flat(tmp_path):
    make_raw(tmp_path / RID, [NP2], [])
    session = srt.find_raw_session(tmp_path, RID, tmp_path / SORTED)
    assert session.clipped == tmp_path / RID / "ecephys" / "ecephys_clipped"
    make_raw(tmp_path / "flat", [NP2], [], nested=False)
    assert (
        srt.raw_session_dirs(tmp_path / "flat").compressed == tmp_path / "flat/ecephys_compressed"
    )


def test_raw_session_by_data_description(tmp_path):
    make_raw(tmp_path / "raw_asset_mount", [NP2], [])
    (tmp_path / "raw_asset_mount" / "data_description.json").write_text(json.dumps({"name": RID}))
    make_raw(tmp_path / "unrelated", [NP2], [])
    (tmp_path / SORTED).mkdir()
    desc = {"source_data": [RID], "input_data_name": RID}
    (tmp_path / SORTED / "data_description.json").write_text(json.dumps(desc))
    session = srt.find_raw_session(tmp_path, RID, tmp_path / SORTED)
    assert session.path == tmp_path / "raw_asset_mount"


def test_raw_session_missing_lists_candidates(tmp_path):
    make_raw(tmp_path / "unrelated", [NP2], [])
    (tmp_path / SORTED).mkdir()
    with pytest.raises(InputError, match=r"no raw ecephys session.*\['unrelated'\]"):
        srt.find_raw_session(tmp_path, RID, tmp_path / SORTED)


def test_np1_streams_with_lfp_partner(tmp_path):
    raw = make_raw(tmp_path / RID, [NP1_AP, NP1_LF], [f"experiment1_{NP1_AP}.zarr",
                                                     f"experiment1_{NP1_LF}.zarr"])  # fmt: skip
    notes: list[str] = []
    streams = srt.probe_streams(srt.raw_session_dirs(raw), "ProbeA", notes)
    assert (streams.stream, streams.lfp_stream) == (NP1_AP, NP1_LF)
    assert streams.is_np1 and [p.name for p in streams.lfp_zarrs] == [f"experiment1_{NP1_LF}.zarr"]
    assert notes == []


def test_np1_missing_lfp_zarr_warns(tmp_path):
    raw = make_raw(tmp_path / RID, [NP1_AP, NP1_LF], [f"experiment1_{NP1_AP}.zarr"])
    notes: list[str] = []
    streams = srt.probe_streams(srt.raw_session_dirs(raw), "ProbeA", notes)
    assert streams.lfp_zarrs == ()
    assert len(notes) == 1 and "LFP zarr(s)" in notes[0] and "from the AP stream" in notes[0]


def test_np2_single_wideband_stream(tmp_path):
    raw = make_raw(tmp_path / RID, [NP1_AP, NP2], [f"experiment1_{NP2}.zarr"])
    streams = srt.probe_streams(srt.raw_session_dirs(raw), "ProbeB", [])
    assert (streams.stream, streams.lfp_stream, streams.is_np1) == (NP2, None, False)


def test_unknown_collection_and_missing_zarr_are_errors(tmp_path):
    raw = srt.raw_session_dirs(make_raw(tmp_path / RID, [NP2], []))
    with pytest.raises(InputError, match=r"no Neuropixels AP/wideband stream.*'ProbeC'"):
        srt.probe_streams(raw, "ProbeC", [])
    with pytest.raises(InputError, match=r"expected 1 compressed zarr.*found none"):
        srt.probe_streams(raw, "ProbeB", [])


def test_discover_probe_checks_extensions_and_shanks(tmp_path):
    make_raw(tmp_path / RID, [NP2], [f"experiment1_{NP2}.zarr"])
    names = [f"experiment1_{NP2}_recording1_group{k}.zarr" for k in (0, 2)]
    make_sorted(tmp_path / SORTED, names)
    probe = srt.discover_probe(tmp_path, RID, SORTED, "ProbeB", ephys_shanks=(0, 1, 2))
    assert [r.group for r in probe.analyzers] == [0, 2]
    assert {r.probe for r in probe.analyzers} == {f"{RID}/ProbeB"}
    assert len(probe.warnings) == 1 and "ephys_shank 1 has no _group1" in probe.warnings[0]
    # an optional extension missing: a note naming it and what it feeds
    (tmp_path / SORTED / "postprocessed" / names[1] / "extensions/quality_metrics").rmdir()
    notes = srt.discover_probe(tmp_path, RID, SORTED, "ProbeB").warnings
    assert len(notes) == 1 and "shank group 2" in notes[0] and "'quality_metrics'" in notes[0]
    assert "clusters.metrics.csv" in notes[0]
    # a required one missing: refused, naming the probe, the group, the file and what it feeds
    (tmp_path / SORTED / "postprocessed" / names[1] / "extensions/templates").rmdir()
    with pytest.raises(InputError, match=r"lacks required extension\(s\) \['templates'\]") as err:
        srt.discover_probe(tmp_path, RID, SORTED, "ProbeB")
    assert err.value.file == str(tmp_path / SORTED / "postprocessed" / names[1])
    assert f"{RID}/ProbeB, shank group 2" in str(err.value)
    assert "clusters.waveforms" in str(err.value)


@pytest.mark.parametrize("name", [f"experiment1_{NP1_AP}_recording1.zarr",
                                  f"experiment1_{NP1_AP}_recording1"])  # fmt: skip
def test_placeholder_of_a_failed_sort_skips_the_probe(tmp_path, name):
    """postprocessed/<rec>[.zarr]/placeholder.npy, as aind-ephys-postprocessing writes it."""
    from alignprep.synthetic.ephys_sorted import write_placeholder

    make_raw(tmp_path / RID, [NP1_AP], [f"experiment1_{NP1_AP}.zarr"])
    write_placeholder(tmp_path / SORTED / "postprocessed" / name)
    (ref,) = srt.find_analyzers(tmp_path / SORTED, NP1_AP, [])
    assert ref.placeholder
    with pytest.raises(srt.FailedSortError) as err:
        srt.discover_probe(tmp_path, RID, SORTED, "ProbeA")
    assert err.value.file == str(tmp_path / SORTED / "postprocessed" / name)
    message = str(err.value)
    assert "spike sorting failed for ProbeA" in message and "placeholder.npy" in message
    assert "expected postprocessed/<rec>.zarr (zarr) or postprocessed/<rec>/" in message
    assert isinstance(err.value, InputError)  # validation reports it as an error


def test_placeholder_of_one_shank_skips_the_whole_probe(tmp_path):
    from alignprep.synthetic.ephys_sorted import write_placeholder

    make_raw(tmp_path / RID, [NP2], [f"experiment1_{NP2}.zarr"])
    names = [f"experiment1_{NP2}_recording1_group{k}.zarr" for k in range(3)]
    make_sorted(tmp_path / SORTED, [names[0], names[2]])
    write_placeholder(tmp_path / SORTED / "postprocessed" / names[1])
    with pytest.raises(srt.FailedSortError, match=r"ProbeB \(.*shank group 1\)") as err:
        srt.discover_probe(tmp_path, RID, SORTED, "ProbeB")
    assert err.value.file == str(tmp_path / SORTED / "postprocessed" / names[1])


def test_discover_probe_missing_sorted_asset(tmp_path):
    with pytest.raises(InputError, match="sorted asset folder not found") as err:
        srt.discover_probe(tmp_path, RID, SORTED, "ProbeB")
    assert err.value.file == str(tmp_path / SORTED)


def test_discover_probe_without_analyzers_is_not_an_error(tmp_path):
    make_raw(tmp_path / RID, [NP2], [f"experiment1_{NP2}.zarr"])
    (tmp_path / SORTED / "postprocessed").mkdir(parents=True)
    assert srt.discover_probe(tmp_path, RID, SORTED, "ProbeB").analyzers == ()
