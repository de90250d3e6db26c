"""Command-line parsing only: flags -> parameter layers -> config -> pipeline -> exit code.

Every parameter of ``code/params.json`` has a flag, generated from the configuration model so the
two cannot drift: ``--n-jobs`` and ``--n_jobs`` (Code Ocean's App Panel passes the underscore
spelling), ``--histology-output-voxel-size-um`` / ``--histology_output_voxel_size_um`` /
``--histology.output_voxel_size_um`` for nested keys. Abbreviations are refused (``--n-job`` is an
error, never ``--n-jobs``); a blank value means "the default", as the App Panel sends an empty
field.
"""

from __future__ import annotations

import argparse
import json
import sys
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from . import __version__
from .config import (
    DEFAULTS_PATH,
    ParamLayer,
    PipelineConfig,
    build_config,
    expected_type,
    load_defaults,
    parse_params_arg,
)
from .errors import AlignprepError, ConfigError, ExitCode
from .logs import configure_logging, get_logger

#: Extra spellings of some keys (kept from earlier versions and the peer's CLI).
ALIASES = {"use_async": ("--async",)}
METAVARS = {"data_root": "DIR", "results_root": "DIR", "scratch_root": "DIR"}

EXIT_CODES_TEXT = """exit codes:
  0  success
  1  run failed (one or more requested items failed, unless allow_partial)
  2  usage or configuration error
  3  validation failed (--validate-only, or the run's own pre-flight checks)
  130 / 143  interrupted (SIGINT / SIGTERM); run again to resume"""


@dataclass(frozen=True)
class Flag:
    """One parameter's command-line flag(s)."""

    key: str  # dotted parameter key, e.g. "histology.output_voxel_size_um"
    names: tuple[str, ...]  # every accepted spelling, the canonical (hyphen) one first
    const: str | None  # the value of the flag given alone (booleans: "true"); None: required
    dest: str


#: Flags that may be given without a value, and what they mean then (besides booleans).
BARE_VALUES = {"demo": "light_sheet"}


def iter_parameters(
    model: type[BaseModel], defaults: Mapping[str, Any], prefix: str = ""
) -> list[tuple[str, Any, Any, type[BaseModel]]]:
    """Flatten the parameter tree: (dotted key, field info, default, owning model)."""
    rows = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        default = defaults.get(name) if isinstance(defaults, Mapping) else None
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            rows += iter_parameters(sub, default or {}, f"{prefix}{name}.")
        else:
            rows.append((f"{prefix}{name}", field, default, model))
    return rows


def flag_names(key: str) -> tuple[str, ...]:
    """``--a-b`` first, then ``--a_b`` (and ``--section.key`` for nested keys)."""
    flat = key.replace(".", "_")
    names = [f"--{flat.replace('_', '-')}", f"--{flat}", *ALIASES.get(key, ())]
    if "." in key:
        names.append(f"--{key}")
    return tuple(dict.fromkeys(names))


def flags() -> list[Flag]:
    """The flag of every parameter, in the order of the configuration model."""
    out = []
    for key, field, _default, _model in iter_parameters(PipelineConfig, {}):
        const = "true" if field.annotation is bool else BARE_VALUES.get(key)
        out.append(Flag(key, flag_names(key), const, "p__" + key.replace(".", "__")))
    return out


def build_parser(defaults: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """The argument parser; help texts show the defaults of ``code/params.json``."""
    if defaults is None:
        try:
            defaults = load_defaults()
        except ConfigError:
            defaults = {}
    parser = argparse.ArgumentParser(
        prog="alignprep",
        description=(
            "Prepare SmartSPIM histology, Neuroglancer probe tracks and spike-sorted "
            "Neuropixels recordings for the IBL ephys alignment GUIs. Parameters come from "
            f"{DEFAULTS_PATH} < --params < the flags below (a blank value means the default)."
        ),
        epilog=EXIT_CODES_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--params",
        metavar="JSON|FILE",
        help="JSON object or JSON file deep-merged over params.json (default: none)",
    )
    rows = {k: (f, d, m) for k, f, d, m in iter_parameters(PipelineConfig, defaults)}
    for flag in flags():
        field, default, model = rows[flag.key]
        expected = expected_type(model, flag.key.rsplit(".", 1)[-1])
        text = f"{field.description} [{expected}] (default: {json.dumps(default)})"
        if flag.const is not None:
            metavar = "BOOL" if flag.const == "true" else flag.key.upper()
            parser.add_argument(
                *flag.names, dest=flag.dest, nargs="?", const=flag.const, metavar=metavar, help=text
            )
        else:
            metavar = METAVARS.get(flag.key, flag.key.rsplit(".", 1)[-1].upper())
            many = "+" if typing.get_origin(field.annotation) is tuple else None
            parser.add_argument(*flag.names, dest=flag.dest, metavar=metavar, nargs=many, help=text)
    parser.add_argument("--version", action="version", version=f"alignprep {__version__}")
    return parser


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Layers in precedence order: params.json < --params < single flags (blank = unset)."""
    layers: list[ParamLayer] = []
    if args.params is not None and args.params.strip():
        layers.append(parse_params_arg(args.params))
    values: dict[str, Any] = {}
    for flag in flags():
        value = getattr(args, flag.dest)
        texts = value if isinstance(value, list) else [value]
        if value is None or all(isinstance(t, str) and not t.strip() for t in texts):
            continue
        node = values
        *sections, name = flag.key.split(".")
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    if values:
        layers.append(ParamLayer("command-line flags", values))
    return build_config(layers)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the capsule; return the process exit code.

    ``python -m alignprep`` runs this in a supervised child process
    (:mod:`alignprep.supervisor`), so SIGTERM and SIGINT stop it within seconds whatever it is
    doing.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)  # usage errors exit 2 here
    log = get_logger()
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        configure_logging("INFO")
        log.error("configuration error:\n%s", exc)
        return ExitCode.USAGE
    configure_logging(config.log_level)
    from .orchestration.run import run_pipeline  # imported after parsing: --help stays fast

    try:
        result = run_pipeline(config)
    except AlignprepError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except Exception:
        log.exception("run failed with an unexpected error")
        return ExitCode.RUN_FAILED
    return result.exit_code(config.allow_partial)
