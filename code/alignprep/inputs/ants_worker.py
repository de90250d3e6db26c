"""ANTs calls in a child process, so that a native crash in ITK becomes an error naming the file.

ITK's transform readers dereference a null pointer after failing to parse a file (SIGSEGV), and
nothing in Python can catch that. The parent sends a list of tasks as JSON on stdin; the child
(``python -m alignprep.inputs.ants_worker PROGRESS PARENT_PID``, killed if its parent dies)
appends one JSON line to PROGRESS before each task (``start``, with its files) and one after
(``done`` with the result, or ``failed``).
When the child dies by a signal, the task that started last names the file; the parent records
it as ``crashed``, skips every later task that reads that file, and runs the rest in a new child.

Tasks:
* ``header``: ITK's view of an image header (``ants.image_header_info``), no voxels read;
* ``points``: ``ants.apply_transforms_to_points`` of ``points`` (LPS mm).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..logs import get_logger

log = get_logger("inputs.ants_worker")

Status = Literal["ok", "failed", "crashed", "skipped"]


@dataclass(frozen=True)
class AntsTask:
    """One ANTs call. ``files`` are every file it reads (the ones a crash is blamed on)."""

    id: str
    kind: Literal["header", "points"]
    files: tuple[str, ...]
    invert: tuple[bool, ...] = ()
    points: list[list[float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The request object (``dataclasses.asdict`` would deep-copy every point)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "files": list(self.files),
            "invert": list(self.invert),
            "points": self.points,
        }


@dataclass(frozen=True)
class TaskOutcome:
    """What became of a task: its result, or why there is none."""

    status: Status
    result: Any = None
    message: str = ""
    seconds: float = 0.0
    peak_rss_mb: float = 0.0  # of the child process, when the task ended

    @property
    def ok(self) -> bool:
        """Whether the task produced a result."""
        return self.status == "ok"


def run_ants_tasks(tasks: list[AntsTask], timeout_s: float = 3600.0) -> dict[str, TaskOutcome]:
    """Run ``tasks`` in child processes; every task gets an outcome, the parent never dies."""
    outcomes: dict[str, TaskOutcome] = {}
    crashed_files: set[str] = set()
    pending = list(tasks)
    while pending:
        runnable = []
        for task in pending:
            reason = _blocked(task, crashed_files)
            if reason:
                outcomes[task.id] = TaskOutcome("skipped", message=reason)
            else:
                runnable.append(task)
        if not runnable:
            break
        events, returncode, stderr = _run_child(runnable, timeout_s)
        started = None
        for event in events:
            if event["event"] == "start":
                started = event["id"]
            elif event["event"] == "done":
                outcomes[event["id"]] = TaskOutcome(
                    "ok", event["result"], seconds=event["s"], peak_rss_mb=event["rss_mb"]
                )
                log.debug(
                    "ANTs task %s: %.2f s, child peak RSS %.0f MB",
                    event["id"],
                    event["s"],
                    event["rss_mb"],
                )
            elif event["event"] == "failed":
                outcomes[event["id"]] = TaskOutcome("failed", message=event["error"])
        if returncode != 0 and started is not None and started not in outcomes:
            outcomes[started] = TaskOutcome("crashed", message=_death(returncode, stderr))
            crashed_files.update(next(t.files for t in runnable if t.id == started))
            log.warning("ANTs worker died in task %s: %s", started, outcomes[started].message)
        else:  # a clean exit, or a death outside any task: nothing more will come
            why = "the worker gave no result" if returncode == 0 else _death(returncode, stderr)
            for task in runnable:
                outcomes.setdefault(task.id, TaskOutcome("failed", message=why))
        pending = [t for t in runnable if t.id not in outcomes]
    return outcomes


def _blocked(task: AntsTask, crashed_files: set[str]) -> str:
    """Why ``task`` must not run (it reads a file that crashed ANTs)."""
    bad = next((f for f in task.files if f in crashed_files), None)
    return f"not run: {bad} crashed ANTs" if bad else ""


def _run_child(tasks: list[AntsTask], timeout_s: float) -> tuple[list[dict], int, str]:
    """One child process over ``tasks``: its progress events, return code and stderr tail."""
    import alignprep

    env = dict(os.environ)
    package_root = str(Path(alignprep.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    request = json.dumps({"tasks": [t.to_json() for t in tasks]})
    with tempfile.TemporaryDirectory(prefix="alignprep_ants_") as tmp:
        progress = Path(tmp) / "progress.jsonl"
        progress.touch()
        cmd = [
            sys.executable,
            "-m",
            "alignprep.inputs.ants_worker",
            str(progress),
            str(os.getpid()),
        ]
        try:
            proc = subprocess.run(
                cmd, input=request, capture_output=True, text=True, timeout=timeout_s, env=env
            )
            returncode, stderr = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired as exc:  # run() has killed and reaped the child
            returncode = -int(signal.SIGKILL)
            stderr = f"timed out after {timeout_s:g} s\n{_text(exc.stderr)}"
        events = _events(progress.read_text())
    return events, returncode, stderr


def _events(text: str) -> list[dict[str, Any]]:
    """The progress lines (a line cut short by the child's death is dropped)."""
    events = []
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def _text(data: bytes | str | None) -> str:
    if isinstance(data, bytes):
        return data.decode(errors="replace")
    return data or ""


def _death(returncode: int, stderr: str) -> str:
    """How the child ended, with the last lines ITK printed."""
    if returncode < 0:
        try:
            how = f"killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            how = f"killed by signal {-returncode}"
    else:
        how = f"exited with code {returncode}"
    tail = " | ".join(line.strip() for line in stderr.strip().splitlines()[-4:] if line.strip())
    return f"ANTs {how}" + (f" ({tail})" if tail else "")


# ----------------------------------------------------------------------------- the child


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux ``VmHWM``: not inherited across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run_task(task: dict[str, Any]) -> Any:
    import ants
    import pandas as pd

    if task["kind"] == "header":
        info = ants.image_header_info(task["files"][0])
        return {
            "dimensions": [float(x) for x in info["dimensions"]],
            "origin": [float(x) for x in info["origin"]],
            "spacing": [float(x) for x in info["spacing"]],
            # antsImageHeaderInfo returns the direction transposed (rows = index axes)
            "direction": np.asarray(info["direction"], dtype=float).T.tolist(),
            "components": int(info["nComponents"]),
            "pixelclass": str(info["pixelclass"]),
        }
    pts = np.asarray(task["points"], dtype=float).reshape(-1, 3)
    frame = pd.DataFrame(pts, columns=["x", "y", "z"])
    out = ants.apply_transforms_to_points(
        3, frame, list(task["files"]), whichtoinvert=list(task["invert"])
    )
    return out[["x", "y", "z"]].to_numpy(dtype=float).tolist()


def die_with_parent(parent_pid: int) -> None:
    """Be killed when the parent dies, so that no worker outlives a killed run (Linux).

    ``prctl(PR_SET_PDEATHSIG, SIGKILL)``; a parent already gone by then is noticed by pid.
    Elsewhere a no-op: the worker then finishes its tasks and exits on its own.
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:
        os._exit(1)


def main(argv: list[str]) -> int:
    """Child entry: tasks on stdin, progress and results appended to ``argv[0]``."""
    if len(argv) > 1:
        die_with_parent(int(argv[1]))
    request = json.loads(sys.stdin.read())
    fd = os.open(argv[0], os.O_WRONLY | os.O_APPEND)

    def emit(obj: dict[str, Any]) -> None:
        os.write(fd, (json.dumps(obj) + "\n").encode())  # unbuffered: survives a crash

    for task in request["tasks"]:
        emit({"event": "start", "id": task["id"], "files": task["files"]})
        t0_s = time.perf_counter()
        try:
            result = _run_task(task)
        except Exception as exc:  # ANTs raises bare Exception / RuntimeError
            emit({"event": "failed", "id": task["id"], "error": f"{type(exc).__name__}: {exc}"})
            continue
        seconds = round(time.perf_counter() - t0_s, 3)
        emit(
            {
                "event": "done",
                "id": task["id"],
                "result": result,
                "s": seconds,
                "rss_mb": peak_rss_mb(),
            }
        )
    os.close(fd)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
