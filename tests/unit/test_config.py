"""Configuration: precedence, deep merge, string values, n_jobs rules, path resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignprep.config import (
    DEFAULTS_PATH,
    ParamLayer,
    PipelineConfig,
    build_config,
    deep_merge,
    load_defaults,
    parse_co_cpus,
    parse_params_arg,
    resolve_n_jobs,
)
from alignprep.errors import ConfigError


def _cfg(*layers: dict, environ: dict | None = None, cwd: Path = Path("/work"), cpus: int = 8):
    return build_config(
        [ParamLayer(f"layer{i}", layer) for i, layer in enumerate(layers)],
        environ=environ or {},
        cwd=cwd,
        cpu_count=cpus,
    )


def test_defaults_file_is_complete_and_valid():
    defaults = load_defaults()
    cfg = _cfg()
    # every key of the model has a default in params.json, and they round-trip unchanged
    assert set(defaults) == set(PipelineConfig.model_fields)
    assert cfg.histology.desired_voxel_size_um == defaults["histology"]["desired_voxel_size_um"]
    assert cfg.tracks.ng_voxel_origin == defaults["tracks"]["ng_voxel_origin"]
    assert str(cfg.data_root) == defaults["data_root"]


def test_deep_merge_keeps_siblings_and_replaces_leaves():
    base = {"a": 1, "s": {"x": 1, "y": 2, "t": {"p": 1, "q": 2}}}
    over = {"s": {"y": 20, "t": {"q": 30}}, "b": 3}
    expected = {"a": 1, "b": 3, "s": {"x": 1, "y": 20, "t": {"p": 1, "q": 30}}}
    assert deep_merge(base, over) == expected
    assert base["s"]["y"] == 2  # inputs untouched


def test_three_layer_precedence_with_deep_merge():
    defaults = load_defaults()
    params = {"histology": {"output_voxel_size_um": 10}, "n_jobs": 2, "skip_ephys": True}
    flags = {"n_jobs": "3"}
    cfg = _cfg(params, flags)
    # --params deep-merged: its one nested key changes, its siblings keep params.json values
    assert cfg.histology.output_voxel_size_um == 10
    assert cfg.histology.desired_voxel_size_um == defaults["histology"]["desired_voxel_size_um"]
    assert cfg.histology.write_ccf_space == defaults["histology"]["write_ccf_space"]
    # flags beat --params, --params beats params.json
    assert cfg.n_jobs == 3
    assert cfg.skip_ephys is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("false", False),
        ("1", True),
        ("0", False),
        ("yes", True),
        ("no", False),
        ("TRUE", True),
        ("No", False),
        (True, True),
        (False, False),
    ],
)
def test_string_booleans(text, expected):
    cfg = _cfg({"skip_ephys": text, "histology": {"write_ccf_space": text}})
    assert cfg.skip_ephys is expected
    assert cfg.histology.write_ccf_space is expected


@pytest.mark.parametrize("text", ["maybe", "2", "", "truth"])
def test_bad_boolean_names_key_and_type(text):
    with pytest.raises(ConfigError) as err:
        _cfg({"validate_only": text})
    assert "'validate_only'" in str(err.value)
    assert "boolean" in str(err.value)


def test_numbers_as_text():
    cfg = _cfg({"histology": {"desired_voxel_size_um": "25.5"}})
    assert cfg.histology.desired_voxel_size_um == 25.5


@pytest.mark.parametrize(
    ("n_jobs", "cpus", "co_cpus", "expected"),
    [
        (-1, 8, None, 8),  # all cores
        (-1, 8, 3, 3),  # all cores, capped by CO_CPUS
        (-1, 2, 16, 2),  # CO_CPUS above the machine: the machine's cores
        (0.5, 8, None, 4),  # fraction
        (0.25, 6, None, 1),  # floor(1.5) = 1
        (0.1, 4, None, 1),  # at least one
        (0.5, 8, 2, 1),  # fraction of the CO_CPUS-capped cores
        (3, 8, None, 3),  # positive integer as given
        (12, 8, None, 12),  # oversubscription is the user's call without CO_CPUS
        (12, 8, 4, 4),  # ... but CO_CPUS caps it
        (1, 8, None, 1),
    ],
)
def test_resolve_n_jobs(n_jobs, cpus, co_cpus, expected):
    assert resolve_n_jobs(n_jobs, cpus, co_cpus) == expected


@pytest.mark.parametrize(
    ("raw", "effective"), [("-1", 8), ("0.5", 4), ("3", 3), ("2.0", 2), (-1, 8), (0.75, 6)]
)
def test_n_jobs_parsing_through_config(raw, effective):
    assert _cfg({"n_jobs": raw}).effective_n_jobs == effective


def test_co_cpus_environment_caps_effective_n_jobs():
    assert _cfg({"n_jobs": -1}, environ={"CO_CPUS": "2"}).effective_n_jobs == 2
    assert _cfg({"n_jobs": 6}, environ={"CO_CPUS": "4"}).effective_n_jobs == 4
    assert _cfg({"n_jobs": 6}, environ={"CO_CPUS": ""}).effective_n_jobs == 6


@pytest.mark.parametrize("bad", [0, -2, 1.5, "abc", True, "0"])
def test_bad_n_jobs_rejected(bad):
    with pytest.raises(ConfigError, match="'n_jobs'"):
        _cfg({"n_jobs": bad})


@pytest.mark.parametrize("bad", ["x", "0", "-3", "1.5"])
def test_bad_co_cpus_rejected(bad):
    with pytest.raises(ConfigError, match="CO_CPUS"):
        parse_co_cpus({"CO_CPUS": bad})


def test_unknown_keys_named_with_allowed_keys_and_source():
    with pytest.raises(ConfigError) as err:
        _cfg({"histology": {"voxel": 1}, "nope": 2})
    text = str(err.value)
    assert "unknown key 'histology.voxel'" in text
    assert "desired_voxel_size_um, output_voxel_size_um, write_ccf_space" in text
    assert "unknown key 'nope'" in text
    assert "data_root" in text and "layer0" in text


def test_wrong_type_names_key_expected_type_and_source():
    with pytest.raises(ConfigError) as err:
        _cfg({"histology": {"output_voxel_size_um": "ten"}})
    text = str(err.value)
    assert "key 'histology.output_voxel_size_um'" in text
    assert "expected a number" in text
    assert "layer0" in text
    with pytest.raises(ConfigError, match="expected an object with keys"):
        _cfg({"tracks": 5})
    with pytest.raises(ConfigError, match=r"one of 'center', 'corner'"):
        _cfg({"tracks": {"ng_voxel_origin": "middle"}})


def test_relative_paths_resolve_against_data_root():
    cfg = _cfg(
        {
            "data_root": "inputs",
            "results_root": "out",
            "neuroglancer": "ng/state.json",
            "manifest": "/abs/manifest.csv",
            "references": {"ccf_template": "ccf/t.nii.gz"},
        },
        cwd=Path("/home/lab"),
    )
    assert cfg.data_root == Path("/home/lab/inputs")  # roots: against the cwd
    assert cfg.results_root == Path("/home/lab/out")
    assert cfg.neuroglancer == Path("/home/lab/inputs/ng/state.json")
    assert cfg.manifest == Path("/abs/manifest.csv")  # absolute: kept
    assert cfg.references.ccf_template == Path("/home/lab/inputs/ccf/t.nii.gz")
    default_lca = load_defaults()["references"]["lca_template"]
    assert cfg.references.lca_template == Path("/home/lab/inputs") / default_lca
    assert cfg.input_path("x/y.csv") == Path("/home/lab/inputs/x/y.csv")


def test_blank_optional_path_means_unset():
    cfg = _cfg({"neuroglancer": "", "manifest": "null"})
    assert cfg.neuroglancer is None and cfg.manifest is None


def test_config_is_frozen():
    cfg = _cfg()
    with pytest.raises(ValueError, match="frozen"):
        cfg.n_jobs = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        cfg.histology.output_voxel_size_um = 1  # type: ignore[misc]


def test_params_arg_inline_and_file(tmp_path):
    assert parse_params_arg('{"n_jobs": 2}').values == {"n_jobs": 2}
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"tracks": {"ng_voxel_origin": "corner"}}))
    layer = parse_params_arg(str(f))
    assert layer.values == {"tracks": {"ng_voxel_origin": "corner"}} and str(f) in layer.name
    for bad, needle in [
        ('{"n_jobs": ', "invalid JSON"),
        ("[1]", "neither"),
        (str(tmp_path / "missing.json"), "neither"),
    ]:
        with pytest.raises(ConfigError, match=needle):
            parse_params_arg(bad)
    f.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object"):
        parse_params_arg(str(f))


def test_defaults_missing_key_is_an_error():
    defaults = load_defaults()
    del defaults["histology"]["output_voxel_size_um"]
    with pytest.raises(ConfigError, match=r"missing key 'histology\.output_voxel_size_um'"):
        build_config([], defaults=defaults, environ={})


def test_defaults_path_is_code_params_json():
    assert DEFAULTS_PATH.name == "params.json" and DEFAULTS_PATH.parent.name == "code"


@pytest.mark.parametrize(
    ("values", "needles"),
    [
        (
            {"histology": {"output_voxel_size_um": 0.03}},
            [
                "histology.output_voxel_size_um' = 0.03 um is outside the plausible range "
                "[5, 200] um; the value is in micrometres",
                "was it given in millimetres? 0.03 millimetres = 30 um",
            ],
        ),
        (
            {"histology": {"desired_voxel_size_um": 0.035}},
            ["desired_voxel_size_um' = 0.035 um", "0.035 millimetres = 35 um"],
        ),
        (
            {"ephys": {"rms_window_duration_s": 4000}},
            ["rms_window_duration_s' = 4000 s", "4000 milliseconds = 4 s"],
        ),
    ],
)
def test_values_in_the_wrong_unit_are_refused_naming_the_unit(values, needles):
    with pytest.raises(ConfigError) as info:
        build_config([ParamLayer("test", values)], environ={})
    for needle in needles:
        assert needle in str(info.value)


def test_plausible_values_pass():
    cfg = build_config([ParamLayer("t", {"histology": {"output_voxel_size_um": 10}})], environ={})
    assert cfg.histology.output_voxel_size_um == 10
