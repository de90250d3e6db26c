"""Wall time and peak memory of ``code/run --demo``, all its processes together.

The peak is the largest sum of the resident set sizes of the run's whole process tree (the
supervisor, the run and its workers), sampled every 0.1 s from /proc; a single process's
``ru_maxrss`` would miss workers that run at the same time. Run on demand:

    .venv/bin/python tests/benchmarks/demo.py [--n-jobs N] [--repeats K]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "code"))

from alignprep.supervisor import descendants  # noqa: E402


def proc_bytes(pid: int, key: str = "VmRSS", table: str = "status") -> int:
    """A ``kB`` field of ``/proc/<pid>/<table>`` in bytes (0 once the process is gone)."""
    try:
        for line in Path(f"/proc/{pid}/{table}").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid: int) -> int:
    """Resident set size of one process (0 once it is gone)."""
    return proc_bytes(pid)


def run_once(n_jobs: str, keep: Path | None) -> tuple[float, int, int]:
    """(wall s, peak tree RSS bytes, exit code) of one demo run in a fresh folder."""
    work = Path(tempfile.mkdtemp(prefix="alignprep-demo-bench-"))
    env = {**os.environ, "ALIGNPREP_PYTHON": sys.executable}
    cmd = [
        str(REPO / "code" / "run"),
        "--demo",
        "--results-root",
        str(work / "results"),
        "--scratch-root",
        str(work / "scratch"),
        "--n-jobs",
        n_jobs,
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, sum(rss_bytes(p) for p in [proc.pid, *descendants(proc.pid)]))
        time.sleep(0.1)
    wall = time.perf_counter() - t0
    if keep is not None:
        shutil.copytree(work, keep, dirs_exist_ok=True)
    shutil.rmtree(work, ignore_errors=True)
    return wall, peak, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", default="-1", help="passed to code/run (default: -1)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="copy the last run's folder here")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, n_jobs: {args.n_jobs}")
    for k in range(args.repeats):
        wall, peak, code = run_once(args.n_jobs, args.keep if k == args.repeats - 1 else None)
        print(f"run {k + 1}: exit {code}, wall {wall:.1f} s, peak RSS {peak / 2**30:.2f} GB")


if __name__ == "__main__":
    main()
