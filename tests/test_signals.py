"""SIGTERM (docker stop, Code Ocean stop) and SIGINT (Ctrl-C) end a run within seconds."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alignprep import outputs
from alignprep.supervisor import descendants
from alignprep.synthetic import SyntheticSpec

from .conftest import CODE_DIR
from .datasets import cached_dataset
from .test_pipeline import _args, _env, _report, _run


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return cached_dataset(
        tmp_path_factory.mktemp("signals") / "ds", SyntheticSpec(ephys_preset="test")
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _start_with_two_workers(dataset, results: Path) -> subprocess.Popen:
    """``code/run`` with a pool of two, its stderr piped, in its own process group (as a
    terminal job is)."""
    return subprocess.Popen(
        [str(CODE_DIR / "run"), *_args(dataset.data_root, results, "--n-jobs", "2")],
        env=_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize(
    ("signum", "to_group", "code"),
    [(signal.SIGTERM, False, 143), (signal.SIGINT, True, 130)],
    ids=["SIGTERM to the run (docker stop)", "SIGINT to the terminal's group (Ctrl-C)"],
)
def test_a_signal_stops_the_run_and_every_worker(dataset, tmp_path, signum, to_group, code):
    results = tmp_path / "out"
    proc = _start_with_two_workers(dataset, results)
    lines = []
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            if re.search(r"step run the plan: .* started", line):
                break
        deadline = time.monotonic() + 60
        while len(descendants(proc.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # the run and its pool workers
        tree = [proc.pid, *descendants(proc.pid)]
        assert len(tree) >= 4, "expected the supervisor, the run and two workers"
        t0_s = time.monotonic()
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        rest = proc.stderr.read()  # type: ignore[union-attr]
        proc.wait(timeout=60)
        elapsed_s = time.monotonic() - t0_s
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, "".join(lines[-20:]) + rest
    assert elapsed_s < 15
    time.sleep(0.5)  # orphans reaped by init
    assert [p for p in tree if _alive(p)] == []
    name = signal.Signals(signum).name
    assert f"interrupted by {name}; run again to resume" in rest
    assert "Traceback" not in rest
    assert [p for p in results.rglob("*") if outputs.is_temp_name(p.name)] == []
    again = _run(dataset.data_root, results, "--n-jobs", "2")  # resumes and finishes
    assert again.returncode == 0, again.stderr[-3000:]
    assert _report(results)["counts"]["failed"] == 0


def test_workers_leave_when_the_run_process_is_killed_outright(dataset, tmp_path):
    """SIGKILL to the run itself (the OOM killer's way), not to the supervisor: the pool's
    workers and their fork server must not outlive it (they are not the run's children)."""
    proc = _start_with_two_workers(dataset, tmp_path / "out")
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if re.search(r"step run the plan: .* started", line):
                break
        (run,) = [p for p in descendants(proc.pid) if _parent(p) == proc.pid]
        deadline = time.monotonic() + 60  # the run's process starts on items meanwhile
        while len(others := descendants(run)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(others) >= 3, "expected the fork server and two workers"
        os.kill(run, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while [p for p in others if _alive(p)] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in others if _alive(p)] == []
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def _parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def test_the_supervisor_starts_the_run_without_importing_the_pipeline():
    """``python -m alignprep`` as the supervisor imports neither the configuration nor numpy,
    pandas or pydantic before it starts the run's process (they cost ~0.3 s on every run)."""
    code = (
        "import sys, alignprep.__main__\n"
        "heavy = {'numpy', 'pandas', 'pydantic', 'alignprep.config', 'alignprep.cli'}\n"
        "print(sorted(m for m in sys.modules if m in heavy))"
    )
    env = {k: v for k, v in os.environ.items() if k != "ALIGNPREP_SUPERVISED"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=CODE_DIR, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_a_bad_parameter_is_reported_once_by_the_run_with_the_usage_exit_code(tmp_path):
    proc = subprocess.run(
        [str(CODE_DIR / "run"), "--n-jobs", "abc", "--results-root", str(tmp_path / "r")],
        env=_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("configuration error") == 1
    assert not (tmp_path / "r").exists()
