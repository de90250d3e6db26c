"""The output layout (every path the capsule writes) and atomic writers."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

EFFECTIVE_CONFIG_NAME = "effective_config.json"
VALIDATION_REPORT_NAME = "validation_report.json"
RUN_REPORT_NAME = "run_report.json"
LOG_FILE_NAME = "alignprep.log"
LOCK_NAME = ".alignprep.lock"
STATE_DIR = ".alignprep"  # re-run state inside each mouse folder
RESULTS_README_NAME = "README.md"
_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as one file or folder name (None when it can).

    Manifest cells name folders and files under the data and results roots, so a value that
    could climb out of them or hide itself (``..``, a separator, a drive letter, a control
    character) is refused rather than joined to a path.
    """
    if value in (".", ".."):
        return "is a relative path component"
    if ".." in value:
        return "contains '..'"
    if "/" in value or "\\" in value:
        return "contains a path separator"
    if _DRIVE.match(value):
        return "starts with a drive letter"
    bad = sorted({f"U+{ord(c):04X}" for c in value if ord(c) < 32 or ord(c) == 127})
    if bad:
        return f"contains control character(s) {', '.join(bad)}"
    return None


def child(root: Path, *names: str) -> Path:
    """``root / name / ...`` where every name is one plain path component (never climbs out)."""
    for name in names:
        problem = name_problem(name) if name else "is empty"
        if problem:
            raise ValueError(f"output name {name!r} {problem}")
    return root.joinpath(*names)


def validation_report_path(results_root: Path) -> Path:
    """``<results>/validation_report.json``: every pre-flight check of the run."""
    return results_root / VALIDATION_REPORT_NAME


def log_path(results_root: Path) -> Path:
    """``<results>/alignprep.log``: the run's log, the same lines as the console."""
    return results_root / LOG_FILE_NAME


def lock_path(results_root: Path) -> Path:
    """``<results>/.alignprep.lock``: held by the one run writing there."""
    return results_root / LOCK_NAME


def run_report_path(results_root: Path, mouse_id: str) -> Path:
    """``<results>/<mouse_id>/run_report.json``: every item, status, reason and time."""
    return mouse_dir(results_root, mouse_id) / RUN_REPORT_NAME


def state_paths(mouse: Path) -> dict[str, Path]:
    """The re-run state of a mouse folder: ``state.json`` and the digest cache."""
    base = mouse / STATE_DIR
    return {"state": base / "state.json", "digests": base / "digests.json"}


def effective_config_path(results_root: Path) -> Path:
    """Where the effective configuration of a run is written."""
    return results_root / EFFECTIVE_CONFIG_NAME


def _file_mode() -> int:
    """Permissions a plain ``open(..., "w")`` would give: 0o666 minus the umask."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


TEMP_MARK = ".alignprep-tmp-"
"""Every temporary file or folder this package creates has this in its name (and nothing else)."""
_LEGACY_TEMP = (  # names of earlier versions, also removed when found
    re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.nrrd)?$"),
    re.compile(r"^.+\.tmp-\d+$"),
)


def is_temp_name(name: str) -> bool:
    """Whether ``name`` is a temporary name of this package (never an output)."""
    return TEMP_MARK in name or any(r.match(name) for r in _LEGACY_TEMP)


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp") -> Iterator[Path]:
    """A temporary sibling to write; on success it becomes ``path`` (readable by others).

    A reader never sees a partial file: either the old content or the new one. On failure the
    temporary file is removed; after a kill, the next run removes it
    (:func:`remove_stale_temp_files`).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}{TEMP_MARK}", suffix=suffix, dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())  # mkstemp creates 0600; outputs are shared
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def temp_dir_beside(path: Path) -> Path:
    """A new private folder next to ``path``, to build ``path``'s content before committing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{path.name}{TEMP_MARK}", dir=path.parent))


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    When ``path`` already holds exactly ``data`` it is left alone, so a re-run that produces the
    same bytes rewrites nothing.
    """
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return path
    except OSError:
        pass
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return path


def scratch_dir(scratch_root: Path, what: str) -> tempfile.TemporaryDirectory:
    """A private scratch folder (removed on exit; after a kill, by the next run's cleanup)."""
    scratch_root.mkdir(parents=True, exist_ok=True)
    prefix = f"{TEMP_MARK}{os.getpid()}-{what}-"
    return tempfile.TemporaryDirectory(prefix=prefix, dir=scratch_root)


