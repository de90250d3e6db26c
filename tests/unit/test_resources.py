"""Container limits from cgroup files (fixtures in the v1 and v2 layouts)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignprep.resources import available_cpus, available_ram_bytes, read_cgroup_limits

GB = 1024**3


def _files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")


def _v2(tmp_path: Path, own: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    _files(root, {"cgroup.controllers": "cpu memory", **files})
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"0::{own}\n")
    return root, proc


def _v1(tmp_path: Path, cpu: str, memory: str, files: dict[str, str]) -> tuple[Path, Path]:
    root = tmp_path / "cgroup"
    _files(root, files)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(f"4:memory:{memory}\n2:cpu,cpuacct:{cpu}\n0::/\n")
    return root, proc


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [("max 100000", None), ("200000 100000", 2.0), ("150000 100000", 1.5), ("50000 100000", 0.5)],
)
def test_v2_cpu_max(tmp_path, cpu_max, cpus):
    root, proc = _v2(tmp_path, "/", {"cpu.max": cpu_max})
    assert read_cgroup_limits(root, proc).cpus == cpus


def test_v2_memory_is_limit_minus_current_and_the_tightest_ancestor_wins(tmp_path):
    root, proc = _v2(
        tmp_path,
        "/capsule/run",
        {
            "memory.max": "max",
            "capsule/memory.max": str(4 * GB),
            "capsule/memory.current": str(3 * GB),
            "capsule/run/memory.max": str(8 * GB),
            "capsule/run/memory.current": str(1 * GB),
            "capsule/run/cpu.max": "400000 100000",
            "capsule/cpu.max": "300000 100000",
        },
    )
    limits = read_cgroup_limits(root, proc)
    assert limits.memory_available_bytes == 1 * GB  # 4 - 3 at the parent, tighter than 8 - 1
    assert limits.cpus == 3.0


def test_v1_quota_and_memory(tmp_path):
    root, proc = _v1(
        tmp_path,
        "/docker/abc",
        "/docker/abc",
        {
            "cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "250000",
            "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
            "memory/docker/abc/memory.limit_in_bytes": str(6 * GB),
            "memory/docker/abc/memory.usage_in_bytes": str(2 * GB),
            "memory/memory.limit_in_bytes": "9223372036854771712",
        },
    )
    limits = read_cgroup_limits(root, proc)
    assert limits.cpus == 2.5
    assert limits.memory_available_bytes == 4 * GB


def test_v1_without_limits(tmp_path):
    root, proc = _v1(
        tmp_path,
        "/",
        "/",
        {
            "cpu,cpuacct/cpu.cfs_quota_us": "-1",
            "cpu,cpuacct/cpu.cfs_period_us": "100000",
            "memory/memory.limit_in_bytes": "9223372036854771712",
        },
    )
    limits = read_cgroup_limits(root, proc)
    assert limits.cpus is None and limits.memory_available_bytes is None


def test_limits_cap_what_the_run_uses(tmp_path):
    root, proc = _v2(
        tmp_path, "/", {"cpu.max": "100000 100000", "memory.max": "1000", "memory.current": "400"}
    )
    limits = read_cgroup_limits(root, proc)
    assert available_cpus(limits) == 1
    assert available_ram_bytes(limits) == 600
