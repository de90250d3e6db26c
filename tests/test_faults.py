"""Faults around a run: unusable results roots, two runs at once, kills, unchanged re-runs."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from alignprep import outputs
from alignprep.orchestration.lock import ResultsBusyError, results_lock
from alignprep.outputs import STATE_DIR
from alignprep.synthetic import SyntheticSpec

from .conftest import CODE_DIR
from .datasets import cached_dataset
from .test_pipeline import _args, _env, _report, _run

RUN_RECORDS = {"run_report.json", "validation_report.json", "alignprep.log"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    spec = SyntheticSpec(ephys_preset="test")
    return cached_dataset(tmp_path_factory.mktemp("faults") / "ds", spec)


def _snapshot(results: Path, skip: set[str]) -> dict[str, tuple[int, str]]:
    """``{relative path: (mtime_ns, sha256)}`` of every output, minus run records and state."""
    out = {}
    for path in sorted(results.rglob("*")):
        rel = path.relative_to(results)
        if path.is_file() and path.name not in skip and STATE_DIR not in rel.parts:
            out[str(rel)] = (path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def _temp_names(results: Path) -> list[Path]:
    return [p for p in results.rglob("*") if outputs.is_temp_name(p.name)]


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nobody can write to: a read-only tmpfs as root, else a mode-555 folder."""
    path = tmp_path / "ro"
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        yield path
        path.chmod(0o755)
        return
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True
    )
    if proc.returncode != 0:
        pytest.skip(f"root cannot mount a read-only tmpfs here: {proc.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False)


def test_read_only_results_root_stops_with_one_line(dataset, read_only_dir):
    proc = _run(dataset.data_root, read_only_dir, "--validate-only")
    assert proc.returncode == 3
    errors = [line for line in proc.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1, proc.stderr
    assert f"results root: {read_only_dir} is not a writable folder" in errors[0]
    assert "--results-root" in errors[0] and "Traceback" not in proc.stderr


def test_a_second_run_on_the_same_results_root_is_refused(dataset, tmp_path):
    results = tmp_path / "out"
    results.mkdir()
    with results_lock(results):
        proc = _run(dataset.data_root, results, "--validate-only")
        assert proc.returncode == 3
        assert f"results root {results} is in use by another run (pid {os.getpid()}" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert sorted(p.name for p in results.iterdir()) == [".alignprep.lock"]  # nothing else
        with pytest.raises(ResultsBusyError), results_lock(results):
            pass
    assert not (results / ".alignprep.lock").exists()  # released and removed
    assert _run(dataset.data_root, results, "--validate-only").returncode == 0


def test_a_killed_holder_releases_the_lock(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from alignprep.orchestration.lock import results_lock\n"
            "with results_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "held"  # type: ignore[union-attr]
        with pytest.raises(ResultsBusyError, match=f"pid {holder.pid}"), results_lock(tmp_path):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        with results_lock(tmp_path):  # the kernel released it with the process
            pass
    finally:
        if holder.poll() is None:
            holder.kill()


def _kill_when(data: Path, results: Path, marker: str, *extra: str) -> None:
    proc = subprocess.Popen(
        [str(CODE_DIR / "run"), *_args(data, results, "--n-jobs", "1", *extra)],
        env=_env(),
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if re.search(marker, line):
                proc.send_signal(signal.SIGKILL)
                break
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, f"never saw {marker!r}"


def test_killed_during_ephys_then_rerun_leaves_no_temporary_name(dataset, tmp_path):
    results = tmp_path / "out"
    _kill_when(dataset.data_root, results, r"ProbeA: running the converter")
    leftovers = _temp_names(results)
    assert any(p.is_dir() and p.name.startswith(".ProbeA") for p in leftovers), leftovers
    proc = _run(dataset.data_root, results, "--n-jobs", "1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _temp_names(results) == []
    assert "left by an interrupted run" in proc.stderr
    assert _report(results)["counts"]["failed"] == 0


def test_unchanged_rerun_rewrites_nothing_from_the_same_linked_or_moved_data_root(
    dataset, tmp_path
):
    data = tmp_path / "data"
    shutil.copytree(dataset.data_root, data)
    results = tmp_path / "out"
    assert _run(data, results).returncode == 0
    first = _snapshot(results, RUN_RECORDS)
    assert len(first) > 30

    def rerun(root: Path, records: set[str]) -> None:
        proc = _run(root, results)
        assert proc.returncode == 0, proc.stderr[-3000:]
        items = _report(results)["items"]
        assert {i["status"] for i in items if i["name"] != "datapackage"} == {"skipped"}, items
        assert _snapshot(results, records) == {
            k: v for k, v in first.items() if Path(k).name not in records
        }

    rerun(data, RUN_RECORDS)  # processing.json and effective_config.json unchanged too
    linked = tmp_path / "linked"
    subprocess.run(["cp", "-al", str(data), str(linked)], check=True)
    # a new data root is a new parameter: the run records say so; no product is rewritten
    moved_records = RUN_RECORDS | {"effective_config.json", "processing.json"}
    rerun(linked, moved_records)
    moved = tmp_path / "moved"
    linked.rename(moved)
    rerun(moved, moved_records)
