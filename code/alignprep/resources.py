"""What the machine really gives this run: CPUs and memory, container limits included.

In a container (Code Ocean, docker ``--cpus`` / ``--memory``) ``os.sched_getaffinity`` and
``/proc/meminfo`` describe the host, not the container: a 2-CPU, 4 GB capsule on a 64-core host
would start 64 workers and be killed for memory. The cgroup limits decide: v2 ``cpu.max`` and
``memory.max`` / ``memory.current``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` and
``memory.limit_in_bytes`` / ``memory.usage_in_bytes``, taken along the process's cgroup path
(the tightest limit of it and its ancestors wins).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
UNLIMITED_V1 = 1 << 60  # v1 reports "no limit" as a huge number (9223372036854771712)
GB = 1024**3


@dataclass(frozen=True)
class CgroupLimits:
    """Limits read from the cgroup files (None: no limit there)."""

    cpus: float | None
    memory_limit_bytes: int | None
    memory_used_bytes: int | None

    @property
    def memory_available_bytes(self) -> int | None:
        """Limit minus usage, when there is a limit."""
        if self.memory_limit_bytes is None:
            return None
        return max(0, self.memory_limit_bytes - (self.memory_used_bytes or 0))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _own_cgroups(proc_cgroup: Path) -> dict[str, str]:
    """``{controller or "": path}`` from ``/proc/self/cgroup`` (v2: the ``0::`` line)."""
    out: dict[str, str] = {}
    for line in (_read(proc_cgroup) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                out[controller] = parts[2]
    return out


def _chain(base: Path, rel: str) -> list[Path]:
    """``base/rel`` and its ancestors up to ``base`` (existing folders only)."""
    folders, current = [], base / rel.lstrip("/")
    while True:
        if current.is_dir():
            folders.append(current)
        if current == base or base not in current.parents:
            break
        current = current.parent
    return folders or [base]


def read_cgroup_limits(root: Path = CGROUP_ROOT, proc_cgroup: Path | None = None) -> CgroupLimits:
    """The tightest CPU and memory limits of this process's cgroup (v2, else v1)."""
    own = _own_cgroups(proc_cgroup or Path("/proc/self/cgroup"))
    cpus: list[float] = []
    limits: list[tuple[int, int | None]] = []
    if (root / "cgroup.controllers").exists():  # v2 unified hierarchy
        for folder in _chain(root, own.get("", "/")):
            quota = (_read(folder / "cpu.max") or "max").split()
            if quota and quota[0] != "max" and len(quota) == 2 and _int(quota[1]):
                cpus.append(int(quota[0]) / int(quota[1]))
            limit = _read(folder / "memory.max")
            if limit is not None and limit != "max" and _int(limit) is not None:
                limits.append((int(limit), _int(_read(folder / "memory.current"))))
    else:  # v1: one hierarchy per controller
        cpu_base = next((root / n for n in ("cpu", "cpu,cpuacct") if (root / n).is_dir()), None)
        if cpu_base is not None:
            for folder in _chain(cpu_base, own.get("cpu", "/")):
                quota = _int(_read(folder / "cpu.cfs_quota_us"))
                period = _int(_read(folder / "cpu.cfs_period_us"))
                if quota is not None and quota > 0 and period:
                    cpus.append(quota / period)
        mem_base = root / "memory"
        if mem_base.is_dir():
            for folder in _chain(mem_base, own.get("memory", "/")):
                limit = _int(_read(folder / "memory.limit_in_bytes"))
                if limit is not None and limit < UNLIMITED_V1:
                    limits.append((limit, _int(_read(folder / "memory.usage_in_bytes"))))
    memory = min(limits, key=lambda lu: lu[0] - (lu[1] or 0)) if limits else (None, None)
    return CgroupLimits(min(cpus) if cpus else None, memory[0], memory[1])


def available_cpus(limits: CgroupLimits | None = None) -> int:
    """Cores this process may use: its CPU affinity, capped by the cgroup CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    limits = read_cgroup_limits() if limits is None else limits
    if limits.cpus is not None:
        cores = min(cores, max(1, math.ceil(limits.cpus - 1e-9)))
    return cores


def meminfo_available_bytes(meminfo: Path = Path("/proc/meminfo")) -> int:
    """``MemAvailable`` (Linux), else the physical memory size."""
    for line in (_read(meminfo) or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def available_ram_bytes(limits: CgroupLimits | None = None) -> int:
    """Memory this run can still use: the machine's available memory, capped by the cgroup."""
    limits = read_cgroup_limits() if limits is None else limits
    host = meminfo_available_bytes()
    cgroup = limits.memory_available_bytes
    return host if cgroup is None else min(host, cgroup)
