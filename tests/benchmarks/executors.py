"""Executors on the demo: serial vs the process pool vs Dask (issue 14), wall time per run.

Each round runs ``code/run`` once per executor, in turn (A B C A B C ...), each into a fresh
results root (the dataset is built once in a shared scratch root and reused, as a re-run
would), and prints every wall time, the medians and the ratios to serial::

    .venv/bin/python tests/benchmarks/executors.py --rounds 3
    .venv/bin/python tests/benchmarks/executors.py --dataset four_probes --n-jobs 4

``demo`` is ``code/run --demo``; ``four_probes`` the same mouse with four probe folders
(``SyntheticSpec.four_probes``), run with ``--n-jobs`` workers on the pool and on a Dask
LocalCluster of as many single-threaded worker processes.

The ratios are taken round by round (each executor's run against the serial run of the same
round, then their median): a machine whose speed drifts between minutes moves both runs of a
round together. Nothing is asserted: this is a measurement, run on demand.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("benchmarks.executors")
CODE_RUN = Path(__file__).resolve().parents[2] / "code" / "run"
EXECUTORS = ("serial", "processes", "dask")


def executor_args(name: str, n_jobs: int) -> list[str]:
    """The flags of one executor: serial is always one job."""
    return ["--executor", name, "--n-jobs", "1" if name == "serial" else str(n_jobs)]


def run_once(name: str, source: list[str], scratch: Path, work: Path, n_jobs: int) -> float:
    """One run on executor ``name``; its wall time in seconds."""
    results = work / f"results_{name}"
    shutil.rmtree(results, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if k != "CO_CPUS"}
    env["ALIGNPREP_PYTHON"] = sys.executable
    cmd = [str(CODE_RUN), *source, "--results-root", str(results), "--scratch-root", str(scratch)]
    t0_s = time.perf_counter()
    proc = subprocess.run(
        [*cmd, *executor_args(name, n_jobs)], env=env, capture_output=True, text=True
    )
    wall_s = time.perf_counter() - t0_s
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return wall_s


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per executor (default 3)")
    parser.add_argument("--executors", nargs="+", default=list(EXECUTORS), choices=EXECUTORS)
    parser.add_argument("--dataset", choices=("demo", "four_probes"), default="demo")
    parser.add_argument("--n-jobs", type=int, default=2, help="workers of the pool and of Dask")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory(prefix="bench_executors_") as tmp:
        work = Path(tmp)
        scratch = work / "scratch"
        source = ["--demo"]
        if args.dataset == "four_probes":
            sys.path.insert(0, str(CODE_RUN.parent))
            from alignprep.synthetic import SyntheticSpec, build_or_reuse

            dataset, _ = build_or_reuse(work / "four_probes", SyntheticSpec.four_probes())
            source = ["--data-root", str(dataset.data_root)]
        log.info("%s, %d worker(s) for the pool and Dask", args.dataset, args.n_jobs)
        run_once(args.executors[0], source, scratch, work, args.n_jobs)  # warm-up: dataset, cache
        times: dict[str, list[float]] = {name: [] for name in args.executors}
        for i in range(args.rounds):
            for name in args.executors:
                times[name].append(run_once(name, source, scratch, work, args.n_jobs))
                log.info("round %d %-9s %.1f s", i + 1, name, times[name][-1])
    for name, runs in times.items():
        speedup = paired(times, "serial", name, "(its speed-up)")
        log.info("%-9s median %.1f s (min %.1f, max %.1f)%s", name, statistics.median(runs),
                 min(runs), max(runs), speedup)  # fmt: skip
    if "processes" in times and "dask" in times:
        log.info("Dask vs the process pool:%s", paired(times, "dask", "processes", "(time ratio)"))


def paired(times: dict[str, list[float]], a: str, b: str, what: str) -> str:
    """`` median a/b = R (min, max) what``: the ratio of each round's two runs, their median."""
    if a not in times or a == b:
        return ""
    ratios = [x / y for x, y in zip(times[a], times[b], strict=True)]
    return (
        f"  median {a}/{b} = {statistics.median(ratios):.3f} "
        f"({min(ratios):.3f}-{max(ratios):.3f}) {what}"
    )


if __name__ == "__main__":
    main()
