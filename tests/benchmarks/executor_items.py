"""What one item costs the run's own process on each executor: CPU and wall time per item.

A fresh process per run starts the executor (``start_executor``, its workers warmed up as in
a run), then keeps ``--n-jobs`` tiny items in flight, as the schedule does, until
``--items`` have finished. Each item returns a dict of 200 file digests, about the size of a
stage result. What is timed is the run's process alone (all its threads: a LocalCluster's
scheduler, nannies and client live there), from the first submit to the last result::

    .venv/bin/python tests/benchmarks/executor_items.py --rounds 3
    .venv/bin/python tests/benchmarks/executor_items.py --executors processes dask --items 400

Executors run in turn, round by round; the medians per executor are printed. Nothing is
asserted: this is a measurement, run on demand.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

from children import run_child

log = logging.getLogger("benchmarks.executor_items")
EXECUTORS = ("processes", "dask", "async")


def digests(seed: int) -> dict[str, str]:
    """A stage result's size: 200 file names and their digests."""
    return {f"file_{i:04d}.npy": f"{i * 7919 + seed:064x}" for i in range(200)}


def child(mode: str, n_jobs: int, n_items: int) -> dict[str, float]:
    """In this process: start the executor, run ``n_items`` items ``n_jobs`` at a time."""
    from alignprep.gcpause import own_process, paused

    own_process()  # as the command line's own child does
    with paused():
        from alignprep.stages import validate  # noqa: F401  (a run has imported it by now)
    from alignprep.orchestration.executors import start_executor
    from alignprep.orchestration.tasks import warm_up

    t0_s, c0_s = time.perf_counter(), time.process_time()
    with start_executor(mode, n_jobs, warm_up) as executor:
        executor.wait_started()
        t1_s, c1_s = time.perf_counter(), time.process_time()
        sent = 0
        for _ in range(min(n_jobs, n_items)):
            executor.submit(digests, sent)
            sent += 1
        finished = executor.completed()
        for _ in range(n_items):
            next(finished)
            if sent < n_items:
                executor.submit(digests, sent)
                sent += 1
        t2_s, c2_s = time.perf_counter(), time.process_time()
    return {
        "start_s": t1_s - t0_s,
        "start_cpu_s": c1_s - c0_s,
        "cpu_per_item_ms": 1000 * (c2_s - c1_s) / n_items,
        "wall_per_item_ms": 1000 * (t2_s - t1_s) / n_items,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs per executor (default 3)")
    parser.add_argument("--executors", nargs="+", default=list(EXECUTORS), choices=EXECUTORS)
    parser.add_argument("--n-jobs", type=int, default=4, help="workers, items in flight")
    parser.add_argument("--items", type=int, default=200, help="items per run (default 200)")
    parser.add_argument("--child", choices=EXECUTORS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:  # one measurement, in a fresh process: a fork server and cluster of its own
        print(json.dumps(child(args.child, args.n_jobs, args.items)))
        return
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in args.executors}
    flags = ("--n-jobs", str(args.n_jobs), "--items", str(args.items))
    for i in range(args.rounds):
        for name in args.executors:
            runs[name].append(run_child(__file__, name, *flags)[0])
            log.info("round %d %-9s %s", i + 1, name, fmt(runs[name][-1]))
    log.info("medians of %d round(s), %d items, %d in flight:", args.rounds, args.items,
             args.n_jobs)  # fmt: skip
    for name, results in runs.items():
        medians = {key: statistics.median(r[key] for r in results) for key in results[0]}
        log.info("%-9s %s", name, fmt(medians))


def fmt(result: dict[str, float]) -> str:
    """One line: per item, this process's CPU and the wall time; the start."""
    return (
        f"per item: cpu {result['cpu_per_item_ms']:.2f} ms,"
        f" wall {result['wall_per_item_ms']:.2f} ms;"
        f" start {result['start_s']:.2f} s wall, {result['start_cpu_s']:.2f} s cpu"
    )


if __name__ == "__main__":
    main()
