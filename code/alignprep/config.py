"""Configuration: ``code/params.json`` < ``--params`` < flags -> one frozen, validated config.

Every default lives in ``code/params.json``; the models below declare types and meanings only,
so there is one source of truth for defaults. Values may arrive as strings (Code Ocean App
Panel), so booleans accept "true"/"false"/"1"/"0"/"yes"/"no" and numbers accept numeric text.
"""

from __future__ import annotations

import contextlib
import json
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveFloat,
    PrivateAttr,
    ValidationError,
)

from .errors import ConfigError
from .resources import available_cpus

DEFAULTS_PATH = Path(__file__).resolve().parents[1] / "params.json"
"""``code/params.json``: the defaults of every key."""


# --- value parsing -----------------------------------------------------------------------


def _blank_to_none(value: Any) -> Any:
    """An empty/"null"/"none" string (App Panel) means "not set" for optional paths."""
    if isinstance(value, str) and value.strip().lower() in {"", "null", "none"}:
        return None
    return value


def _parse_n_jobs(value: Any) -> int | float:
    """Accept -1, a fraction in (0, 1), or a positive integer (numbers or numeric text)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a job count")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValueError(f"not a number: {value!r}") from None
    if not isinstance(value, int | float):
        raise ValueError(f"not a number: {value!r}")
    if value == -1:
        return -1
    if 0 < value < 1:
        return float(value)
    if value >= 1 and float(value).is_integer():
        return int(value)
    raise ValueError(
        f"{value!r} is none of: -1 (all cores), a fraction 0 < x < 1, a positive integer"
    )


def _as_list(value: Any) -> Any:
    """A list from JSON, or from text as the App Panel and the command line give it
    (several values and/or comma-separated, or a JSON list as text; blank means empty)."""
    items = list(value) if isinstance(value, list | tuple) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str) and item.strip().startswith("["):
            with contextlib.suppress(json.JSONDecodeError):
                item = json.loads(item)  # the App Panel passes a list default as JSON text
        if isinstance(item, str):
            out += [part.strip() for part in item.split(",") if part.strip()]
        elif isinstance(item, list):
            out += item
        else:
            return value  # not text: let the type check name it
    return out


SELECTOR_KINDS = {
    "histology": False,
    "ephys": None,
    "tracks": None,
    "channel_regions": None,
    "qc": False,
    "probe": True,
    "mouse": True,
}


def _selectors(value: tuple[str, ...]) -> tuple[str, ...]:
    """Check ``only``: each selector is a known kind, with a target where one is required."""
    for selector in value:
        kind, colon, target = selector.partition(":")
        needs = SELECTOR_KINDS.get(kind, "unknown")
        if needs == "unknown" or (needs is True and not target) or (needs is False and colon):
            raise ValueError(
                f"{selector!r} is not a selector; expected histology, ephys, tracks, "
                "channel_regions (each of the last three optionally :<recording>/<probe>), "
                "qc, probe:<recording>/<probe> or mouse:<id>"
            )
    return value


def _demo(value: Any) -> Any:
    """``--demo`` alone (true) is the light-sheet demo; false or blank: no demo."""
    text = str(value).strip().lower() if isinstance(value, (str, bool)) else value
    return {"true": "light_sheet", "false": "off", "": "off"}.get(text, text)


def _upper(value: Any) -> Any:
    """Case-insensitive choices (``--log-level debug``)."""
    return value.strip().upper() if isinstance(value, str) else value


OptionalPath = Annotated[Path | None, BeforeValidator(_blank_to_none)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
Selectors = Annotated[tuple[str, ...], BeforeValidator(_as_list), AfterValidator(_selectors)]
PathList = Annotated[tuple[Path, ...], BeforeValidator(_as_list)]
NJobs = Annotated[int | float, BeforeValidator(_parse_n_jobs)]


# --- the models ------------------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class HistologyParams(_Section):
    """Histology volume options."""

    desired_voxel_size_um: PositiveFloat = Field(
        description="Read the coarsest OME-Zarr level whose finest spacing is <= this (um).",
        json_schema_extra={"plausible": [1.0, 1000.0], "unit": "um"},
    )
    output_voxel_size_um: PositiveFloat = Field(
        description="Isotropic voxel size of the image-space output grid (um).",
        json_schema_extra={"plausible": [5.0, 200.0], "unit": "um"},
    )
    write_ccf_space: bool = Field(
        description="Also write channels warped onto the CCF 25 um grid (QC)."
    )


class TrackParams(_Section):
    """Probe-track options."""

    ng_voxel_origin: Literal["center", "corner"] = Field(
        description="Neuroglancer coordinate convention: 'center' = voxel centre (peer, "
        "OME-NGFF); 'corner' = voxel i spans [i, i+1), so 0.5 is subtracted."
    )


class ReferenceParams(_Section):
    """Reference volumes and transforms; relative paths resolve against data_root."""

    ccf_template: Path = Field(description="Allen CCFv3 average template, 25 um.")
    ccf_labels_compact: Path = Field(description="Compact lateralized CCF labels (NRRD).")
    ccf_labels_unique_values: Path = Field(
        description="Lookup of compact label -> signed Allen id (.npz, key unique_labels)."
    )
    lca_template: Path = Field(description="SmartSPIM LCA template, 25 um.")
    template_to_ccf_dir: Path = Field(
        description="Folder with syn_0GenericAffine.mat and syn_1InverseWarp.nii.gz."
    )


class EphysParams(_Section):
    """Ephys extraction options (aind-ephys-ibl-gui-conversion)."""

    rms_window_duration_s: PositiveFloat = Field(
        description="Length (s) of each RMS / LFP power window; a shorter raw stream is refused.",
        json_schema_extra={"plausible": [0.1, 600.0], "unit": "s"},
    )
    rms_window_interval_s: PositiveFloat = Field(
        description="Largest spacing (s) between those windows (shortened for short recordings).",
        json_schema_extra={"plausible": [1.0, 36000.0], "unit": "s"},
    )
    min_duration_s: NonNegativeFloat = Field(
        description="Analyzers shorter than this (s) are left out, with a note; 0 keeps every "
        "analyzer the stage selected.",
        json_schema_extra={"plausible": [0.0, 86400.0], "unit": "s"},
    )
    drop_removed_units: bool = Field(
        description="True drops the units a curated/<rec>/curation.json lists as removed; "
        "false keeps them. Proposed merges are never applied."
    )


class CheckParams(_Section):
    """Pre-flight resource thresholds."""

    min_free_disk_gb: float = Field(
        ge=0,
        description="Error when free space on results/scratch is below the run's estimated "
        "need or below this floor (GB).",
    )
    warn_free_disk_gb: float = Field(
        ge=0, description="Warning below twice the estimated need or below this (GB)."
    )
    min_available_ram_gb: float = Field(
        ge=0,
        description="Error when available memory (container limit included) is below the "
        "run's estimated peak or below this floor (GB).",
    )


class PipelineConfig(_Section):
    """The whole, validated configuration of one run (frozen)."""

    data_root: Path = Field(description="Read-only input root (Code Ocean /data).")
    results_root: Path = Field(description="Output root (Code Ocean /results).")
    scratch_root: Path = Field(description="Scratch space (Code Ocean /scratch).")
    neuroglancer: OptionalPath = Field(
        description="Neuroglancer state JSON; null = the only *.json at the top of data_root."
    )
    manifest: OptionalPath = Field(
        description="Manifest CSV; null = the only *.csv at the top of data_root."
    )
    n_jobs: NJobs = Field(
        description="Worker processes: -1 = all cores, 0 < x < 1 = that fraction of the cores, "
        "or a positive integer; always capped by the CO_CPUS environment variable.",
        json_schema_extra={"expected": "-1, a fraction 0 < x < 1, or a positive integer"},
    )
    skip_ephys: bool = Field(description="Do not extract ephys (histology and tracks only).")
    no_qc: bool = Field(
        description="Do not draw the QC figures, qc/index.html and quality_control.json."
    )
    validate_only: bool = Field(description="Run the pre-flight checks only; exit 0 or 3.")
    use_async: bool = Field(description="Run the plan on the asyncio executor.")
    executor: Literal["auto", "serial", "processes", "async", "dask"] = Field(
        description="auto: a process pool when n_jobs > 1 (asyncio with use_async, Dask with a "
        "scheduler address), else serial; dask without an address starts a LocalCluster."
    )
    scheduler_address: OptionalText = Field(
        description="Dask scheduler to run the plan on (tcp://host:port); null = none."
    )
    only: Selectors = Field(
        description="Run a slice of the plan (comma-separated): histology, ephys, tracks, "
        "channel_regions (the last three optionally :<recording>/<probe>), qc, "
        "probe:<recording>/<probe> (its ephys, tracks and channel regions), mouse:<id>; "
        "empty = everything. "
        "A slice writes no datapackage: merge slices with collect.",
        json_schema_extra={"expected": "a comma-separated list of selectors (blank = everything)"},
    )
    collect: PathList = Field(
        description="Results folders of slice runs to merge into results_root (comma-separated), "
        "then package them as one run; empty = a normal run.",
        json_schema_extra={"expected": "a comma-separated list of folders (blank = none)"},
    )
    allow_partial: bool = Field(description="Exit 0 even when some items failed.")
    demo: Annotated[Literal["off", "light_sheet", "ccf"], BeforeValidator(_demo)] = Field(
        description="Build a synthetic demo dataset in scratch (or reuse the one an earlier "
        "demo built there with the same code) and run on it: light_sheet (--demo alone: "
        "SmartSPIM, Neuroglancer tracks, ephys) or ccf (no light-sheet data: tracks from "
        "tracing tools already in the CCF, ephys); off = a normal run."
    )
    log_level: Annotated[Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_upper)] = (
        Field(description="Logging verbosity.")
    )
    histology: HistologyParams
    tracks: TrackParams
    references: ReferenceParams
    ephys: EphysParams
    checks: CheckParams

    _effective_n_jobs: int = PrivateAttr(default=1)

    @property
    def effective_n_jobs(self) -> int:
        """The number of worker processes this run uses (after every n_jobs rule)."""
        return self._effective_n_jobs

    def input_path(self, relative: Path | str, key: str | None = None) -> Path:
        """An input path resolved against ``data_root``; InputError if it leads outside it.

        ``key`` names the parameter or manifest column the path came from, for the message.
        """
        from .inputs.locate import confine

        return confine(_under(self.data_root, Path(relative)), self.data_root, key)

    def input_paths(self) -> dict[str, Path]:
        """Every path parameter that names an input (``references.*``, the state, the manifest)."""
        paths = {
            f"references.{k}": getattr(self.references, k) for k in ReferenceParams.model_fields
        }
        for key in ("neuroglancer", "manifest"):
            if getattr(self, key) is not None:
                paths[key] = getattr(self, key)
        return paths

    def to_json_dict(self) -> dict[str, Any]:
        """The effective configuration as written to the results folder."""
        out = self.model_dump(mode="json")
        out["effective"] = {"n_jobs": self.effective_n_jobs}
        return out


# --- building ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamLayer:
    """One source of parameters, named for error messages (e.g. "--params")."""

    name: str
    values: Mapping[str, Any]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into ``base``: nested objects merge key by key, others replace."""
    merged: dict[str, Any] = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_defaults(path: Path = DEFAULTS_PATH) -> dict[str, Any]:
    """Read the defaults file (``code/params.json``)."""
    return _read_json_object(path, f"defaults file {path}")


