"""Curation labels of every AIND pipeline generation, curated sortings and curation.json."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from spikeinterface.core import NumpySorting

from alignprep.errors import InputError
from alignprep.inputs import curation as cur
from alignprep.inputs.sorted import AnalyzerRef
from alignprep.synthetic.ephys_sorted import curation_dict, unit_labels

UNITS = ("0", "1", "2", "3")
pytestmark = pytest.mark.filterwarnings("ignore:The extractor is not serializable")


def sorting(unit_ids=UNITS, **properties) -> NumpySorting:
    samples = np.arange(len(unit_ids)) * 100
    ids = np.array(unit_ids)
    out = NumpySorting.from_samples_and_labels([samples], [ids], 30000.0, unit_ids=ids)
    for key, values in properties.items():
        out.set_property(key, np.asarray(values))
    return out


def ref(tmp_path: Path, curated: Path | None) -> AnalyzerRef:
    return AnalyzerRef(tmp_path / "rec.zarr", 1, 1, 2, curated, probe="rec/ProbeB")


def test_label_names_match_case_insensitively_and_values_are_normalised(tmp_path):
    s = sorting(
        Default_QC=["True", "false", "1", "0"],
        UnitRefine_Label=["SUA", "mua", "Noise", "sua"],
        bombcell_label=["good", "MUA", "noise", "non_soma"],
        decoder_probability=["0.5", "0.25", "1", "0.75"],
        quality=["good"] * 4,  # not a label column: ignored
    )
    labels = cur.sorting_labels(s, tmp_path)
    assert list(labels) == [
        "default_qc",
        "unitrefine_label",
        "decoder_probability",
        "bombcell_label",
    ]
    assert labels["default_qc"].tolist() == [True, False, True, False]
    assert labels["unitrefine_label"].tolist() == ["sua", "mua", "noise", "sua"]
    assert labels["bombcell_label"].tolist() == ["good", "mua", "noise", "non_soma"]
    assert labels["decoder_probability"].tolist() == [0.5, 0.25, 1.0, 0.75]


def test_label_errors_name_the_property_and_what_was_expected(tmp_path):
    with pytest.raises(InputError, match=r"'default_qc' has values \['maybe'\]; expected"):
        cur.sorting_labels(sorting(default_qc=["maybe"] * 4), tmp_path)
    twice = sorting(default_qc=[True] * 4, Default_QC=[True] * 4)
    with pytest.raises(InputError, match="name the same label column"):
        cur.sorting_labels(twice, tmp_path)


def test_analyzer_labels_win_and_curated_fills_the_rest_in_analyzer_order(tmp_path):
    """Newest pipeline: labels on the analyzer; older: only on curated/<rec> (decoder era)."""
    curated = tmp_path / "curated" / "rec"
    order = ("2", "0", "3", "1")  # the curated sorting may list the units in another order
    sorting(order, default_qc=[False, False, False, False],
            decoder_label=["mua", "sua", "noise", "sua"]).save(folder=curated)  # fmt: skip
    analyzer_labels = {"default_qc": np.array([True, True, False, True])}
    out = cur.read_unit_curation(ref(tmp_path, curated), UNITS, analyzer_labels)
    assert out.labels["default_qc"].tolist() == [True, True, False, True]
    assert out.labels["decoder_label"].tolist() == ["sua", "sua", "mua", "noise"]
    # the Allen GUI's UnitRefine filters read unitrefine_label: filled from decoder_label
    assert out.labels["unitrefine_label"].tolist() == ["sua", "sua", "mua", "noise"]
    assert out.removed == () and out.merges == ()


def test_curated_unit_ids_must_be_the_analyzers(tmp_path):
    curated = tmp_path / "curated" / "rec"
    sorting(("0", "1", "2", "7"), default_qc=[True] * 4).save(folder=curated)
    with pytest.raises(InputError) as err:
        cur.read_unit_curation(ref(tmp_path, curated), UNITS, {})
    assert err.value.file == str(curated)
    message = str(err.value)
    assert "rec/ProbeB, shank group 2" in message and "do not match analyzer rec.zarr" in message
    assert "only curated: ['7']" in message and "only in the analyzer: ['3']" in message


def test_unreadable_curated_sorting_names_the_expected_layout(tmp_path):
    curated = tmp_path / "curated" / "rec"
    curated.mkdir(parents=True)
    (curated / "junk.txt").write_text("x")
    with pytest.raises(InputError, match="expected a SpikeInterface sorting folder") as err:
        cur.read_unit_curation(ref(tmp_path, curated), UNITS, {})
    assert err.value.file == str(curated)


@pytest.mark.parametrize("version", ["1", "2"])
def test_curation_json_removed_and_merges_in_both_formats(tmp_path, version):
    curated = tmp_path / "curated" / "rec"
    sorting(default_qc=[True] * 4).save(folder=curated)
    if version == "2":
        labels = {"unitrefine_label": np.array(["sua", "noise", "mua", "noise"])}
        doc = curation_dict(list(UNITS), labels)  # what aind-ephys-curation writes
    else:
        doc = {"format_version": "1", "unit_ids": [0, 1, 2, 3], "label_definitions": {},
               "manual_labels": [], "removed_units": [1, 3],
               "merge_unit_groups": [[0, 2]]}  # fmt: skip
    (curated / "curation.json").write_text(json.dumps(doc))
    out = cur.read_unit_curation(ref(tmp_path, curated), UNITS, {})
    assert out.removed == ("1", "3")
    assert out.merges == (("0", "2"),)
    assert str(curated / "curation.json") in out.sources


def test_curation_json_errors_name_the_file_and_the_key(tmp_path):
    curated = tmp_path / "curated" / "rec"
    sorting(default_qc=[True] * 4).save(folder=curated)
    path = curated / "curation.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="unreadable curation file") as err:
        cur.read_unit_curation(ref(tmp_path, curated), UNITS, {})
    assert err.value.file == str(path)
    doc = curation_dict(list(UNITS), {"unitrefine_label": np.array(["sua"] * 4)})
    path.write_text(json.dumps({**doc, "unit_ids": ["0", "1"]}))
    with pytest.raises(InputError, match="unit_ids") as err:
        cur.read_unit_curation(ref(tmp_path, curated), UNITS, {})
    assert err.value.key == "unit_ids" and err.value.file == str(path)
    path.write_text(json.dumps({**doc, "removed": ["9"]}))
    with pytest.raises(InputError, match="not a SpikeInterface curation document"):
        cur.read_unit_curation(ref(tmp_path, curated), UNITS, {})


def test_synthetic_layouts_name_their_labels():
    assert list(unit_labels(list(UNITS), "decoder", 0)) == [
        "default_qc",
        "decoder_label",
        "decoder_probability",
    ]
    newest = unit_labels(list(UNITS), "unitrefine", 0)
    assert {"unitrefine_label", "bombcell_label", "decoder_label"} <= set(newest)
    assert newest["decoder_label"].tolist() == newest["unitrefine_label"].tolist()
