"""Provenance: an aind-data-schema ``processing.json`` with one data process per stage that ran.

Each process carries the code (alignprep name, version and commit), the effective configuration
as its parameters, the stage's core library as its core dependency, and in its output
parameters the status and the installed versions of the key libraries. The model is built and
validated by aind-data-schema and serialised with its own ``model_dump_json``; the file is then
written atomically. Timestamps belong here, never in ``datapackage.json``.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__, outputs
from ..config import PipelineConfig
from ..logs import get_logger

if TYPE_CHECKING:
    from aind_data_schema.core.processing import Processing

log = get_logger("stages.provenance")

COMMIT_ENV = "ALIGNPREP_COMMIT"
CODE_URL_ENV = "ALIGNPREP_CODE_URL"
PIPELINE_NAME = "alignprep"
KEY_PACKAGES = (
    "antspyx",
    "numba",
    "scipy",
    "iblatlas",
    "spikeinterface",
    "aind-ephys-ibl-gui-conversion",
    "numpy",
    "nibabel",
    "pynrrd",
    "zarr",
    "matplotlib",
)
NOT_INSTALLED = "not installed"
_HEX = re.compile(r"^[0-9a-fA-F]{7,60}$")


@dataclass(frozen=True)
class _StageKind:
    process_type: str  # a ProcessName value
    name: str
    notes: str
    core: str | None  # distribution name of the core dependency
    output_path: str | None  # relative to the mouse folder


STAGES: dict[str, _StageKind] = {
    "histology": _StageKind(
        "Image atlas alignment",
        "alignprep histology",
        "CCF template and labels warped into the SmartSPIM image (point chain [T,F,T,F], "
        "ANTs's linear and genericLabel rules evaluated with numba on the decoded fields); "
        "channels resampled to the isotropic IRP grid; optional CCF-space QC volumes.",
        "numba",
        "image_space_histology",
    ),
    "tracks": _StageKind(
        "Other",
        "alignprep probe tracks",
        "Neuroglancer picks mapped SPIM -> template -> CCF -> IBL bregma (ANTs's rules, "
        "evaluated with numba on the decoded fields); GUI pick files.",
        "numba",
        "track_data",
    ),
    "ephys": _StageKind(
        "Ephys postprocessing",
        "alignprep ephys",
        "ALF extraction with aind-ephys-ibl-gui-conversion, normalised to IBL conventions.",
        "aind-ephys-ibl-gui-conversion",
        None,
    ),
    "channel_regions": _StageKind(
        "Other",
        "alignprep channel regions",
        "Each channel's and unit's brain region from the histology track alone (IBL's "
        "'Histology track' rule: axial position + 200 um tip along the picks), in "
        "regions_from_histology_track/ of each probe folder; not an ephys alignment.",
        "iblatlas",
        None,
    ),
    "qc": _StageKind(
        "Ephys visualization",
        "alignprep QC figures",
        "Pictures to check before aligning, drawn from the run's own outputs: registration "
        "overlay, each track on its histology slab, the tracks in the CCF, each probe's "
        "summary; qc/index.html and quality_control.json (aind-data-schema, pending review).",
        "matplotlib",
        "qc",
    ),
    "packaging": _StageKind(
        "Other",
        "alignprep packaging",
        "datapackage.json index (schema 4.3.0) of the histology, transforms, probes, their "
        "channel regions and the QC pictures.",
        "jsonschema",
        "datapackage.json",
    ),
}


@dataclass(frozen=True)
class StageRun:
    """One stage that ran: ``stage`` in :data:`STAGES`, timezone-aware start and end."""

    stage: str
    start: datetime
    end: datetime
    status: str = "ok"
    notes: str | None = None
    outputs: Mapping[str, Any] = field(default_factory=dict)  # extra output parameters
    input_data: tuple[tuple[str, str], ...] = ()  # (asset folder name, URL) the stage read


def software_versions(names: Sequence[str] = KEY_PACKAGES) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` when absent)."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = NOT_INSTALLED
    return out


def code_commit(
    code_dir: Path | None = None, environ: Mapping[str, str] | None = None, git: str = "git"
) -> str:
    """The code's commit: ``git rev-parse HEAD``, else ``$ALIGNPREP_COMMIT``, else "unknown".

    git is asked only when this package's own ``__init__.py`` is tracked in that checkout (an
    installed copy inside some other repository does not count). Never raises.
    """
    code_dir = Path(code_dir or Path(__file__).resolve().parents[1])
    environ = os.environ if environ is None else environ

    def run(*args: str) -> str | None:
        try:
            proc = subprocess.run(
                [git, "-C", str(code_dir), *args], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    if run("ls-files", "--error-unmatch", "__init__.py") is not None:
        head = run("rev-parse", "HEAD")
        if head and _HEX.match(head):
            return head
    return environ.get(COMMIT_ENV, "").strip() or "unknown"


def code_url(
    code_dir: Path | None = None, environ: Mapping[str, str] | None = None, git: str = "git"
) -> str:
    """Where the code lives: ``$ALIGNPREP_CODE_URL``, else the checkout's ``origin`` remote,
    else the code folder itself as a ``file://`` URL (never a made-up address)."""
    environ = os.environ if environ is None else environ
    if environ.get(CODE_URL_ENV, "").strip():
        return environ[CODE_URL_ENV].strip()
    code_dir = Path(code_dir or Path(__file__).resolve().parents[1])
    try:
        proc = subprocess.run(
            [git, "-C", str(code_dir), "remote", "get-url", "origin"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return code_dir.resolve().as_uri()


def build_processing(
    config: PipelineConfig | Mapping[str, Any],
    runs: Sequence[StageRun],
    commit: str | None = None,
    versions: Mapping[str, str] | None = None,
) -> Processing:
    """An aind-data-schema ``Processing`` (validated by its model) for the stages that ran."""
    from aind_data_schema.components.identifiers import Code, DataAsset, Software
    from aind_data_schema.core.processing import DataProcess, Processing, ProcessStage

    params = config.to_json_dict() if isinstance(config, PipelineConfig) else dict(config)
    commit = code_commit() if commit is None else commit
    versions = dict(software_versions() if versions is None else versions)
    commit_hash = commit if _HEX.match(commit) else None
    url = code_url()
    language = {"language": "Python", "language_version": platform.python_version()}
    stages = [run.stage for run in runs]
    if len(set(stages)) != len(stages):
        raise ValueError(f"each stage may appear once: {stages}")
    processes = []
    for run in sorted(runs, key=lambda r: r.start):
        kind = STAGES.get(run.stage)
        if kind is None:
            raise ValueError(f"unknown stage {run.stage!r}; expected one of {', '.join(STAGES)}")
        for t in (run.start, run.end):
            if t.tzinfo is None or t.utcoffset() is None:
                raise ValueError(f"stage {run.stage}: {t.isoformat()} is not timezone-aware")
        if run.end < run.start:
            raise ValueError(f"stage {run.stage}: ends before it starts")
        core = None
        if kind.core:
            core = Software(name=kind.core, version=_version(kind.core, versions))
        code = Code(
            url=url,
            name=PIPELINE_NAME,
            version=__version__,
            commit_hash=commit_hash,
            parameters=params,
            core_dependency=core,
            input_data=[DataAsset(name=n, url=u) for n, u in run.input_data] or None,
            **language,
        )
        notes = kind.notes if not run.notes else f"{kind.notes} {run.notes}"
        processes.append(
            DataProcess(
                process_type=kind.process_type,
                name=kind.name,
                stage=ProcessStage.PROCESSING,
                code=code,
                experimenters=[],
                pipeline_name=PIPELINE_NAME,
                start_date_time=run.start,
                end_date_time=run.end,
                output_path=kind.output_path,
                output_parameters={
                    "status": run.status,
                    "software_versions": versions,
                    **dict(run.outputs),
                },
                notes=notes,
            )
        )
    names = [p.name for p in processes]
    graph = {n: [] for n in names if n != STAGES["packaging"].name}
    if STAGES["packaging"].name in names:
        graph[STAGES["packaging"].name] = sorted(graph)
    pipeline = Code(url=url, name=PIPELINE_NAME, version=__version__, commit_hash=commit_hash)
    notes = None if commit_hash else f"code commit unknown (set {COMMIT_ENV})"
    return Processing(
        data_processes=processes, pipelines=[pipeline], dependency_graph=graph, notes=notes
    )


def _version(name: str, versions: Mapping[str, str]) -> str:
    if name in versions:
        return versions[name]
    return software_versions([name])[name]


def write_processing(
    config: PipelineConfig,
    mouse_id: str,
    runs: Sequence[StageRun],
    commit: str | None = None,
    versions: Mapping[str, str] | None = None,
) -> Path:
    """Write ``<results>/<mouse_id>/processing.json`` atomically; return its path."""
    processing = build_processing(config, runs, commit, versions)
    path = outputs.processing_path(config.results_root, mouse_id)
    text = processing.model_dump_json(indent=3)
    outputs.write_bytes_atomic(path, (text + "\n").encode("utf-8"))
    log.info("provenance: %s (%d process(es))", path, len(processing.data_processes))
    return path