def parse_params_arg(text: str) -> ParamLayer:
    """``--params``: an inline JSON object, or the path of a JSON file."""
    if text.lstrip().startswith("{"):
        try:
            values = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--params: invalid JSON ({exc.msg} at char {exc.pos})") from None
        if not isinstance(values, dict):
            raise ConfigError("--params: expected a JSON object")
        return ParamLayer("--params", values)
    path = Path(text).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"--params: {text!r} is neither a JSON object (starting with '{{') nor an existing file"
        )
    return ParamLayer(f"--params file {path}", _read_json_object(path, f"--params file {path}"))


def parse_co_cpus(environ: Mapping[str, str]) -> int | None:
    """The Code Ocean ``CO_CPUS`` cap, if set."""
    raw = environ.get("CO_CPUS")
    if raw is None or not raw.strip():
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"environment variable CO_CPUS={raw!r}: expected a positive integer")
    return value


def resolve_n_jobs(n_jobs: int | float, cpu_count: int, co_cpus: int | None) -> int:
    """Effective worker count from the n_jobs rules.

    -1 = all cores; 0 < x < 1 = ``floor(x * cores)``, at least 1; a positive integer as given.
    ``CO_CPUS`` (when set) caps the number of cores and every result.
    """
    cores = min(cpu_count, co_cpus) if co_cpus else cpu_count
    if n_jobs == -1:
        value = cores
    elif 0 < n_jobs < 1:
        value = max(1, int(n_jobs * cores))
    else:
        value = int(n_jobs)
    return min(value, co_cpus) if co_cpus else value


