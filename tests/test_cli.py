"""``code/run`` end to end in a subprocess: help, exit codes, messages, effective config."""

from __future__ import annotations

import json
import re

from alignprep.cli import build_parser, flags
from alignprep.config import load_defaults


def test_help_from_any_directory_lists_every_flag_with_its_default(run_cli):
    proc = run_cli("--help", env={"COLUMNS": "10000"})  # no wrapping inside long defaults
    assert proc.returncode == 0, proc.stderr
    text = re.sub(r"\s+", " ", proc.stdout.split("options:", 1)[1])
    defaults = load_defaults()
    for flag in flags():
        node = defaults
        for part in flag.key.split("."):
            node = node[part]
        canonical = flag.names[0]
        match = re.search(re.escape(canonical) + r"[ ,].*?\(default: (.*?)\)", text)
        assert match, f"{canonical} has no default in --help"
        assert json.loads(match.group(1)) == node
    for action in build_parser()._actions:  # nothing the parser accepts is missing from help
        for opt in action.option_strings:
            assert opt in text


def test_effective_config_written_at_start_with_merged_values(run_cli, tmp_path):
    """Written once the roots pass, even when the run then stops (here: no manifest)."""
    results = tmp_path / "res"
    (tmp_path / "elsewhere" / "rel_data").mkdir(parents=True)
    proc = run_cli(
        "--results-root",
        str(results),
        "--scratch-root",
        str(tmp_path / "scr"),
        "--data-root",
        "rel_data",
        "--params",
        '{"histology": {"output_voxel_size_um": 10}}',
        "--n-jobs",
        "0.5",
        "--skip-ephys",
        "yes",
        env={"CO_CPUS": "1"},
    )
    assert proc.returncode == 3, proc.stderr
    written = json.loads((results / "effective_config.json").read_text())
    assert written["histology"]["output_voxel_size_um"] == 10
    default_voxel_um = load_defaults()["histology"]["desired_voxel_size_um"]
    assert written["histology"]["desired_voxel_size_um"] == default_voxel_um
    assert written["skip_ephys"] is True and written["demo"] == "off"
    assert written["n_jobs"] == 0.5 and written["effective"]["n_jobs"] == 1
    # relative data root resolved against the working directory, inputs against the data root
    assert written["data_root"] == str(tmp_path / "elsewhere" / "rel_data")
    assert written["references"]["ccf_template"].startswith(written["data_root"] + "/")
    # per-step wall times are logged (the parameter dump is DEBUG: tests/test_run_ux.py)
    assert re.search(r"step write effective config: done in \d+\.\d\d s", proc.stderr)
    assert "n_jobs: requested 0.5 -> effective 1" in proc.stderr
    # validation names what is wrong
    assert "rel_data is empty" in proc.stderr and "--demo" in proc.stderr  # nothing to run on


def test_missing_data_root_stops_before_writing_anything(run_cli, tmp_path):
    results, scratch = tmp_path / "res", tmp_path / "scr"
    proc = run_cli(
        "--data-root",
        "no_such_data",
        "--results-root",
        str(results),
        "--scratch-root",
        str(scratch),
    )
    assert proc.returncode == 3, proc.stderr
    assert f"{tmp_path / 'elsewhere' / 'no_such_data'} does not exist" in proc.stderr
    assert "--demo" in proc.stderr and "Traceback" not in proc.stderr
    assert not results.exists() and not scratch.exists()


def test_results_root_with_missing_parent_is_refused(run_cli, tmp_path):
    results = tmp_path / "typo" / "res"
    proc = run_cli("--data-root", str(tmp_path), "--results-root", str(results))
    assert proc.returncode == 3, proc.stderr
    assert f"{results} is not a writable folder" in proc.stderr and "--results-root" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "typo").exists()


def test_bool_flag_without_value_means_true(run_cli, tmp_path):
    proc = run_cli("--async", "--data-root", str(tmp_path), "--results-root", str(tmp_path / "r"))
    assert proc.returncode == 3, proc.stderr  # empty data root; the config is written first
    assert json.loads((tmp_path / "r" / "effective_config.json").read_text())["use_async"] is True


def test_unknown_key_exits_2_naming_it(run_cli, tmp_path):
    bad = '{"histology": {"voxel_um": 3}}'
    proc = run_cli("--params", bad, "--results-root", str(tmp_path / "r"))
    assert proc.returncode == 2
    assert "unknown key 'histology.voxel_um'" in proc.stderr
    assert "allowed keys in 'histology': desired_voxel_size_um" in proc.stderr
    assert not (tmp_path / "r").exists()  # nothing written on a config error


def test_wrong_type_exits_2(run_cli):
    proc = run_cli("--n-jobs", "lots")
    assert proc.returncode == 2
    assert "key 'n_jobs'" in proc.stderr and "got 'lots'" in proc.stderr
    proc = run_cli("--params", '{"skip_ephys": "perhaps"}')
    assert proc.returncode == 2 and "expected a boolean" in proc.stderr


def test_params_file_relative_to_cwd(run_cli, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "mine.json").write_text('{"tracks": {"ng_voxel_origin": "corner"}}')
    proc = run_cli(
        "--params", "mine.json", "--data-root", str(tmp_path), "--results-root", str(tmp_path / "r")
    )
    assert proc.returncode == 3, proc.stderr  # empty data root; the config is written first
    written = json.loads((tmp_path / "r" / "effective_config.json").read_text())
    assert written["tracks"]["ng_voxel_origin"] == "corner"


def test_bad_co_cpus_exits_2(run_cli):
    proc = run_cli(env={"CO_CPUS": "many"})
    assert proc.returncode == 2 and "CO_CPUS" in proc.stderr


def test_usage_error_exits_2(run_cli):
    proc = run_cli("--no-such-flag")
    assert proc.returncode == 2 and "unrecognized arguments" in proc.stderr


def test_demo_flag_alone_or_with_a_dataset_name():
    """``--demo`` alone is the light-sheet demo, ``--demo ccf`` the one without light-sheet
    data; params.json's boolean spelling still works; anything else is a usage error."""
    import pytest

    from alignprep.cli import config_from_args
    from alignprep.errors import ConfigError

    def demo(*argv: str) -> str:
        return config_from_args(build_parser().parse_args(list(argv))).demo

    assert demo() == "off"
    assert demo("--demo") == "light_sheet"
    assert demo("--demo", "ccf") == "ccf"
    assert demo("--demo", "CCF") == "ccf"
    assert demo("--params", '{"demo": true}') == "light_sheet"
    assert demo("--params", '{"demo": false}') == "off"
    with pytest.raises(ConfigError, match="demo"):
        demo("--demo", "spim")
