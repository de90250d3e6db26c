"""Command-line parsing only: flags -> parameter layers -> config -> pipeline -> exit code."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
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

# (flag, config key, metavar or None for a boolean flag). Boolean flags take an optional value
# ("--skip-ephys" = true; "--skip-ephys false" as Code Ocean's App Panel passes it).
FLAGS: tuple[tuple[str, str, str | None], ...] = (
    ("--data-root", "data_root", "DIR"),
    ("--results-root", "results_root", "DIR"),
    ("--scratch-root", "scratch_root", "DIR"),
    ("--neuroglancer", "neuroglancer", "JSON"),
    ("--manifest", "manifest", "CSV"),
    ("--n-jobs", "n_jobs", "N"),
    ("--skip-ephys", "skip_ephys", None),
    ("--validate-only", "validate_only", None),
    ("--async", "use_async", None),
    ("--allow-partial", "allow_partial", None),
    ("--demo", "demo", None),
    ("--log-level", "log_level", "LEVEL"),
)

EXIT_CODES_TEXT = """exit codes:
  0  success
  1  run failed (one or more requested items failed, unless allow_partial)
  2  usage or configuration error
  3  validation failed (--validate-only, or the run's own pre-flight checks)"""


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
            f"{DEFAULTS_PATH} < --params < the flags below."
        ),
        epilog=_params_epilog(defaults) + "\n\n" + EXIT_CODES_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--params",
        metavar="JSON|FILE",
        help="JSON object or JSON file deep-merged over params.json (default: none)",
    )
    for flag, key, metavar in FLAGS:
        field = PipelineConfig.model_fields[key]
        shown = json.dumps(defaults.get(key, "see params.json"))
        text = f"{field.description} (default: {shown})"
        if metavar is None:
            parser.add_argument(flag, dest=key, nargs="?", const="true", metavar="BOOL", help=text)
        else:
            parser.add_argument(flag, dest=key, metavar=metavar, help=text)
    parser.add_argument("--version", action="version", version=f"alignprep {__version__}")
    return parser


def _params_epilog(defaults: Mapping[str, Any]) -> str:
    lines = ["parameters (keys of params.json / --params; nested keys only via --params):"]
    for key, field, default, model in iter_parameters(PipelineConfig, defaults):
        expected = expected_type(model, key.rsplit(".", 1)[-1])
        lines.append(f"  {key} = {json.dumps(default)}  [{expected}]")
        lines.append(f"      {field.description}")
    return "\n".join(lines)


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


def config_from_args(args: argparse.Namespace) -> PipelineConfig:
    """Layers in precedence order: params.json < --params < single flags."""
    layers: list[ParamLayer] = []
    if args.params is not None:
        layers.append(parse_params_arg(args.params))
    flags = {key: getattr(args, key) for _, key, _ in FLAGS if getattr(args, key) is not None}
    if flags:
        layers.append(ParamLayer("command-line flags", flags))
    return build_config(layers)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the capsule; return the process exit code."""
    args = build_parser().parse_args(argv)  # usage errors exit 2 here
    log = get_logger()
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        configure_logging("INFO")
        log.error("configuration error:\n%s", exc)
        return ExitCode.USAGE
    configure_logging(config.log_level)

    from .pipeline import run_pipeline  # imported after parsing: --help stays fast

    try:
        result = run_pipeline(config)
    except AlignprepError as exc:
        log.error("%s", exc)
        return exc.exit_code
    except Exception:
        log.exception("run failed with an unexpected error")
        return ExitCode.RUN_FAILED
    return result.exit_code(config.allow_partial)