def build_config(
    layers: list[ParamLayer] | None = None,
    defaults: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpu_count: int | None = None,
) -> PipelineConfig:
    """Merge defaults and layers (later wins), validate, resolve paths and n_jobs.

    Raises
    ------
    ConfigError
        Naming the offending key, what was expected and where the value came from.
    """
    defaults_layer = ParamLayer(
        f"defaults file {DEFAULTS_PATH}", defaults if defaults is not None else load_defaults()
    )
    all_layers = [defaults_layer, *(layers or [])]
    problems: list[str] = []
    for layer in all_layers:
        problems += _unknown_keys(layer.values, PipelineConfig, (), layer.name)
    if problems:
        raise ConfigError("\n".join(problems))
    merged: dict[str, Any] = {}
    for layer in all_layers:
        merged = deep_merge(merged, layer.values)
    try:
        cfg = PipelineConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, all_layers)) from None

    problems = _implausible(cfg, PipelineConfig, ())
    if problems:
        raise ConfigError("\n".join(problems))
    cfg = _resolve_paths(cfg, cwd or Path.cwd())
    environ = os.environ if environ is None else environ
    cfg._effective_n_jobs = resolve_n_jobs(
        cfg.n_jobs, cpu_count or available_cpus(), parse_co_cpus(environ)
    )
    return cfg


