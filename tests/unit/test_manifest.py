"""Manifest CSV: text cells, aliases, row problems, uniqueness keys, per-brain values, writing."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from alignprep.errors import InputError
from alignprep.inputs.manifest import (
    Manifest,
    ManifestRow,
    derive_recording_id,
    read_manifest,
    write_manifests,
)

HEADER = "mouseid,sorted_recording,probe_file,histology_track_id,ephys_collection"
REC = "ecephys_123_2024-01-01_10-00-00"
SORTED = f"{REC}_sorted_2024-01-02_11-00-00"
REC2 = "ecephys_123_2024-02-01_10-00-00"
SORTED2 = f"{REC2}_sorted_2024-02-02_11-00-00"


def _csv(tmp_path: Path, *lines: str, name: str = "manifest.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _lines(manifest: Manifest) -> list[int]:
    return [row.line for row in manifest.rows]


def _problems(manifest: Manifest) -> dict[int, str]:
    return {p.line: p.message for p in manifest.problems}


def test_full_row_and_leading_zeros(tmp_path):
    path = _csv(
        tmp_path,
        HEADER + ",histology_shank,ephys_shank,surface_finding,registration_asset",
        "000123,ecephys_000123_d_t_sorted_d2_t2,pf,track1,ProbeA,01,2,surf,reg",
    )
    m = read_manifest(path)
    assert m.mouse_id == "000123"
    assert m.problems == () and m.warnings == ()
    assert m.registration_asset == "reg" and m.template_to_ccf_asset is None
    assert m.rows == (
        ManifestRow(
            line=2,
            mouseid="000123",
            sorted_recording="ecephys_000123_d_t_sorted_d2_t2",
            recording_id="ecephys_000123_d_t",
            probe_file="pf",
            histology_track_id="track1",
            ephys_collection="ProbeA",
            annotation_format="neuroglancer",
            logical_probe="ProbeA",
            histology_shank=1,
            ephys_shank=2,
            surface_finding="surf",
            registration_asset="reg",
            template_to_ccf_asset=None,
        ),
    )


def test_cells_are_stripped_and_bom_handled(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes(
        (
            "\ufeff" + HEADER + ",histology_shank\n 123 , " + SORTED + " ,pf, t1 ,ProbeA, 0 \n"
        ).encode()
    )
    (row,) = read_manifest(path).rows
    assert (row.mouseid, row.sorted_recording, row.histology_track_id) == ("123", SORTED, "t1")
    assert (row.histology_shank, row.ephys_shank) == (0, 0)


@pytest.mark.parametrize(
    ("extra_header", "extra_cells", "expected"),
    [
        # (histology_track_id, ephys_collection, histology_shank, ephys_shank)
        ("probe_id,ephys_collection", "t9,ProbeA", ("t9", "ProbeA", None, None)),
        ("histology_track_id,probe_name", "t1,45883-1", ("t1", "45883-1", None, None)),
        ("probe_id,probe_name,probe_shank", "t1,ProbeB,3", ("t1", "ProbeB", 3, 3)),
        ("probe_id,probe_name,histology_shank", "t1,ProbeB,2", ("t1", "ProbeB", 2, 2)),
        ("probe_id,probe_name,histology_shank,ephys_shank", "t1,P,2,0", ("t1", "P", 2, 0)),
        ("probe_id,probe_name,probe_shank,histology_shank", "t1,P,1,2", ("t1", "P", 2, 1)),
    ],
)
def test_aliases(tmp_path, extra_header, extra_cells, expected):
    path = _csv(
        tmp_path,
        f"mouseid,sorted_recording,probe_file,{extra_header}",
        f"123,{SORTED},pf,{extra_cells}",
    )
    m = read_manifest(path)
    assert m.problems == ()
    (row,) = m.rows
    got = (row.histology_track_id, row.ephys_collection, row.histology_shank, row.ephys_shank)
    assert got == expected


def test_canonical_column_wins_over_alias_when_non_blank(tmp_path):
    path = _csv(
        tmp_path,
        HEADER + ",probe_id,probe_name,histology_shank,probe_shank",
        f"123,{SORTED},pf,canon,ProbeA,alias,ProbeZ,1,0",
        f"123,{SORTED},pf,,,alias2,ProbeB,,2",
    )
    m = read_manifest(path)
    assert m.problems == ()
    got = [
        (r.histology_track_id, r.ephys_collection, r.histology_shank, r.ephys_shank) for r in m.rows
    ]
    # ephys_shank falls back to probe_shank before histology_shank
    assert got == [("canon", "ProbeA", 1, 0), ("alias2", "ProbeB", 2, 2)]
    assert m.warnings == (
        f"{path}: canonical column wins over its alias: "
        "line 2: histology_track_id='canon' overrides probe_id='alias'; "
        "line 2: ephys_collection='ProbeA' overrides probe_name='ProbeZ'; "
        "line 2: histology_shank='1' overrides probe_shank='0'",
    )


UNSUPPORTED = (
    "annotation_format 'csv' is not supported; expected one of neuroglancer, brainglobe, "
    "ap_histology, sharptrack, herbs, ccf_csv (json = neuroglancer)"
)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("", "neuroglancer"),
        ("json", "neuroglancer"),
        ("JSON", "neuroglancer"),
        (" Neuroglancer ", "neuroglancer"),
        ("AP_histology", "ap_histology"),
        ("brainglobe", "brainglobe"),
        ("sharptrack", "sharptrack"),
        ("herbs", "herbs"),
        ("ccf_csv", "ccf_csv"),
        ("csv", UNSUPPORTED),
    ],
)
def test_annotation_format(tmp_path, cell, problem):
    path = _csv(tmp_path, HEADER + ",annotation_format", f"123,{SORTED},pf,t1,ProbeA,{cell}")
    m = read_manifest(path)
    if problem != UNSUPPORTED:
        assert _problems(m) == {}
        assert [r.annotation_format for r in m.rows] == [problem]
        assert m.rows[0].light_sheet == (problem == "neuroglancer")
    else:
        assert _problems(m) == {2: problem}
        assert m.rows == ()


@pytest.mark.parametrize(
    ("cell", "value"),
    [("0", 0), ("1.0", 1), ("3.00", 3), ("+2", 2), ("007", 7), ("", None)],
)
def test_lenient_integers(tmp_path, cell, value):
    path = _csv(tmp_path, HEADER + ",histology_shank", f"123,{SORTED},pf,t1,ProbeA,{cell}")
    (row,) = read_manifest(path).rows
    assert (row.histology_shank, row.ephys_shank) == (value, value)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("1.5", "ephys_shank: '1.5' is not an integer"),
        ("abc", "ephys_shank: 'abc' is not an integer"),
        ("nan", "ephys_shank: 'nan' is not an integer"),
        ("-1", "ephys_shank: '-1' is negative (must be >= 0)"),
    ],
)
def test_bad_integers_are_row_problems(tmp_path, cell, problem):
    path = _csv(
        tmp_path,
        HEADER + ",ephys_shank",
        f"123,{SORTED},pf,t1,ProbeA,{cell}",
        f"123,{SORTED},pf,t2,ProbeB,1",
    )
    m = read_manifest(path)
    assert _problems(m) == {2: problem}
    assert _lines(m) == [3]


@pytest.mark.parametrize(
    ("sorted_recording", "recording_id"),
    [
        (
            "ecephys_123_2024-01-01_10-00-00_sorted_2024-01-02_11-00-00",
            "ecephys_123_2024-01-01_10-00-00",
        ),
        ("a_sorted_b_sorted", "a_sorted_b"),
        ("x_sortedness_y", "x_sortedness_y"),
        ("ecephys_1_x_sorted", "ecephys_1_x"),
        ("ecephys_1_sorted_x_sortedness", "ecephys_1"),
        ("ecephys_1_x", "ecephys_1_x"),
    ],
)
def test_derive_recording_id(sorted_recording, recording_id):
    assert derive_recording_id(sorted_recording) == recording_id


@pytest.mark.parametrize("sorted_recording", ["ecephys123_sorted_2024", "ecephys_123_sorted_x"])
def test_recording_id_needs_two_underscores(tmp_path, sorted_recording):
    rid = derive_recording_id(sorted_recording)
    path = _csv(
        tmp_path, HEADER, f"123,{sorted_recording},pf,t1,ProbeA", f"123,{SORTED},pf,t2,ProbeA"
    )
    m = read_manifest(path)
    assert _problems(m) == {
        2: f"recording_id {rid!r} (from sorted_recording {sorted_recording!r}) needs at least "
        "2 '_' (expected like ecephys_<mouse>_<date>_<time>)"
    }
    assert _lines(m) == [3]


def test_recording_subject_differs_from_mouseid_is_a_row_error(tmp_path):
    path = _csv(
        tmp_path,
        HEADER,
        f"456,{SORTED},pf,t1,ProbeA",
        f"123,{SORTED},pf,t2,ProbeB",
        "456,ecephys_456_d_t_sorted_x,pf,t3,ProbeA",
    )
    m = read_manifest(path)
    assert _lines(m) == [4]
    problem = _problems(m)[2]
    assert f"sorted_recording {SORTED!r} names subject '123', not mouseid '456'" in problem


def test_mouse_id_without_leading_zeros_is_a_row_error(tmp_path):
    path = _csv(tmp_path, HEADER, "123,ecephys_000123_d_t_sorted_x,pf,t1,ProbeA")
    m = read_manifest(path)
    assert m.rows == ()
    assert "names subject '000123', not mouseid '123'" in _problems(m)[2]


NAME_CELLS = ("mouseid", "sorted_recording", "probe_file", "histology_track_id", "ephys_collection")
HOSTILE = {
    "../x": "contains '..'",
    "..": "is a relative path component",
    "a..b": "contains '..'",
    "x/y": "contains a path separator",
    "/etc": "contains a path separator",
    "x\\y": "contains a path separator",
    "C:x": "starts with a drive letter",
    "x\x00y": "contains control character(s) U+0000",
    "x\ty": "contains control character(s) U+0009",
    "x\x1by": "contains control character(s) U+001B",
}


@pytest.mark.parametrize("column", NAME_CELLS)
@pytest.mark.parametrize("value", sorted(HOSTILE))
def test_name_cells_refuse_paths(tmp_path, column, value):
    """A cell that names a folder or file is refused for its row when it is not a plain name."""
    good = {
        "mouseid": "123",
        "sorted_recording": SORTED,
        "probe_file": "pf",
        "histology_track_id": "t1",
        "ephys_collection": "ProbeA",
    }
    bad = {**good, "histology_track_id": "t2", "ephys_collection": "ProbeB", column: value}
    if column == "mouseid":
        bad["sorted_recording"] = f"ecephys_{value}_d_t_sorted_x"
    path = tmp_path / "manifest.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(NAME_CELLS)
        writer.writerow([good[c] for c in NAME_CELLS])
        writer.writerow([bad[c] for c in NAME_CELLS])
    m = read_manifest(path)
    assert _lines(m) == [2]  # the good row survives
    problem = _problems(m)[3]
    assert f"{column} {bad[column]!r} {HOSTILE[value]}" in problem
    assert "expected a plain name" in problem


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (  # same track + histology shank in two recordings
            [
                f"123,{SORTED},pf,t1,ProbeA,0,0",
                f"123,{SORTED},pf,t2,ProbeA,1,1",
                f"123,{SORTED2},pf,t1,ProbeB,0,0",
                f"123,{SORTED2},pf2,t1,ProbeC,0,5",
            ],
            "duplicate key (mouseid='123', histology_track_id='t1', histology_shank=0) "
            "on lines 2, 4, 5",
        ),
        (  # same recording + collection + histology shank, distinct ephys shanks
            [
                f"123,{SORTED},pf,t1,ProbeA,2,0",
                f"123,{SORTED},pf,t2,ProbeA,3,1",
                f"123,{SORTED},pf,t3,ProbeA,2,2",
                f"123,{SORTED},pf,t4,ProbeA,2,3",
            ],
            f"duplicate key (recording_id={REC!r}, ephys_collection='ProbeA', histology_shank=2) "
            "on lines 2, 4, 5",
        ),
        (  # same recording + collection + ephys shank, distinct histology shanks
            [
                f"123,{SORTED},pf,t1,ProbeA,0,1",
                f"123,{SORTED},pf,t2,ProbeA,1,0",
                f"123,{SORTED},pf,t3,ProbeA,2,1",
                f"123,{SORTED},pf,t4,ProbeA,3,1",
            ],
            f"duplicate key (recording_id={REC!r}, ephys_collection='ProbeA', ephys_shank=1) "
            "on lines 2, 4, 5",
        ),
    ],
)
def test_uniqueness_keys_reject_every_row_sharing_the_key(tmp_path, rows, message):
    path = _csv(tmp_path, HEADER + ",histology_shank,ephys_shank", *rows)
    m = read_manifest(path)
    assert _problems(m) == {2: message, 4: message, 5: message}
    assert _lines(m) == [3]


def test_blank_shanks_count_as_minus_one(tmp_path):
    path = _csv(
        tmp_path,
        HEADER + ",histology_shank",
        f"123,{SORTED},pf,t1,ProbeA,",
        f"123,{SORTED},pf,t2,ProbeA,",
        f"123,{SORTED},pf,t3,ProbeA,0",
    )
    m = read_manifest(path)
    key = f"(recording_id={REC!r}, ephys_collection='ProbeA'"
    both = (
        f"duplicate key {key}, histology_shank=-1 (blank)) on lines 2, 3; "
        f"duplicate key {key}, ephys_shank=-1 (blank)) on lines 2, 3"
    )
    assert _problems(m) == {2: both, 3: both}
    assert _lines(m) == [4]


def test_logical_probe_defaults_and_must_agree(tmp_path):
    path = _csv(
        tmp_path,
        HEADER + ",logical_probe,histology_shank",
        f"123,{SORTED},pf,t1,45883-1,45883,0",
        f"123,{SORTED},pf,t2,45883-1,other,1",
        f"123,{SORTED},pf,t3,ProbeB,,0",
        f"123,{SORTED2},pf,t4,45883-1,,0",
    )
    m = read_manifest(path)
    msg = (
        f"rows of (recording_id={REC!r}, ephys_collection='45883-1') disagree on logical_probe: "
        "'45883' (lines 2), 'other' (lines 3)"
    )
    assert _problems(m) == {2: msg, 3: msg}
    assert [(r.line, r.logical_probe) for r in m.rows] == [(4, "ProbeB"), (5, "45883-1")]


def test_mixed_mouse_ids_reject_minority_rows(tmp_path):
    path = _csv(
        tmp_path,
        HEADER,
        f"123,{SORTED},pf,t1,ProbeA",
        f"999,{SORTED},pf,t2,ProbeB",
        f"123,{SORTED2},pf,t3,ProbeA",
    )
    m = read_manifest(path)
    assert m.mouse_id == "123"
    assert list(_problems(m)) == [3]
    assert _problems(m)[3].startswith(
        "mixed mouse ids: mouseid '999' differs from '123' (one mouse per manifest); "
    )
    assert _lines(m) == [2, 4]


def test_mixed_mouse_ids_majority_wins_even_over_the_first_row(tmp_path):
    path = _csv(
        tmp_path,
        HEADER,
        f"999,{SORTED},pf,t1,ProbeA",
        f"123,{SORTED},pf,t2,ProbeB",
        f"123,{SORTED2},pf,t3,ProbeA",
    )
    m = read_manifest(path)
    assert m.mouse_id == "123"
    assert list(_problems(m)) == [2]
    assert _lines(m) == [3, 4]


@pytest.mark.parametrize(
    ("drop", "expected"),
    [
        ("mouseid", "mouseid"),
        ("sorted_recording", "sorted_recording"),
        ("probe_file", "probe_file"),
        ("histology_track_id", "histology_track_id (or alias probe_id)"),
        ("ephys_collection", "ephys_collection (or alias probe_name)"),
    ],
)
def test_missing_required_column_raises(tmp_path, drop, expected):
    header = [c for c in HEADER.split(",") if c != drop]
    path = _csv(tmp_path, ",".join(header), ",".join("x" for _ in header))
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert info.value.file == str(path)
    assert str(info.value) == (
        f"{path}: missing required column(s): {expected}; columns found: {header}"
    )


def test_missing_columns_are_all_named(tmp_path):
    path = _csv(tmp_path, "mouseid,probe_file,other", "1,2,3")
    with pytest.raises(
        InputError,
        match=r"sorted_recording, histology_track_id \(or alias "
        r"probe_id\), ephys_collection \(or alias probe_name\); columns found",
    ):
        read_manifest(path)


@pytest.mark.parametrize("column", ["registration_asset", "template_to_ccf_asset"])
def test_two_per_brain_values_raise(tmp_path, column):
    path = _csv(
        tmp_path,
        HEADER + f",{column}",
        f"123,{SORTED},pf,t1,ProbeA,regA",
        f"123,{SORTED},pf,t2,ProbeB,",
        f"123,{SORTED2},pf,t3,ProbeA,regB",
        f"123,{SORTED2},pf,t4,ProbeB,regA",
    )
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert info.value.file == str(path)
    assert info.value.message == (
        f"{column} must have at most one distinct value per brain; "
        "found 'regA' (lines 2, 5), 'regB' (lines 4)"
    )


def test_one_per_brain_value_is_reported_on_the_manifest(tmp_path):
    path = _csv(
        tmp_path,
        HEADER + ",registration_asset,template_to_ccf_asset",
        f"123,{SORTED},pf,t1,ProbeA,Ex_639_Em_667,",
        f"123,{SORTED},pf,t2,ProbeB,Ex_639_Em_667,spim_template_to_ccf",
        f"123,{SORTED2},pf,t3,ProbeA,,",
    )
    m = read_manifest(path)
    assert (m.registration_asset, m.template_to_ccf_asset) == (
        "Ex_639_Em_667",
        "spim_template_to_ccf",
    )
    assert [r.registration_asset for r in m.rows] == ["Ex_639_Em_667", "Ex_639_Em_667", None]


def test_bad_rows_do_not_hide_good_rows(tmp_path):
    path = _csv(
        tmp_path,
        HEADER + ",annotation_format,histology_shank",
        f"123,{SORTED},pf,t1,ProbeA,,0",
        f"123,{SORTED},,t2,ProbeA,,1",
        "",
        f"123,{SORTED},pf,t3,ProbeB,json,0",
        f"123,{SORTED},pf,,ProbeC,csv,x",
    )
    m = read_manifest(path)
    assert _lines(m) == [2, 5]
    assert m.problems_text() == (
        f"{path}: line 3: required cell probe_file is blank\n"
        f"{path}: line 6: required cell histology_track_id (or probe_id) is blank; "
        f"{UNSUPPORTED}; "
        "histology_shank: 'x' is not an integer"
    )


def test_line_numbers_follow_quoted_multiline_cells(tmp_path):
    path = _csv(
        tmp_path,
        HEADER + ",surface_finding",
        f'123,{SORTED},pf,t1,ProbeA,"two',
        'lines"',
        f"123,{SORTED},,t2,ProbeA,",
    )
    m = read_manifest(path)
    assert [(r.line, r.surface_finding) for r in m.rows] == [(2, "two\nlines")]
    assert list(_problems(m)) == [4]


def test_no_valid_row_still_returns_a_manifest(tmp_path):
    path = _csv(tmp_path, HEADER, f",{SORTED},pf,t1,ProbeA", f"0042,{SORTED},,t1,ProbeA")
    m = read_manifest(path)
    assert m.rows == ()
    assert m.mouse_id == "0042"
    assert list(_problems(m)) == [2, 3]


def test_unknown_columns_warn(tmp_path):
    path = _csv(tmp_path, HEADER + ",notes,color", f"123,{SORTED},pf,t1,ProbeA,hi,red")
    m = read_manifest(path)
    assert _lines(m) == [2]
    assert m.warnings == (f"{path}: ignoring unknown column(s) ['notes', 'color']",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "manifest is empty (expected a CSV with a header row)"),
        (HEADER.encode() + b"\n", "manifest has no data rows (only a header, or nothing)"),
        (HEADER.encode() + b"\n\n,,,,\n", "manifest has no data rows (only a header, or nothing)"),
    ],
)
def test_file_level_problems(tmp_path, content, message):
    path = tmp_path / "m.csv"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert (info.value.file, info.value.message) == (str(path), message)


def test_missing_and_non_csv_files_raise(tmp_path):
    with pytest.raises(InputError, match="manifest file not found") as info:
        read_manifest(tmp_path / "absent.csv")
    assert info.value.file == str(tmp_path / "absent.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,b\n\xff\xfe\x00,1\n")
    with pytest.raises(InputError, match="not a readable UTF-8 CSV"):
        read_manifest(binary)
    ragged = _csv(tmp_path, "a,b", "1,2,3", name="ragged.csv")
    with pytest.raises(InputError, match="not a readable UTF-8 CSV"):
        read_manifest(ragged)


def test_write_manifest_round_trips(tmp_path):
    s1, s2 = SORTED.replace("_123_", "_000123_"), SORTED2.replace("_123_", "_000123_")
    src = _csv(
        tmp_path,
        "mouseid,sorted_recording,probe_file,probe_id,probe_name,probe_shank,annotation_format,"
        "logical_probe,surface_finding,registration_asset,notes",
        f"000123,{s1},pf,t1,45883-1,1.0,JSON,45883,surf,reg,x",
        f"000123,{s1},pf,t2,ProbeB,,,,,,y",
        f"000123,{s1},,t3,ProbeC,,,,,,bad row",
        f'000123,{s2},"pf, with comma",t4,ProbeA,2,,,,reg,z',
    )
    first = read_manifest(src)
    assert first.warnings == (f"{src}: ignoring unknown column(s) ['notes']",)
    assert [p.line for p in first.problems] == [4]
    out = tmp_path / "out" / "manifest_used.csv"
    write_manifests([first], out)
    assert out.read_text(encoding="utf-8").splitlines()[0] == (
        "mouseid,sorted_recording,probe_file,histology_track_id,ephys_collection,"
        "annotation_format,logical_probe,histology_shank,ephys_shank,surface_finding,"
        "registration_asset,template_to_ccf_asset,hemisphere,atlas"
    )
    second = read_manifest(out)
    assert second.problems == () and second.warnings == ()
    assert len(second.rows) == 3
    strip = [dataclasses.replace(r, line=0) for r in first.rows]
    assert [dataclasses.replace(r, line=0) for r in second.rows] == strip
    assert (second.mouse_id, second.registration_asset) == ("000123", "reg")
    assert [p.name for p in out.parent.iterdir()] == ["manifest_used.csv"]


@pytest.mark.parametrize(
    ("cell", "value", "problem"),
    [
        ("", None, None),
        ("Left", "left", None),
        ("R", "right", None),
        ("west", None, "hemisphere 'west' is not left or right (or L / R), or blank"),
    ],
)
def test_hemisphere_and_atlas(tmp_path, cell, value, problem):
    path = _csv(
        tmp_path, HEADER + ",hemisphere,atlas", f"123,{SORTED},pf,t1,ProbeA,{cell},allen_mouse_10um"
    )
    m = read_manifest(path)
    if problem is None:
        assert [(r.hemisphere, r.atlas) for r in m.rows] == [(value, "allen_mouse_10um")]
    else:
        assert _problems(m) == {2: problem}
