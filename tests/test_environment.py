"""Capsule layout and environment contracts: the lock, the Dockerfile, CI and the README."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from alignprep.cli import iter_parameters
from alignprep.config import PipelineConfig, load_defaults

from .conftest import CODE_DIR, REPO_ROOT

LOCK = REPO_ROOT / "environment" / "requirements.txt"
DOCKERFILE = REPO_ROOT / "environment" / "Dockerfile"
README = REPO_ROOT / "README.md"


def _lock() -> dict[str, str]:
    pins = {}
    for raw in LOCK.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and " " not in version, f"not an exact pin in the lock: {raw!r}"
        pins[canonicalize_name(name)] = version
    return pins


def test_layout():
    for rel in [
        "code/run",
        "code/params.json",
        "code/pyproject.toml",
        "code/alignprep/__init__.py",
        "environment/Dockerfile",
        "environment/requirements.txt",
        "environment/setup",
        "metadata/metadata.yml",
        "README.md",
        "LICENSE",
        ".ci/run",
    ]:
        assert (REPO_ROOT / rel).is_file(), rel
    assert os.access(CODE_DIR / "run", os.X_OK)
    assert "MIT License" in (REPO_ROOT / "LICENSE").read_text()


def test_lock_pins_every_requirement_of_pyproject():
    project = tomllib.loads((CODE_DIR / "pyproject.toml").read_text())["project"]
    pins = _lock()
    wanted = project["dependencies"] + project["optional-dependencies"]["test"]
    for text in wanted:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not in the lock"
        assert req.specifier.contains(pins[name], prereleases=True), f"{req} vs lock {pins[name]}"


def test_installed_environment_is_covered_by_the_lock():
    """``pip freeze`` of the running environment: every distribution pinned, same version."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    pins = _lock()
    extra = []
    for line in frozen:
        if not line or line.startswith(("-e ", "#")) or line.startswith("alignprep"):
            continue
        name, sep, version = line.partition("==")
        assert sep, f"pip freeze gave a non-pinned line: {line!r}"
        if pins.get(canonicalize_name(name)) != version:
            extra.append(line)
    assert not extra, f"installed but not in environment/requirements.txt: {extra}"


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text()
    text = re.sub(r"\\\n", " ", text)  # join continuation lines
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_pins_the_base_image_but_no_debian_revision():
    instr = _dockerfile_instructions()
    froms = [rest for word, rest in instr if word == "FROM"]
    assert len(froms) == 1
    image = froms[0].split()[0]
    assert "@sha256:" in image or re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", image), image
    apt = [rest for word, rest in instr if word == "RUN" and "apt-get install" in rest]
    assert apt
    for cmd in apt:
        for part in cmd.split("&&"):
            words = shlex.split(part)
            if words[:2] != ["apt-get", "install"]:
                continue
            pkgs = [w for w in words[2:] if not w.startswith("-")]
            # a revision pin (pkg=1.2-3+deb12u4) stops resolving at the next point release
            assert pkgs and not [p for p in pkgs if "=" in p], pkgs


def test_dockerfile_builds_from_environment_alone():
    """Code Ocean: ``cd environment && docker build .``; code/ is mounted at run time."""
    instr = _dockerfile_instructions()
    context = DOCKERFILE.parent
    sources = []
    for word, rest in instr:
        if word in ("COPY", "ADD"):
            args = [a for a in shlex.split(rest) if not a.startswith("--")]
            sources += args[:-1]
    assert sources, "the image must install the lock"
    for src in sources:
        assert not Path(src).is_absolute() and ".." not in Path(src).parts, src
        assert (context / src).exists(), f"COPY source {src} is not in environment/"
    text = " ".join(rest for _, rest in instr)
    assert "code" not in [Path(a).parts[0] for a in sources]
    assert not [w for w, _ in instr if w in ("ENTRYPOINT", "CMD")]  # Code Ocean's launcher runs
    assert "environment/" not in text  # no path that needs the repository root as context


def test_dockerfile_installs_exactly_the_lock():
    instr = _dockerfile_instructions()
    copies = {rest.split()[1]: rest.split()[0] for word, rest in instr if word == "COPY"}
    lock_dest = next(dst for dst, src in copies.items() if src == "requirements.txt")
    installs = [rest for word, rest in instr if word == "RUN" and "pip install" in rest]
    requirement_installs = []
    for cmd in installs:
        for part in cmd.split("&&"):
            words = shlex.split(part)
            if "install" not in words:
                continue
            args = words[words.index("install") + 1 :]
            assert "--no-deps" in args, f"pip install must not resolve: {part}"
            reqs = [args[i + 1] for i, a in enumerate(args) if a in ("-r", "--requirement")]
            assert reqs == [lock_dest], f"only the lock is installed: {part}"
            requirement_installs.append(part)
    assert len(requirement_installs) == 1


def test_code_runs_mounted_anywhere_without_being_installed(tmp_path):
    """As in the image: code/ mounted at /code, run as ./run, alignprep never pip-installed."""
    mounted = tmp_path / "code"
    shutil.copytree(REPO_ROOT / "code", mounted, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["ALIGNPREP_PYTHON"] = sys.executable
    proc = subprocess.run(
        ["./run", "--version"], cwd=mounted, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    where = subprocess.run(
        [sys.executable, "-c", "import alignprep; print(alignprep.__file__)"],
        env={**env, "PYTHONPATH": str(mounted)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(mounted), where  # the mounted copy, not an install


def _readme_block(title: str) -> list[str]:
    text = README.read_text()
    match = re.search(r"<!-- " + re.escape(title) + r" -->\s*```(?:bash|sh)?\n(.*?)```", text, re.S)
    assert match, f"README has no block marked {title}"
    return [ln for ln in match.group(1).splitlines() if ln.strip()]


def test_ci_runs_the_readme_test_command_verbatim():
    (test_cmd,) = _readme_block("test-command")
    ci = (REPO_ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci
    (demo_cmd,) = _readme_block("demo-command")
    assert "environment/setup" in demo_cmd and "--demo" in demo_cmd
    assert "environment/setup" in test_cmd


def test_readme_params_table_lists_every_key_with_its_default():
    defaults = load_defaults()
    rows = {}
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows[cells[0].strip("`")] = cells[1].strip("`")
    for key, _field, default, _model in iter_parameters(PipelineConfig, defaults):
        assert key in rows, f"README params table misses {key}"
        assert json.loads(rows[key]) == default, f"README default of {key}: {rows[key]}"


@pytest.mark.parametrize("script", ["environment/setup", "environment/lock", ".ci/run", "code/run"])
def test_shell_scripts_parse(script):
    subprocess.run(["bash", "-n", str(REPO_ROOT / script)], check=True)


@pytest.mark.parametrize(
    "name",
    [
        "histology",
        "ephys",
        "transform_check",
        "executors",
        "demo",
        "whole_mouse",
        "compare_results",
    ],
)
def test_benchmark_scripts_parse_their_arguments(name):
    """The on-demand benchmarks stay runnable: ``--help`` works (nothing is measured here)."""
    script = REPO_ROOT / "tests" / "benchmarks" / f"{name}.py"
    proc = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout


def test_readme_docker_commands_use_the_code_ocean_layout():
    (build,) = _readme_block("docker-build")
    assert shlex.split(build)[-1] == "environment"  # the build context is environment/ alone
    (run,) = _readme_block("docker-run")
    words = shlex.split(run)
    assert words[words.index("--workdir") + 1] == "/code"
    assert "$PWD/code:/code" in words and words[-1] == "./run"