# --- helpers ---------------------------------------------------------------------------------


def _under(root: Path, path: Path) -> Path:
    path = path.expanduser()
    return path if path.is_absolute() else root / path


def _absolute(path: Path, cwd: Path) -> Path:
    return Path(os.path.normpath(_under(cwd, path)))


def _resolve_paths(cfg: PipelineConfig, cwd: Path) -> PipelineConfig:
    data_root = _absolute(cfg.data_root, cwd)
    refs = cfg.references
    return cfg.model_copy(
        update={
            "data_root": data_root,
            "results_root": _absolute(cfg.results_root, cwd),
            "scratch_root": _absolute(cfg.scratch_root, cwd),
            "neuroglancer": cfg.neuroglancer and _under(data_root, cfg.neuroglancer),
            "manifest": cfg.manifest and _under(data_root, cfg.manifest),
            "collect": tuple(_absolute(p, cwd) for p in cfg.collect),
            "references": refs.model_copy(
                update={
                    name: _under(data_root, getattr(refs, name))
                    for name in ReferenceParams.model_fields
                }
            ),
        }
    )


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what}: cannot read ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{what}: invalid JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{what}: expected a JSON object at the top level")
    return values


UNIT_NAMES = {"um": "micrometres", "s": "seconds"}
UNIT_SLIPS = {"um": (1e3, "millimetres"), "s": (1e-3, "milliseconds")}