def remove_stale_scratch(scratch_root: Path) -> list[Path]:
    """Remove the scratch folders and files (``<TEMP_MARK><pid>-...``) of processes that no longer
    exist, directly under ``scratch_root`` (scratch may be shared by several runs)."""
    removed = []
    pattern = re.compile(re.escape(TEMP_MARK) + r"(\d+)-")
    for path in scratch_root.iterdir() if scratch_root.is_dir() else ():
        match = pattern.match(path.name)
        if match and not _pid_alive(int(match.group(1))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_files(root: Path) -> list[Path]:
    """Delete temporary files and folders of interrupted runs below ``root`` (never outputs).

    Call it only while holding the results lock: then no other run is writing under ``root``.
    """
    removed = []
    if root.is_dir():
        for path in sorted(root.rglob("*"), key=lambda p: len(p.parts)):
            if not is_temp_name(path.name) or not path.exists():
                continue
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write ``obj`` as :func:`json_bytes` (stable bytes for equal content), atomically."""
    return write_bytes_atomic(path, json_bytes(obj))


# --- layout ----------------------------------------------------------------------------------

TRACK_FRAMES = ("spim", "template", "ccf", "bregma_xyz")


DATAPACKAGE_NAME = "datapackage.json"


def datapackage_path(results_root: Path, mouse_id: str) -> Path:
    """``<results>/<mouse_id>/datapackage.json``."""
    return mouse_dir(results_root, mouse_id) / DATAPACKAGE_NAME


def processing_path(results_root: Path, mouse_id: str) -> Path:
    """``<results>/<mouse_id>/processing.json`` (aind-data-schema provenance)."""
    return mouse_dir(results_root, mouse_id) / "processing.json"


def manifest_copy_path(results_root: Path) -> Path:
    """``<results>/manifest.csv``: the manifest rows actually used."""
    return results_root / "manifest.csv"


def mouse_dir(results_root: Path, mouse_id: str) -> Path:
    """``<results>/<mouse_id>`` (the id as text, leading zeros kept)."""
    return child(results_root, mouse_id)


def probe_dir(results_root: Path, mouse_id: str, recording_id: str, collection: str) -> Path:
    """The probe folder both GUIs read: ``<mouse>/<recording_id>/<ephys_collection>``."""
    return child(mouse_dir(results_root, mouse_id), recording_id, collection)


def picks_paths(probe: Path, suffix: str) -> dict[str, Path]:
    """``image_space``: Allen GUI picks (image RAS um); ``bregma``: IBL GUI picks (bregma um)."""
    return {
        "image_space": probe / f"xyz_picks{suffix}_image_space.json",
        "bregma": probe / f"xyz_picks{suffix}.json",
    }


def track_paths(results_root: Path, mouse_id: str, track_id: str, suffix: str) -> dict[str, Path]:
    """Per-stage copies of one track (outputs.md §4)."""
    base = mouse_dir(results_root, mouse_id) / "track_data"
    name = child(base, f"{track_id}{suffix}").name
    return {
        "spim_fcsv": base / "spim" / f"{name}.fcsv",
        "template_fcsv": base / "template" / f"{name}.fcsv",
        "ccf_fcsv": base / "ccf" / f"{name}.fcsv",
        "ccf_um": base / "ccf" / f"{name}_ccf_um.json",
        "image_space": base / "bregma_xyz" / f"{name}_image_space.json",
        "bregma": base / "bregma_xyz" / f"{name}_ccf.json",
    }


# --- formats ---------------------------------------------------------------------------------


def json_bytes(obj: Any) -> bytes:
    """Indented, key-sorted UTF-8 JSON: equal content gives equal bytes."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def fcsv_bytes(points_lps_mm: Any, label: str) -> bytes:
    """3D Slicer markups FCSV (v4.11 layout, LPS, mm), one row per point in order."""
    lines = [
        "# Markups fiducial file version = 4.11",
        "# CoordinateSystem = LPS",
        "# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID",
    ]
    for k, (x, y, z) in enumerate(np.asarray(points_lps_mm, dtype=float).tolist()):
        lines.append(
            f"vtkMRMLMarkupsFiducialNode_{k},{x!r},{y!r},{z!r},0,0,0,1,1,1,0,{label}-{k + 1},,"
        )
    return ("\n".join(lines) + "\n").encode("utf-8")


def fcsv_points(data: bytes) -> np.ndarray:
    """The (n, 3) points of an FCSV file written by :func:`fcsv_bytes` (its x, y, z columns)."""
    rows = [ln.split(",") for ln in data.decode().splitlines() if ln and not ln.startswith("#")]
    return np.array([[float(r[1]), float(r[2]), float(r[3])] for r in rows]).reshape(-1, 3)


def write_nrrd_atomic(
    path: Path, volume_ijk: np.ndarray, header: Any, compression_level: int = 1
) -> Path:
    """A gzip NRRD in LPS millimetres (ITK's layout), written to a temp name then renamed.

    ``volume_ijk`` is in ITK index order (i, j, k); ``header`` is an
    :class:`alignprep.space.frames.ImageHeader` of the same size.
    """
    import nrrd

    if tuple(volume_ijk.shape) != tuple(header.size):
        raise ValueError(f"{path.name}: array {volume_ijk.shape} vs header size {header.size}")
    fields = {
        "dimension": 3,
        "space": "left-posterior-superior",
        "space directions": (header.direction * header.spacing).T,
        "kinds": ["domain", "domain", "domain"],
        "endian": "little",
        "encoding": "gzip",
        "space origin": header.origin,
    }
    with atomic_path(path, suffix=".tmp.nrrd") as tmp:
        nrrd.write(str(tmp), volume_ijk, fields, compression_level=compression_level)
        _neutral_nrrd_date(tmp)
    return path


NRRD_DATE = re.compile(rb"# on \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\(GMT\)\.\n")
NEUTRAL_DATE = b"# on 1970-01-01 00:00:00(GMT).\n"


def _neutral_nrrd_date(path: Path) -> None:
    """Replace pynrrd's write-time comment by a fixed one (same length, in place).

    pynrrd always writes ``# on <UTC date time>(GMT).``; without this, equal volumes written in
    different seconds differ byte for byte, and re-runs and executors could not be compared.
    """
    with path.open("r+b") as fh:
        head = fh.read(256)
        match = NRRD_DATE.search(head)
        if match and len(match.group(0)) == len(NEUTRAL_DATE):
            fh.seek(match.start())
            fh.write(NEUTRAL_DATE)


def histology_paths(results_root: Path, mouse_id: str) -> dict[str, Path]:
    """Fixed-name files of ``image_space_histology/`` (outputs.md §2)."""
    base = mouse_dir(results_root, mouse_id) / "image_space_histology"
    return {
        "registration": base / "histology_registration.nrrd",
        "registration_pipeline": base / "histology_registration_pipeline.nrrd",
        "registration_pipeline_json": base / "histology_registration_pipeline.json",
        "ccf_template": base / f"ccf_in_{mouse_id}.nrrd",
        "labels": base / f"labels_in_{mouse_id}.nrrd",
    }


def channel_path(results_root: Path, mouse_id: str, channel: str) -> Path:
    """``image_space_histology/<channel>.nrrd`` for a non-registration channel."""
    return child(mouse_dir(results_root, mouse_id) / "image_space_histology", f"{channel}.nrrd")


def ccf_space_path(results_root: Path, mouse_id: str, channel: str) -> Path:
    """``ccf_space_histology/histology_<channel>.nrrd`` (QC)."""
    return child(
        mouse_dir(results_root, mouse_id) / "ccf_space_histology", f"histology_{channel}.nrrd"
    )


# --- channel regions from the histology track (not an alignment) ------------------------------

CHANNEL_REGIONS_DIR = "regions_from_histology_track"
"""Folder inside a probe folder: a separate ALF collection whose names no GUI reads."""


def channel_regions_dir(probe: Path) -> Path:
    """``<probe>/regions_from_histology_track``: channel regions before any alignment."""
    return probe / CHANNEL_REGIONS_DIR


_REGIONS_CHANNELS = ("histology_track_channels", ".json")  # name = stem + suffix + extension


def channel_regions_paths(probe: Path, suffix: str) -> dict[str, Path]:
    """Per GUI shank: ``channels`` (JSON, every channel and unit), ``regions`` (CSV table)."""
    base = channel_regions_dir(probe)
    stem, ext = _REGIONS_CHANNELS
    return {
        "channels": base / f"{stem}{suffix}{ext}",
        "regions": base / f"histology_track_regions{suffix}.csv",
    }


def channel_regions_suffixes(folder: Path) -> list[str]:
    """The GUI shank suffixes of the per-shank files in a channel regions folder."""
    stem, ext = _REGIONS_CHANNELS
    return [p.name[len(stem) : -len(ext)] for p in folder.glob(f"{stem}*{ext}")]


# --- QC pictures --------------------------------------------------------------------------

QC_DIR = "qc"
QC_INDEX_NAME = "figures.json"  # what the QC item drew: the page and the QC metadata read it
QC_PAGE_NAME = "index.html"
QUALITY_CONTROL_NAME = "quality_control.json"


def qc_dir(results_root: Path, mouse_id: str) -> Path:
    """``<mouse>/qc``: the QC figures, their index and the page."""
    return mouse_dir(results_root, mouse_id) / QC_DIR


def qc_figure_name(*parts: str) -> str:
    """A figure's file name from its parts (``track``, ``ProbeA``, ``Ex_488``) -> ``.png``."""
    return child(Path("."), "_".join(p for p in parts if p) + ".png").name


def remove_dir(path: Path) -> None:
    """Remove a folder this package wrote (missing is fine)."""
    shutil.rmtree(path, ignore_errors=True)


def replace_dir(built: Path, target: Path) -> Path:
    """Put the finished folder ``built`` (from :func:`temp_dir_beside`) at ``target``.

    The old folder is first renamed to a temporary name, so a reader sees the old folder, no
    folder, or the new one, never a mix; after a kill the next run removes the leftovers.
    """
    os.chmod(built, 0o777 & ~_umask())  # mkdtemp creates 0700; outputs are shared
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}{TEMP_MARK}old-", dir=target.parent))
        os.replace(target, old / target.name)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
