"""``<results_root>/README.md``: a short guide to a results folder, written from what is in it.

For someone who opens the results without the repository: which files the Allen GUI
(``ibl-ephys-alignment-gui``) and the IBL GUI (``iblapps``) load from each probe folder, the units
and frames of the pick files and volumes, and where the run's reports are. It lists the files
actually present (paths relative to the results root), in sorted order, with no timestamp, so the
same results give the same bytes. It holds no links: the full contract is docs/outputs.md in the
alignprep repository.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

from .. import outputs

DOCS_POINTER = "docs/outputs.md in the alignprep repository"
#: ``xyz_picks[_shank<N>][_image_space].json``: the pick files of a probe folder.
PICKS_RE = re.compile(r"^xyz_picks(?P<suffix>(?:_shank\d+)?)(?P<image>_image_space)?\.json$")

_UNITS = """\
## Units and frames

* `xyz_picks*_image_space.json` (Allen GUI): RAS of the mouse's own SmartSPIM image (x right,
  y anterior, z superior), in **µm**.
* `xyz_picks*.json` (IBL GUI): IBL bregma coordinates of the Allen CCF (x right, y anterior,
  z dorsal, origin at bregma), in **µm**.
* `image_space_histology/*.nrrd`: the mouse's image; LPS physical space in **mm** in the NRRD
  header, IRP orientation (a C-order read has shape (AP, ML, DV)).
* `ccf_space_histology/*.nrrd` (quality control): the Allen CCF 25 µm grid, IRP, **mm**.
* `track_data/spim|template|ccf/*.fcsv`: LPS in **mm** in the mouse's image, the SmartSPIM
  template and the CCF; `track_data/ccf/*_ccf_um.json`: CCF (ML right, AP posterior,
  DV ventral) in **µm** from the centre of CCF voxel [0,0,0].
* `spikes.*`, `clusters.*`, `channels.*`, `_iblqc_*`: IBL ALF; times in s, amplitudes and
  waveforms in V, peak-to-trough in ms, depths and channel coordinates in µm.

A pick file is `{"xyz_picks": [[x, y, z], ...]}`, entry first, deepest pick last. A suffix
`_shank<N>` (N from 1) names the shank of a multi-shank probe.

