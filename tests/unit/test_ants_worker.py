"""ANTs in a child process: a native crash becomes an error naming the file; the parent lives on.

The crash is real: ITK's MATLAB transform reader dereferences a null pointer (SIGSEGV) after
failing to read a MATLAB v5 file, which scipy reads without complaint.
"""

from __future__ import annotations

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
        AntsTask("needs crash", "points", (str(good),), (True,), [], ("crash",)),
        AntsTask("after", "points", (str(good),), (True,), [], ("before",)),
    ]
    out = run_ants_tasks(tasks, timeout_s=300)
    assert out["crash"].status == "crashed"
    assert "SIGSEGV" in out["crash"].message
    assert str(bad) in out["crash"].message  # ITK's last words name the file too
    assert out["same file"].status == "skipped"
    assert str(bad) in out["same file"].message
    assert out["needs crash"].status == "skipped"
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
