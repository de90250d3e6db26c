"""The per-mouse ``quality_control.json`` is a valid, pending, deterministic QualityControl.

Independent truth: the installed aind-data-schema ``QualityControl`` model re-reads the written
file, and the expected paths, values and modalities are the literals built here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from aind_data_schema.core.quality_control import QualityControl, Stage, Status
from pydantic import ValidationError

from alignprep.qc.metadata import (
    AUTOMATED_EVALUATOR,
    FILE_NAME,
    QcFigure,
    QcNumber,
    quality_control,
    write_quality_control,
)

CODE_DIR = Path(__file__).resolve().parents[2] / "code"
WHEN = datetime(2025, 1, 15, 10, 30, 0, tzinfo=timezone(timedelta(hours=-8)))

FIGURES = (
    QcFigure("registration centre", "qc/registration_centre.png", "atlas on SPIM", "SPIM"),
    QcFigure("track T1", "qc/tracks/T1.png", "picks on SPIM", "SPIM", "T1"),
    QcFigure("probe ProbeA", "qc/probes/ProbeA.png", "channels and units", "ECEPHYS", "ProbeA"),
    QcFigure("probe ProbeB", "qc/probes/ProbeB.png", "channels and units", "ECEPHYS", "ProbeB"),
)
NUMBERS = (
    QcNumber("picks T1", 37, "picks on track T1", "SPIM", "T1"),
    QcNumber("picks T2", 5, "picks on track T2", "SPIM", "T2"),
    QcNumber("tracks inside brain", 2, "tracks with all picks in the brain", "SPIM"),
    QcNumber("units ProbeA", 143, "units sorted on ProbeA", "ECEPHYS", "ProbeA"),
    QcNumber("units ProbeB", 0, "units sorted on ProbeB", "ECEPHYS", "ProbeB"),
    QcNumber("channels with region ProbeA", 0.875, "fraction", "ECEPHYS", "ProbeA"),
    QcNumber("channels with region ProbeB", 1.0, "fraction", "ECEPHYS", "ProbeB"),
)
ABBREVIATION = {"SPIM": "SPIM", "ECEPHYS": "ecephys"}


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, QualityControl]:
    """The document of FIGURES and NUMBERS written to a mouse folder and re-read by the model."""
    path = write_quality_control(tmp_path / "000123", quality_control(FIGURES, NUMBERS, WHEN))
    return path, QualityControl.model_validate_json(path.read_text(encoding="utf-8"))


def test_file_is_the_schema_file_and_round_trips(written: tuple[Path, QualityControl]) -> None:
    path, qc = written
    assert path.name == FILE_NAME == QualityControl.default_filename() == "quality_control.json"
    assert len(qc.metrics) == len(FIGURES) + len(NUMBERS)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["schema_version"] == QualityControl.model_fields["schema_version"].default
    assert json.loads(qc.model_dump_json())["metrics"] == document["metrics"]


def test_every_figure_once_with_its_relative_path(written: tuple[Path, QualityControl]) -> None:
    _, qc = written
    by_reference = [m for m in qc.metrics if m.reference is not None]
    assert sorted(m.reference for m in by_reference) == sorted(f.file for f in FIGURES)
    for fig in FIGURES:
        (metric,) = [m for m in qc.metrics if m.name == fig.name]
        assert metric.reference == fig.file
        assert metric.value is None
        assert metric.description == fig.description
        assert metric.tags["kind"] == "figure"


def test_every_number_with_its_value(written: tuple[Path, QualityControl]) -> None:
    path, qc = written
    raw = {m["name"]: m for m in json.loads(path.read_text(encoding="utf-8"))["metrics"]}
    for num in NUMBERS:
        (metric,) = [m for m in qc.metrics if m.name == num.name]
        assert metric.value == num.value
        assert type(raw[num.name]["value"]) is type(num.value)  # 0 stays 0, 1.0 stays 1.0
        assert metric.reference is None
        assert metric.tags["kind"] == "number"


def test_statuses_pending_at_the_run_time(written: tuple[Path, QualityControl]) -> None:
    _, qc = written
    for metric in qc.metrics:
        assert len(metric.status_history) == 1
        (entry,) = metric.status_history
        assert entry.status == Status.PENDING
        assert entry.evaluator == AUTOMATED_EVALUATOR
        assert entry.timestamp == WHEN
        assert metric.stage == Stage.PROCESSING
        assert metric.evaluated_assets is None
    assert qc.evaluate_status() == Status.PENDING
    assert set(qc.status.values()) == {Status.PENDING.value}


def test_modalities_and_groups(written: tuple[Path, QualityControl]) -> None:
    _, qc = written
    for item in (*FIGURES, *NUMBERS):
        (metric,) = [m for m in qc.metrics if m.name == item.name]
        assert metric.modality.abbreviation == ABBREVIATION[item.modality], item.name
        assert metric.tags.get("group", "") == item.group
    assert qc.default_grouping == ["kind", "group"]
    assert {"SPIM", "ecephys", "group:ProbeA", "kind:figure"} <= set(qc.status)


def test_no_group_no_group_key(tmp_path: Path) -> None:
    document = quality_control(FIGURES[:1], NUMBERS[2:3], WHEN)
    assert document["default_grouping"] == ["kind"]
    assert all(set(m["tags"]) == {"kind"} for m in document["metrics"])


def test_numpy_values_become_plain_numbers() -> None:
    numbers = [
        QcNumber("n", np.int64(7), "", "SPIM"),
        QcNumber("f", np.float32(0.5), "", "ECEPHYS"),
    ]
    values = {m["name"]: m["value"] for m in quality_control([], numbers, WHEN)["metrics"]}
    assert values == {"n": 7, "f": 0.5}
    assert type(values["n"]) is int
    assert type(values["f"]) is float


def test_bytes_format_and_identical_input_identical_bytes(tmp_path: Path) -> None:
    a = write_quality_control(tmp_path / "a", quality_control(FIGURES, NUMBERS, WHEN))
    b = write_quality_control(tmp_path / "b", quality_control(FIGURES, NUMBERS, WHEN))
    data = a.read_bytes()
    assert data == b.read_bytes()
    expected = json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert data == expected.encode("utf-8")
    other = write_quality_control(
        tmp_path / "c", quality_control(FIGURES, NUMBERS, WHEN + timedelta(seconds=1))
    )
    assert other.read_bytes() != data  # the timestamp really is in the file


_SCRIPT = """
import sys
from datetime import datetime, timezone
from pathlib import Path
from alignprep.qc.metadata import QcFigure, QcNumber, quality_control, write_quality_control
figs = [QcFigure(f"fig {i}", f"qc/f{i}.png", "d", "SPIM", f"T{i}") for i in range(12)]
nums = [QcNumber(f"num {i}", i, "d", "ECEPHYS", f"Probe{i}") for i in range(12)]
when = datetime(2025, 1, 15, tzinfo=timezone.utc)
write_quality_control(Path(sys.argv[1]), quality_control(figs, nums, when))
"""


def test_identical_bytes_across_hash_seeds(tmp_path: Path) -> None:
    """The schema computes its status mapping from sets: the file must not depend on the seed."""
    outs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(CODE_DIR)}
        out = tmp_path / seed
        subprocess.run([sys.executable, "-c", _SCRIPT, str(out)], env=env, check=True)
        outs.append((out / FILE_NAME).read_bytes())
    assert outs[0] == outs[1] == outs[2]
    assert len(json.loads(outs[0])["status"]) == 12 * 2 + 2 + 2 + 1  # tags, modalities, stage


@pytest.mark.parametrize("bad", ["ephys", "spim", "Ecephys", "SPIM ", ""])
def test_bad_modality_is_named(bad: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown QC modality {bad!r}.*SPIM, ECEPHYS") as err:
        quality_control([QcFigure("reg", "qc/reg.png", "d", bad)], [], WHEN)
    assert "'reg'" in str(err.value)
    with pytest.raises(ValueError, match=rf"number 'n'.*{bad!r}"):
        quality_control([], [QcNumber("n", 1, "d", bad)], WHEN)


@pytest.mark.parametrize(
    ("figures", "numbers", "when", "message"),
    [
        ([QcFigure("a", "/abs/a.png", "", "SPIM")], [], WHEN, "relative POSIX"),
        ([QcFigure("a", "../a.png", "", "SPIM")], [], WHEN, "relative POSIX"),
        ([QcFigure("a", "qc\\a.png", "", "SPIM")], [], WHEN, "relative POSIX"),
        ([QcFigure("a", "qc//a.png", "", "SPIM")], [], WHEN, "relative POSIX"),
        ([QcFigure("a", "", "", "SPIM")], [], WHEN, "relative POSIX"),
        ([], [QcNumber("n", float("nan"), "", "SPIM")], WHEN, "not finite"),
        ([], [QcNumber("n", True, "", "SPIM")], WHEN, "not a number"),
        ([], [QcNumber("n", "3", "", "SPIM")], WHEN, "not a number"),
        ([], [QcNumber("n", 1, "", "SPIM")], datetime(2025, 1, 15), "timezone-aware"),
        ([QcFigure("x", "a.png", "", "SPIM")], [QcNumber("x", 1, "", "SPIM")], WHEN, "x"),
        (
            [QcFigure("a", "a.png", "", "SPIM"), QcFigure("b", "a.png", "", "SPIM")],
            [],
            WHEN,
            "repeated: a.png",
        ),
        ([], [], WHEN, "at least one"),
    ],
)
def test_bad_input_raises(
    figures: list[QcFigure], numbers: list[QcNumber], when: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        quality_control(figures, numbers, when)


def test_existing_file_replaced_whole_no_temp_left(tmp_path: Path) -> None:
    mouse = tmp_path / "000123"
    mouse.mkdir()
    old = mouse / FILE_NAME
    old.write_text("x" * 200_000)  # longer than the new file: a partial overwrite would show
    path = write_quality_control(mouse, quality_control(FIGURES, NUMBERS, WHEN))
    fresh = write_quality_control(tmp_path / "fresh", quality_control(FIGURES, NUMBERS, WHEN))
    assert path == old
    assert path.read_bytes() == fresh.read_bytes()
    assert sorted(p.name for p in mouse.iterdir()) == [FILE_NAME]


def test_failed_replace_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mouse = tmp_path / "000123"
    mouse.mkdir()
    (mouse / FILE_NAME).write_bytes(b"old content\n")
    renames = []

    def refuse(src: str, dst: str) -> None:
        renames.append((Path(src), Path(dst)))
        raise OSError("disk gone")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk gone"):
        write_quality_control(mouse, quality_control(FIGURES, NUMBERS, WHEN))
    ((src, dst),) = renames
    assert src.parent == mouse  # the temporary file was in the same folder
    assert dst == mouse / FILE_NAME
    assert (mouse / FILE_NAME).read_bytes() == b"old content\n"
    assert sorted(p.name for p in mouse.iterdir()) == [FILE_NAME]


def test_invalid_document_writes_nothing(tmp_path: Path) -> None:
    document = quality_control(FIGURES, NUMBERS, WHEN)
    document["metrics"][0]["stage"] = "Whenever"
    with pytest.raises(ValidationError):
        write_quality_control(tmp_path, document)
    assert list(tmp_path.iterdir()) == []