`<probe folder>/regions_from_histology_track/` holds where each channel and unit sits according
to the histology track alone (IBL's "Histology track" rule), **before any alignment**: per shank
`histology_track_channels<suffix>.json` (every channel: IBL bregma and CCF µm, Allen id and
acronym, lateralized id, `beyond_track`; every unit: its peak channel's region) and
`histology_track_regions<suffix>.csv` (one row per contiguous region along the shank), and the
ALF datasets `channels.mlapdv`, `channels.brainLocationIds_ccf_2017`, `clusters.*` (int32 µm and
Allen ids) of that separate collection. No GUI reads them, by design: they are not an alignment.
"""

_GUIS = """\
## Opening a probe folder

* **Allen GUI** (`ibl-ephys-alignment-gui`): select the probe folder. It reads the
  `xyz_picks*_image_space.json` files and the ephys files there, and
  `image_space_histology/` two folders up. Attach this results folder so that a probe folder
  is `/data/<results>/<mouse>/<recording>/<probe>`, together with the stitched SmartSPIM asset
  and `spim_template_to_ccf`: the GUI finds the registration files there.
* **IBL GUI** (`iblapps` atlaselectrophysiology, offline): select the probe folder. It reads
  only that folder: `xyz_picks.json` (or `xyz_picks_shank<N>.json`) and the ephys files. It
  writes into the folder it reads, so copy the folder out of a read-only `/data` first.
"""

_REPORTS = """\
## Reports

* `effective_config.json`: the parameters of the last run.
* `validation_report.json`: every check made before the run, with its outcome.
* `manifest.csv`: the manifest rows that were used.
* `<mouse>/run_report.json`: every item (histology, each probe's ephys, each track): ok, skipped
  (unchanged) or failed, with the reason.
* `<mouse>/processing.json` (provenance) and `<mouse>/datapackage.json` (index of the files).
* `<mouse>/.alignprep/`: re-run state; do not edit.
"""


def results_readme_path(results_root: Path) -> Path:
    """``<results_root>/README.md``."""
    return Path(results_root) / outputs.RESULTS_README_NAME


def write_results_readme(results_root: Path, mouse_ids: list[str]) -> Path:
    """Write ``<results_root>/README.md`` for ``mouse_ids`` (atomic, deterministic bytes).

    Raises
    ------
    ValueError
        A mouse id that is not a plain folder name, or a folder where the README belongs.
    """
    path = results_readme_path(results_root)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; expected the results README there")
    text = results_readme_text(Path(results_root), mouse_ids)
    return outputs.write_bytes_atomic(path, text.encode("utf-8"))


def results_readme_text(results_root: Path, mouse_ids: Iterable[str]) -> str:
    """The README's Markdown for the results under ``results_root``."""
    parts = [_mouse_section(results_root, mouse) for mouse in sorted(set(mouse_ids))]
    head = (
        "# alignprep results\n\n"
        "These files were written by alignprep for the ephys alignment GUIs: the Allen GUI\n"
        "(`ibl-ephys-alignment-gui`) and the IBL GUI (`iblapps`). Every file, frame and unit is\n"
        f"described in {DOCS_POINTER}; the frames in docs/coordinates.md there.\n"
    )
    body = "\n".join(parts) if parts else "No mouse was processed.\n"
    return "\n".join([head, _UNITS, _GUIS, body, _REPORTS])


def _rel(results_root: Path, path: Path) -> str:
    return path.relative_to(results_root).as_posix()


def _reserved(results_root: Path, mouse: str) -> set[str]:
    """Folder names of a mouse folder that are not recordings (from ``outputs``)."""
    histology = outputs.histology_paths(results_root, mouse)["registration"].parent
    ccf_space = outputs.ccf_space_path(results_root, mouse, "x").parent
    tracks = outputs.track_paths(results_root, mouse, "x", "")["spim_fcsv"].parent.parent
    return {histology.name, ccf_space.name, tracks.name, outputs.STATE_DIR}


def _subfolders(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_dir() and not p.name.startswith(".") and not outputs.is_temp_name(p.name)
    )


def probe_folders(results_root: Path, mouse: str) -> list[Path]:
    """Every ``<mouse>/<recording_id>/<ephys_collection>`` folder present, sorted."""
    mouse_dir = outputs.mouse_dir(results_root, mouse)
    reserved = _reserved(results_root, mouse)
    recordings = [p for p in _subfolders(mouse_dir) if p.name not in reserved]
    return [probe for rec in recordings for probe in _subfolders(rec)]


def _voxel_um(path: Path) -> float | None:
    """Isotropic voxel size of a written NRRD, from its header (None when unreadable)."""
    import nrrd
    import numpy as np

    try:
        header = nrrd.read_header(str(path))
        spacing_mm = np.linalg.norm(np.asarray(header["space directions"], dtype=float), axis=1)
    except (OSError, KeyError, ValueError, nrrd.NRRDError):
        return None
    return round(float(spacing_mm.max()) * 1e3, 6)


def _names(paths: Iterable[Path]) -> str:
    return ", ".join(f"`{p.name}`" for p in sorted(paths)) or "none"


def _mouse_section(results_root: Path, mouse: str) -> str:
    mouse_dir = outputs.mouse_dir(results_root, mouse)
    lines = [f"## Mouse `{mouse}`", ""]
    if not mouse_dir.is_dir():
        lines.append("No outputs: see `validation_report.json`.")
        return "\n".join(lines) + "\n"
    histology = outputs.histology_paths(results_root, mouse)
    folder = histology["registration"].parent
    light_sheet, ccf_only_picks = _light_sheet(results_root, mouse)
    if light_sheet:
        reg = histology["registration"]
        size_um = _voxel_um(reg) if reg.is_file() else None
        voxel = f", {size_um:g} µm voxels" if size_um else ""
        lines.append(
            f"Image-space volumes in `{_rel(results_root, folder)}/` (Allen GUI{voxel}): "
            f"{_names(folder.glob('*.nrrd'))}."
        )
    else:
        lines.append(NO_LIGHT_SHEET)
    probes = probe_folders(results_root, mouse)
    if not probes:
        lines += ["", "No probe folder: see `run_report.json`."]
    for probe in probes:
        lines += ["", *_probe_lines(results_root, probe, ccf_only_picks)]
    return "\n".join(lines) + "\n"


NO_LIGHT_SHEET = (
    "No light-sheet data: every track of this mouse was traced with another tool directly in "
    "the CCF, so the Allen GUI's inputs (`image_space_histology/`, `xyz_picks*_image_space.json`),"
    " which need the mouse's own image, are not produced. The IBL GUI needs only the probe folder."
)
NOT_PRODUCED = "not produced (traced in the CCF)"


def _light_sheet(results_root: Path, mouse: str) -> tuple[bool, set[str]]:
    """Whether the mouse had light-sheet data, and the pick files traced in the CCF (relative
    to the mouse folder), from its ``datapackage.json`` (light-sheet, none, when absent)."""
    path = outputs.datapackage_path(results_root, mouse)
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return True, set()
    ccf_only = set()
    for collections in (document.get("probes") or {}).values():
        for probe in collections.values():
            for pick in probe.get("xyz_picks") or []:
                if pick.get("image_space") is None and pick.get("ccf"):
                    ccf_only.add(pick["ccf"]["path"])
    return document.get("light_sheet", True) is not False, ccf_only


def _probe_lines(results_root: Path, probe: Path, ccf_only_picks: set[str]) -> list[str]:
    picks: dict[str, dict[str, str]] = {}
    mouse_dir = probe.parent.parent
    for path in sorted(probe.glob("xyz_picks*.json")):
        match = PICKS_RE.match(path.name)
        if match:
            gui = "allen" if match.group("image") else "ibl"
            picks.setdefault(match.group("suffix"), {})[gui] = f"`{path.name}`"
            if str(path.relative_to(mouse_dir)) in ccf_only_picks:
                picks[match.group("suffix")]["allen"] = NOT_PRODUCED
    if (probe / "spikes.times.npy").is_file():
        ephys = "spikes, clusters, channels and QC (IBL ALF)"
    elif (probe / "sorting_error.txt").is_file():
        ephys = "channels and QC only; `sorting_error.txt` says why there are no spikes"
    elif (probe / "channels.localCoordinates.npy").is_file():
        ephys = "channels and QC only"
    else:
        ephys = "none (see `run_report.json`)"
    lines = [f"### Probe folder `{_rel(results_root, probe)}`", "", f"Ephys: {ephys}.", ""]
    suffixes = outputs.channel_regions_suffixes(outputs.channel_regions_dir(probe))
    if suffixes:
        ordered = sorted(suffixes, key=lambda s: (len(s), s))  # _shank2 before _shank10
        shanks = ", ".join(s.removeprefix("_shank") or "all" for s in ordered)
        where = f"`{outputs.CHANNEL_REGIONS_DIR}/`"
        lines += [f"Channel regions from the histology track (shank {shanks}): {where}.", ""]
    if not picks:
        return [*lines, "No pick files (see `run_report.json`)."]
    lines += ["| shank | Allen GUI picks | IBL GUI picks |", "|---|---|---|"]
    for suffix in sorted(picks, key=lambda s: (len(s), s)):
        shank = suffix.removeprefix("_shank") or "all"
        found = picks[suffix]
        lines.append(
            f"| {shank} | {found.get('allen', 'missing')} | {found.get('ibl', 'missing')} |"
        )
    return lines
