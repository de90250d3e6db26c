"""The results folder's README names the files really present, per GUI, in deterministic bytes.

Independent truth: a results tree built here with the path functions of ``alignprep.outputs``
(the ones the stages write with), so the expected paths are known before the README is written.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from alignprep import outputs
from alignprep.space.frames import ImageHeader, direction_from_code
from alignprep.stages.results_readme import DOCS_POINTER, write_results_readme

MOUSE = "000123"
REC = "ecephys_000123_2025-01-15_10-00-00"


def _touch(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _picks(probe: Path, suffix: str, guis: tuple[str, ...] = ("image_space", "bregma")) -> None:
    for gui in guis:
        _touch(outputs.picks_paths(probe, suffix)[gui], b'{"xyz_picks": []}\n')


def build_tree(root: Path, reverse: bool = False) -> dict[str, Path]:
    """A results tree: histology, tracks, QC, state, a temp folder and four probe folders."""
    probes = {
        "single": outputs.probe_dir(root, MOUSE, REC, "ProbeA"),
        "shanks": outputs.probe_dir(root, MOUSE, REC, "ProbeB"),
        "no_spikes": outputs.probe_dir(root, MOUSE, REC, "ProbeC"),
        "ibl_only": outputs.probe_dir(root, MOUSE, "ecephys_000123_2025-01-16_09-00-00", "45883-1"),
    }
    steps = [
        lambda: _picks(probes["single"], ""),
        lambda: _touch(probes["single"] / "spikes.times.npy"),
        *[lambda n=n: _picks(probes["shanks"], f"_shank{n}") for n in (1, 2, 10)],
        lambda: _touch(probes["shanks"] / "spikes.times.npy"),
        *[
            lambda path=path: _touch(path)
            for n in (1, 2, 10)
            for path in outputs.channel_regions_paths(probes["shanks"], f"_shank{n}").values()
        ],
        lambda: _picks(probes["no_spikes"], ""),
        lambda: _touch(probes["no_spikes"] / "channels.localCoordinates.npy"),
        lambda: _touch(probes["no_spikes"] / "sorting_error.txt"),
        lambda: _picks(probes["ibl_only"], "", ("bregma",)),
        lambda: _touch(outputs.track_paths(root, MOUSE, "ProbeA_track", "")["spim_fcsv"]),
        lambda: _touch(outputs.ccf_space_path(root, MOUSE, "Ex_488_Em_525")),
        lambda: _touch(outputs.mouse_dir(root, MOUSE) / ".alignprep" / "state.json"),
        lambda: (probes["single"].parent / f".ProbeD{outputs.TEMP_MARK}x1").mkdir(parents=True),
        lambda: _touch(outputs.histology_paths(root, MOUSE)["labels"]),
        lambda: outputs.write_nrrd_atomic(
            outputs.histology_paths(root, MOUSE)["registration"],
            np.zeros((3, 4, 5), dtype=np.uint16),
            ImageHeader(np.zeros(3), np.full(3, 0.03), direction_from_code("IRP"), (3, 4, 5)),
        ),
    ]
    for step in reversed(steps) if reverse else steps:
        step()
    return probes


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def _section(text: str, heading: str) -> str:
    start = text.index(heading)
    end = text.find("\n#", start + len(heading))
    return text[start : end if end >= 0 else None]


def _table(section: str) -> dict[str, tuple[str, str]]:
    rows = re.findall(r"^\| (\S+) \| (\S+) \| (\S+) \|$", section, re.M)
    return {shank: (allen.strip("`"), ibl.strip("`")) for shank, allen, ibl in rows}


@pytest.fixture
def written(tmp_path: Path) -> tuple[Path, dict[str, Path], str]:
    root = tmp_path / "results"
    probes = build_tree(root)
    path = write_results_readme(root, [MOUSE])
    assert path == root / "README.md"
    return root, probes, path.read_text(encoding="utf-8")


def test_lists_exactly_the_probe_folders(written):
    root, probes, text = written
    listed = re.findall(r"^### Probe folder `([^`]+)`$", text, re.M)
    assert sorted(listed) == sorted(_rel(root, p) for p in probes.values())


def test_pairs_each_shank_with_both_gui_files(written):
    root, probes, text = written
    probe = probes["shanks"]
    rows = _table(_section(text, f"### Probe folder `{_rel(root, probe)}`"))
    assert list(rows) == ["1", "2", "10"]  # numeric order, 1-based as in the file names
    for n in (1, 2, 10):
        files = outputs.picks_paths(probe, f"_shank{n}")
        assert rows[str(n)] == (files["image_space"].name, files["bregma"].name)
    single = _table(_section(text, f"### Probe folder `{_rel(root, probes['single'])}`"))
    assert single == {"all": ("xyz_picks_image_space.json", "xyz_picks.json")}
    ibl_only = _table(_section(text, f"### Probe folder `{_rel(root, probes['ibl_only'])}`"))
    assert ibl_only == {"all": ("missing", "xyz_picks.json")}


def test_says_what_ephys_each_folder_has(written):
    root, probes, text = written
    assert "Ephys: spikes, clusters" in _section(text, _rel(root, probes["single"]))
    no_spikes = _section(text, _rel(root, probes["no_spikes"]))
    assert "`sorting_error.txt`" in no_spikes and "spikes, clusters" not in no_spikes
    assert "Ephys: none" in _section(text, _rel(root, probes["ibl_only"]))


def test_says_where_the_channel_regions_are(written):
    root, probes, text = written
    shanks = _section(text, _rel(root, probes["shanks"]))
    assert f"(shank 1, 2, 10): `{outputs.CHANNEL_REGIONS_DIR}/`" in shanks
    for name in ("single", "no_spikes", "ibl_only"):
        assert outputs.CHANNEL_REGIONS_DIR not in _section(text, _rel(root, probes[name]))
    assert "before any alignment" in text


def test_volumes_units_and_docs_pointer(written):
    root, _, text = written
    histology = outputs.histology_paths(root, MOUSE)
    line = next(ln for ln in text.splitlines() if ln.startswith("Image-space volumes"))
    assert f"`{_rel(root, histology['registration'].parent)}/`" in line
    assert "30 µm voxels" in line  # from the NRRD header: 0.03 mm
    assert f"`{histology['labels'].name}`" in line and f"`{histology['registration'].name}`" in line
    assert DOCS_POINTER == "docs/outputs.md in the alignprep repository" and DOCS_POINTER in text
    assert "](" not in text  # no links: the folder travels without the repository
    for name in ("run_report.json", "validation_report.json", "effective_config.json"):
        assert f"`{name}`" in text or f"`<mouse>/{name}`" in text


def test_bytes_are_deterministic_and_written_atomically(tmp_path: Path, written):
    root, _, text = written
    again = write_results_readme(root, [MOUSE, MOUSE])
    assert again.read_text(encoding="utf-8") == text
    other = tmp_path / "elsewhere" / "results"
    build_tree(other, reverse=True)  # other creation order, other absolute path
    assert write_results_readme(other, [MOUSE]).read_bytes() == text.encode("utf-8")
    assert not [p for p in root.iterdir() if outputs.is_temp_name(p.name)]


def test_mouse_without_outputs_and_bad_ids(tmp_path: Path):
    root = tmp_path / "results"
    root.mkdir()
    text = write_results_readme(root, ["000999"]).read_text(encoding="utf-8")
    assert "## Mouse `000999`" in text and "No outputs: see `validation_report.json`" in text
    with pytest.raises(ValueError, match=re.escape("contains '..'")):
        write_results_readme(root, ["../elsewhere"])
