"""The App Panel and the command line: generated from the parameters, every spelling, blanks."""

from __future__ import annotations

import json

import pytest

from alignprep.app_panel import FIXED_BY_CODE_OCEAN, PANEL_PATH, panel_text
from alignprep.cli import build_parser, config_from_args, flags, iter_parameters
from alignprep.config import PipelineConfig, load_defaults


def _config(*argv: str) -> dict:
    cfg = config_from_args(build_parser().parse_args(list(argv)))
    return cfg.to_json_dict()


def test_app_panel_file_is_generated_from_params_json():
    """Regenerate with ``python -m alignprep.app_panel`` when this fails."""
    assert PANEL_PATH.read_text(encoding="utf-8") == panel_text()


def test_app_panel_describes_every_user_facing_parameter():
    panel = json.loads(PANEL_PATH.read_text())
    assert panel["named_parameters"] is True
    fields = {p["param_name"]: p for p in panel["parameters"]}
    defaults = load_defaults()
    keys = [k for k, *_ in iter_parameters(PipelineConfig, defaults)]
    assert set(fields) == {k.replace(".", "_") for k in keys if k not in FIXED_BY_CODE_OCEAN}
    assert len({p["id"] for p in panel["parameters"]}) == len(fields)
    for key, field, default, _model in iter_parameters(PipelineConfig, defaults):
        if key in FIXED_BY_CODE_OCEAN:
            continue
        entry = fields[key.replace(".", "_")]
        assert entry["description"] == field.description and entry["help_text"]
        if isinstance(default, bool):
            assert entry["type"] == "list" and entry["extra_data"] == ["false", "true"]
            assert entry["default_value"] == str(default).lower()
        elif default is None:
            assert entry["default_value"] == ""
        else:
            assert entry["default_value"] == str(default)
    assert fields["log_level"]["extra_data"] == ["DEBUG", "INFO", "WARNING", "ERROR"]
    assert fields["histology_output_voxel_size_um"]["value_type"] == "number"


def test_the_panel_defaults_passed_as_flags_give_the_params_json_config():
    """What Code Ocean sends (--<param_name> <default>) is exactly the default configuration."""
    panel = json.loads(PANEL_PATH.read_text())
    argv = []
    for p in panel["parameters"]:
        argv += [f"--{p['param_name']}", p["default_value"]]
    assert _config(*argv) == _config()


@pytest.mark.parametrize("flag", ["--n-jobs", "--n_jobs"])
def test_both_spellings_of_a_flag(flag):
    assert _config(flag, "1")["n_jobs"] == 1


@pytest.mark.parametrize(
    "spelling",
    [
        "--histology-output-voxel-size-um",
        "--histology_output_voxel_size_um",
        "--histology.output_voxel_size_um",
    ],
)
def test_nested_keys_have_flags_in_every_spelling(spelling):
    written = _config(spelling, "10")
    assert written["histology"]["output_voxel_size_um"] == 10
    assert (
        written["histology"]["desired_voxel_size_um"]
        == load_defaults()["histology"]["desired_voxel_size_um"]
    )  # the other keys of the section keep their defaults


def test_abbreviated_flags_are_errors(capsys):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["--n-job", "2"])
    assert info.value.code == 2
    assert "unrecognized arguments: --n-job" in capsys.readouterr().err


def test_a_blank_value_means_the_default_for_every_parameter():
    argv = []
    for flag in flags():
        argv += [f"--{flag.key.replace('.', '_')}", ""]  # as the App Panel sends it
    argv += ["--params", ""]
    assert _config(*argv) == _config()


@pytest.mark.parametrize("text", ["debug", "Debug", " DEBUG "])
def test_log_level_in_any_case(text):
    assert _config("--log-level", text)["log_level"] == "DEBUG"


def test_every_flag_is_in_the_help_with_its_default():
    text = build_parser().format_help()
    for flag in flags():
        assert all(name in text for name in flag.names)
