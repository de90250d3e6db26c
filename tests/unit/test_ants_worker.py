"""ANTs in a child process: a native crash becomes an error naming the file; the parent lives on.

The crash is real: ITK's MATLAB transform reader dereferences a null pointer (SIGSEGV) after
failing to read a MATLAB v5 file, which scipy reads without complaint.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from alignprep.inputs.ants_worker import AntsTask, run_ants_tasks
from alignprep.synthetic import faults
from alignprep.synthetic.geometry import Affine


@pytest.fixture(scope="module")
def mats(tmp_path_factory):
    d = tmp_path_factory.mktemp("worker")
    good = Affine(np.diag([2.0, 1.0, 0.5]), np.zeros(3), np.array([1.0, 2.0, 3.0]))
    bad = d / "v5.mat"
    good.write(bad)
    faults.matlab_v5_copy(bad)
    return good, good.write(d / "good.mat"), bad


def test_crash_is_named_and_other_tasks_still_run(mats, tmp_path):
    affine, good, bad = mats
    missing = tmp_path / "nowhere.mat"
    pts = [[1.0, 1.0, 1.0], [-2.0, 0.5, 4.0]]
    tasks = [
        AntsTask("before", "points", (str(good),), (False,), pts),
        AntsTask("missing", "points", (str(missing),), (False,), pts),
        AntsTask("crash", "points", (str(bad),), (False,), pts),
        AntsTask("same file", "points", (str(bad), str(good)), (False, False), pts),
        AntsTask("after", "points", (str(good),), (True,), affine(np.array(pts)).tolist()),
    ]
    out = run_ants_tasks(tasks, timeout_s=300)
    assert out["crash"].status == "crashed"
    assert "SIGSEGV" in out["crash"].message
    assert str(bad) in out["crash"].message  # ITK's last words name the file too
    assert out["same file"].status == "skipped"
    assert str(bad) in out["same file"].message
    # a Python-level error is a failure of that task only
    assert out["missing"].status == "failed"
    assert str(missing) in out["missing"].message
    # the tasks around the crash ran, in the first child and in the one that replaced it
    np.testing.assert_allclose(out["before"].result, affine(np.array(pts)), atol=1e-5)
    np.testing.assert_allclose(out["after"].result, pts, atol=1e-5)


def test_header_task_reports_itk_geometry_in_our_convention(tmp_path):
    from alignprep.space.frames import ImageHeader, direction_from_code
    from alignprep.synthetic.volumes import write_ants_image

    hdr = ImageHeader(
        np.array([1.0, -2.0, 3.0]), np.array([0.1, 0.2, 0.3]), direction_from_code("PIR"), (4, 5, 6)
    )
    path = write_ants_image(np.zeros(hdr.size), hdr, tmp_path / "h.nii.gz", "float")
    out = run_ants_tasks([AntsTask("h", "header", (str(path),))], timeout_s=300)["h"]
    assert out.ok
    np.testing.assert_allclose(out.result["direction"], hdr.direction)  # columns = index axes
    np.testing.assert_allclose(out.result["origin"], hdr.origin)
    np.testing.assert_allclose(out.result["spacing"], hdr.spacing)
    assert out.result["dimensions"] == [4, 5, 6]


def _children(pid: int) -> list[int]:
    out = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            continue
        if int(fields.get("PPid", "0").strip() or 0) == pid:
            out.append(int(status.parent.name))
    return out


def _alive(pid: int) -> bool:
    """Running (not gone, not a zombie waiting to be reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _busy_with_ants(pid: int) -> bool:
    """The worker has read its tasks and loaded ANTs (its compiled library is mapped)."""
    try:
        return "ants/lib" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_no_worker_outlives_a_killed_parent(mats):
    """A run killed during validation leaves no ANTs worker behind."""
    _, good, _ = mats
    script = (
        "from alignprep.inputs.ants_worker import AntsTask, run_ants_tasks\n"
        f"tasks = [AntsTask(str(i), 'points', ({str(good)!r},), (False,), [[0.0, 0.0, 0.0]])"
        " for i in range(5000)]\n"
        "run_ants_tasks(tasks)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not any(_busy_with_ants(w) for w in workers):
            time.sleep(0.2)
            workers = _children(parent.pid)
        assert any(_busy_with_ants(w) for w in workers), "the worker never got to work"
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.2)
    alive = [w for w in workers if _alive(w)]
    for w in alive:  # do not leave it running if the test fails
        os.kill(w, signal.SIGKILL)
    assert not alive, f"worker(s) {alive} outlived their parent"
