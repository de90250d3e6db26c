"""Signals: the run works in a child process; this process stays responsive to SIGTERM/SIGINT.

A Python signal handler only runs between bytecodes, so a run busy inside ANTs or a codec could
ignore ``docker stop`` (SIGTERM, then SIGKILL 10 s later) for minutes and leave its workers
orphaned. Here ``python -m alignprep`` runs the same command in a child
(``ALIGNPREP_SUPERVISED=1``) at once and waits; the child parses the parameters (it reports a
bad one and leaves with exit code 2), so this process imports almost nothing (0.14 s instead of
the 0.3-0.45 s of the command line's imports, paid on every run before the child started). On
SIGTERM or SIGINT (Ctrl-C, ``docker stop``, Code Ocean's stop) it terminates the child and
every process below it, removes their temporary files, logs "interrupted; run again to resume"
and exits with 128 + the signal number (143, 130). Finished items are kept: the next run skips
them. A child killed by the system (out of memory) is reported as such instead of vanishing.
Only then does this process read the parameters itself: the roots to clean and to log to.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import ExitCode
from .orchestration.executors import die_with_parent

SUPERVISED_ENV = "ALIGNPREP_SUPERVISED"
SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger("alignprep.supervisor")


class _SignalledError(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def is_supervised() -> bool:
    """Whether this process is the supervised child (it does the work)."""
    return os.environ.get(SUPERVISED_ENV) == "1"


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (Linux ``/proc``), children before grandchildren."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    out, queue = [], [pid]
    while queue:
        for child in parents.get(queue.pop(0), []):
            out.append(child)
            queue.append(child)
    return out


def kill_tree(pid: int) -> list[int]:
    """SIGKILL ``pid`` and every process below it; return the pids killed.

    The tree is first frozen (SIGSTOP, repeated until no new process appears): a process killed
    first would hand its children to init, out of reach. Nothing is lost by not asking nicely:
    the supervisor removes the temporary files itself, and a resource tracker asked nicely
    prints warnings about "leaked" semaphores.
    """
    frozen: list[int] = []
    for _ in range(50):
        new = [p for p in [pid, *descendants(pid)] if p not in frozen]
        if not new:
            break
        for p in new:
            _send(p, signal.SIGSTOP)
        frozen += new
    for p in frozen:
        _send(p, signal.SIGKILL)
    return frozen


def _send(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def supervise(argv: Sequence[str]) -> int:
    """Run ``python -m alignprep argv`` as a child and wait; see the module docstring."""
    env = {**os.environ, SUPERVISED_ENV: "1"}

    def stop(signum: int, _frame: object) -> None:
        raise _SignalledError(signum)

    previous = {s: signal.signal(s, stop) for s in SIGNALS}
    child = None
    try:
        # the child ignores SIGINT (a terminal sends it to the whole group): we decide
        child = subprocess.Popen(
            [sys.executable, "-u", "-m", "alignprep", *argv],
            env=env,
            preexec_fn=functools.partial(_child_setup, os.getpid()),
        )
        code = child.wait()
    except _SignalledError as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if child is not None:
            kill_tree(child.pid)
            child.wait()
        name = signal.Signals(exc.signum).name
        roots = _roots(argv)
        log.error("%s received: stopped the run and its workers", name)
        _cleanup(roots)
        log.error("interrupted by %s; run again to resume (finished items are kept)", name)
        return 128 + exc.signum
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if code < 0:
        roots = _roots(argv)
        name = signal.Signals(-code).name
        hint = " (out of memory?)" if -code == signal.SIGKILL else ""
        log.error("the run was killed by %s%s; run again to resume", name, hint)
        _cleanup(roots)
        return ExitCode.RUN_FAILED
    return code


def _roots(argv: Sequence[str]) -> tuple[Path, Path] | None:
    """The results and scratch roots of ``argv`` (None when its parameters do not parse: then
    the child never got to write), with logging set up as the run's and to its log file."""
    from .cli import build_parser, config_from_args
    from .errors import ConfigError
    from .logs import configure_logging

    try:
        with contextlib.redirect_stderr(io.StringIO()):  # the child reported it already
            config = config_from_args(build_parser().parse_args(argv))
    except (ConfigError, SystemExit):
        configure_logging("INFO")
        return None
    configure_logging(config.log_level)
    _log_to_file(config.results_root)
    return config.results_root, config.scratch_root


def _child_setup(parent_pid: int) -> None:
    """In the child, before exec: ignore SIGINT, and die if the supervisor is SIGKILLed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent(parent_pid)


def _log_to_file(results_root: Path) -> None:
    """Append the supervisor's lines to the run's log file, if the run got that far."""
    from .logs import attach_log_file
    from .outputs import log_path

    path = log_path(results_root)
    if path.is_file():
        attach_log_file(path, append=True)


def _cleanup(roots: tuple[Path, Path] | None) -> None:
    """Remove the temporary files of the stopped run (when no other run holds the results
    root); ``roots`` (results, scratch) is None when the parameters never parsed."""
    from . import outputs
    from .orchestration.lock import ResultsBusyError, results_lock

    if roots is None or not roots[0].is_dir():
        return
    results_root, scratch_root = roots
    try:
        with results_lock(results_root):
            removed = outputs.remove_stale_temp_files(results_root)
            removed += outputs.remove_stale_scratch(scratch_root)
    except ResultsBusyError:
        return  # another run started meanwhile; it cleans up when it starts
    for path in removed:
        log.info("removed %s", path)
