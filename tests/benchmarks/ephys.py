"""Benchmark of the ephys stage on one 384-channel, 120 s NP1.0 block (AP 30 kHz + LFP 2.5 kHz).

Run ``python tests/benchmarks/ephys.py [--root DIR] [--repeats N]``. It builds the synthetic
``benchmark`` preset once (reused when ``DIR`` already holds it), then measures each step in a
fresh subprocess, so that its peak RSS (``VmHWM``, reset at exec) belongs to that step only:

* ``stage``: ``stages.ephys.run`` (checks, the converter's continuous extraction, spikes read from
  the analyzer in IBL units, folder check, moving files);
* ``continuous``: the converter's ``extract_continuous`` called directly, same thread count;
* ``spikes``: the stage's own spike step alone (open the analyzer and its curation, read
  spikes / templates / metrics, IBL normalisation, write), on the channel table ``continuous``
  wrote;
* ``converter_spikes``: the converter's ``extract_spikes`` (what ``spikes`` replaces);
* ``decode_read``: decoding the zarr chunks the converter's RMS/LFP windows touch (AP and LFP);
* ``decode_all``: decoding every chunk of both zarrs.

Decoding uses as many threads as the converter is given (2). Imports are outside the timed part.
Each step runs ``--repeats`` times and the fastest run is reported (the machine is shared). It
prints wall time and peak RSS per step and the ratios stage/continuous and stage/decode. Not
collected by pytest (no ``test_`` prefix); no timing is asserted anywhere.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MOUSE = "000123"
THREADS = 2


def _paths(root: Path) -> dict[str, Path]:
    rid = "ecephys_000123_2025-01-15_10-00-00"  # alignprep.synthetic.ephys.recording_id(MOUSE)
    data = root / "data"
    return {
        "data": data,
        "sorted": data / f"{rid}_sorted_2025-01-16_08-00-00",
        "raw": data / rid,
        "results": root / "results",
    }


def build(root: Path) -> float:
    """Build the benchmark dataset unless ``root`` already has it; return the build seconds."""
    from alignprep.synthetic.ephys import build_ephys

    marker = root / "ephys_truth.json"
    if marker.is_file():
        return 0.0
    t0_s = time.perf_counter()
    truth = build_ephys(root / "data", mouse_id=MOUSE, seed=0, preset="benchmark")
    (root / "data" / "manifest.csv").write_text(
        "mouseid,sorted_recording,probe_file,histology_track_id,ephys_collection\n"
        f"{MOUSE},{truth['sorted_recording']},ProbeA_annotations,ProbeA_track,ProbeA\n"
    )
    return time.perf_counter() - t0_s


def _stage(root: Path) -> Callable[[], None]:
    import shutil

    import aind_ephys_ibl_gui_conversion  # noqa: F401  (imported outside the timing, as below)

    from alignprep.config import ParamLayer, build_config
    from alignprep.inputs.manifest import read_manifest
    from alignprep.stages import ephys
    from alignprep.work import RunContext

    p = _paths(root)
    values = {"data_root": str(p["data"]), "results_root": str(p["results"]), "n_jobs": THREADS}
    config = build_config([ParamLayer("benchmark", values)], environ={})
    manifest = read_manifest(p["data"] / "manifest.csv")
    shutil.rmtree(p["results"], ignore_errors=True)

    def run() -> None:
        (work,) = ephys.plan_ephys(manifest)
        result = ephys.run(RunContext(config, THREADS), work)
        if result.status.value != "ok":
            raise SystemExit(f"stage failed: {result.reason}")

    return run


def _continuous(root: Path) -> Callable[[], None]:
    import contextlib
    import io
    import shutil

    from aind_ephys_ibl_gui_conversion import extract_continuous

    p = _paths(root)
    out = root / "continuous_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            extract_continuous(
                p["sorted"],
                out,
                stream_to_use="ProbeA",
                session_folder=p["raw"],
                num_parallel_jobs=THREADS,
            )

    return run


def _spikes(root: Path) -> Callable[[], None]:
    import shutil

    from alignprep.inputs.sorted import discover_probe
    from alignprep.stages.ephys import EphysSettings, check_sorted, write_spikes

    p = _paths(root)
    channels = root / "continuous_out" / "ProbeA"
    if not channels.is_dir():
        raise SystemExit("the spikes step reads the channel table of the continuous step")
    out = root / "spikes_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    for path in channels.glob("channels.*"):
        shutil.copy(path, out / path.name)
    rid = p["raw"].name
    settings = EphysSettings()

    def run() -> None:
        inputs = discover_probe(p["data"], rid, p["sorted"].name, "ProbeA")
        groups, _ = check_sorted(inputs, settings)
        write_spikes(groups, out, settings)

    return run


def _converter_spikes(root: Path) -> Callable[[], None]:
    import contextlib
    import io
    import shutil

    from aind_ephys_ibl_gui_conversion import extract_spikes

    p = _paths(root)
    out = root / "converter_spikes_out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()

    def run() -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            extract_spikes(p["sorted"], out, stream_to_use="ProbeA", session_folder=p["raw"])

    return run


def _window_chunks(n_samples: int, fs_hz: float, chunk: int) -> list[int]:
    """Chunks touched by the converter's default window plan (4 s windows, <= 30 s apart,
    at least 20 windows: ``metrics._compute_all_metrics``)."""
    import numpy as np

    duration_s, window_s = n_samples / fs_hz, 4.0
    interval_s = max(window_s, min(30.0, duration_s / 20))
    chunks: set[int] = set()
    for start_s in np.arange(0, duration_s - window_s, interval_s):
        first = int(start_s * fs_hz)
        chunks.update(range(first // chunk, (first + int(window_s * fs_hz) - 1) // chunk + 1))
    return sorted(chunks)


def _decoder(root: Path, only_read: bool) -> Callable[[], None]:
    import wavpack_numcodecs  # noqa: F401  (registers the codec)
    import zarr

    arrays = []
    for path in sorted((_paths(root)["raw"] / "ecephys" / "ecephys_compressed").glob("*.zarr")):
        group = zarr.open(str(path), mode="r")
        traces, step = group["traces_seg0"], group["traces_seg0"].chunks[0]
        fs_hz = float(group.attrs["sampling_frequency"])
        n_chunks = -(-traces.shape[0] // step)
        todo = _window_chunks(traces.shape[0], fs_hz, step) if only_read else range(n_chunks)
        arrays += [(traces, k * step, (k + 1) * step) for k in todo]

    def run() -> None:
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(lambda a: a[0][a[1] : a[2]].shape, arrays))

    return run


STEPS: dict[str, Callable[[Path], Callable[[], None]]] = {
    "stage": _stage,
    "continuous": _continuous,
    "spikes": _spikes,
    "converter_spikes": _converter_spikes,
    "decode_read": lambda root: _decoder(root, only_read=True),
    "decode_all": lambda root: _decoder(root, only_read=False),
}


def _peak_rss_mb() -> float:
    """``VmHWM`` of this process (the high-water mark of its own address space)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(step: str, root: Path, repeats: int) -> dict[str, float]:
    """Run one step ``repeats`` times, each in a fresh interpreter; the fastest run."""
    runs = []
    for _ in range(repeats):
        proc = subprocess.run(
            [sys.executable, __file__, "--root", str(root), "--step", step],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"step {step} failed:\n{proc.stderr[-4000:]}")
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return min(runs, key=lambda r: r["wall_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/tmp/alignprep_ephys_benchmark"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--step", choices=[*sorted(STEPS), "build"])
    args = parser.parse_args()
    if args.step == "build":
        sys.stdout.write(json.dumps({"build_s": build(args.root)}) + "\n")
        return
    if args.step:  # child process: one measured step, one JSON line on stdout
        run = STEPS[args.step](args.root)
        t0_s = time.perf_counter()
        run()
        wall_s = time.perf_counter() - t0_s
        sys.stdout.write(json.dumps({"wall_s": wall_s, "peak_rss_mb": _peak_rss_mb()}) + "\n")
        return
    args.root.mkdir(parents=True, exist_ok=True)
    built = subprocess.run(
        [sys.executable, __file__, "--root", str(args.root), "--step", "build"],
        capture_output=True,
        text=True,
        check=True,
    )
    build_s = json.loads(built.stdout.strip().splitlines()[-1])["build_s"]
    print(f"dataset: {args.root} (built in {build_s:.0f} s; 0 = reused)")
    order = ("decode_all", "decode_read", "continuous", "spikes", "converter_spikes", "stage")
    rows = {step: measure(step, args.root, args.repeats) for step in order}
    print(f"{'step':<16} {'wall s':>8} {'peak RSS MB':>12}")
    for step, r in rows.items():
        print(f"{step:<16} {r['wall_s']:>8.1f} {r['peak_rss_mb']:>12.0f}")
    stage = rows["stage"]["wall_s"]
    print(f"stage / continuous wall: {stage / rows['continuous']['wall_s']:.2f}")
    print(
        f"spike step: ours {rows['spikes']['wall_s']:.1f} s, the converter's extract_spikes "
        f"{rows['converter_spikes']['wall_s']:.1f} s"
    )
    print(f"stage / decode of the chunks read: {stage / rows['decode_read']['wall_s']:.2f}")
    print(f"stage / decode of every chunk: {stage / rows['decode_all']['wall_s']:.2f}")


if __name__ == "__main__":
    main()