def _implausible(values: BaseModel, model: type[BaseModel], prefix: tuple[str, ...]) -> list[str]:
    """Values outside a field's plausible range, with the unit and the likely slip named.

    A number in the wrong unit (0.03 for a 30 um voxel) passes a type check but would run for
    hours or give nonsense; the range catches it before anything runs.
    """
    problems = []
    for name, field in model.model_fields.items():
        value = getattr(values, name)
        sub = _section_model(field.annotation)
        if sub is not None:
            problems += _implausible(value, sub, (*prefix, name))
            continue
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "plausible" not in extra or value is None:
            continue
        lo, hi = extra["plausible"]
        unit = str(extra["unit"])
        if lo <= value <= hi:
            continue
        key = ".".join((*prefix, name))
        text = (
            f"key '{key}' = {value:g} {unit} is outside the plausible range [{lo:g}, {hi:g}] "
            f"{unit}; the value is in {UNIT_NAMES.get(unit, unit)}"
        )
        factor, slip = UNIT_SLIPS.get(unit, (None, ""))
        if factor and lo <= value * factor <= hi:
            text += f" (was it given in {slip}? {value:g} {slip} = {value * factor:g} {unit})"
        problems.append(text)
    return problems


def _section_model(annotation: Any) -> type[BaseModel] | None:
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


def _unknown_keys(
    values: Mapping[str, Any], model: type[BaseModel], prefix: tuple[str, ...], source: str
) -> list[str]:
    problems = []
    fields = model.model_fields
    for key, value in values.items():
        dotted = ".".join((*prefix, str(key)))
        if key not in fields:
            where = f" in '{'.'.join(prefix)}'" if prefix else ""
            problems.append(
                f"{source}: unknown key '{dotted}'; allowed keys{where}: {', '.join(fields)}"
            )
            continue
        sub = _section_model(fields[key].annotation)
        if sub is not None and isinstance(value, Mapping):
            problems += _unknown_keys(value, sub, (*prefix, key), source)
    return problems


def expected_type(model: type[BaseModel], name: str) -> str:
    """Readable expected type of a field, for messages and the README table."""
    field = model.model_fields[name]
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "expected" in extra:
        return str(extra["expected"])
    return _type_text(field.annotation)


def _type_text(annotation: Any) -> str:
    sub = _section_model(annotation)
    if sub is not None:
        return f"an object with keys {', '.join(sub.model_fields)}"
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        return " or ".join("null" if a is type(None) else _type_text(a) for a in args)
    names = {
        bool: 'a boolean (true/false; also "true"/"false"/"1"/"0"/"yes"/"no")',
        int: "an integer",
        float: "a number",
        Path: "a path",
        str: "a string",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _describe_errors(exc: ValidationError, layers: list[ParamLayer]) -> str:
    lines = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        model: type[BaseModel] = PipelineConfig
        for part in loc[:-1]:  # walk nested sections to the field's own model
            field = model.model_fields.get(part)
            nxt = _section_model(field.annotation) if field else None
            if nxt is None:
                break
            model = nxt
        key = ".".join(loc)
        name = loc[-1] if loc else ""
        expected = expected_type(model, name) if name in model.model_fields else "?"
        if err["type"] == "missing":
            lines.append(f"missing key '{key}': expected {expected}")
            continue
        source = next((ly.name for ly in reversed(layers) if _has_path(ly.values, loc)), "?")
        lines.append(
            f"{source}: key '{key}': expected {expected}, got {err['input']!r} ({err['msg']})"
        )
    return "\n".join(lines)


def _has_path(values: Mapping[str, Any], loc: tuple[str, ...]) -> bool:
    node: Any = values
    for part in loc:
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True
