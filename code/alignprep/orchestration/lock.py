"""One run per results root at a time: an exclusive ``flock`` on ``<results_root>/.alignprep.lock``.

The lock is released by the kernel when the process ends, however it ends (SIGKILL included), so a
killed run never blocks the next one. Two runs on the same results root would interleave writes
and re-run state; the second one is refused with the first one's pid, host and start time.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .. import outputs
from ..errors import AlignprepError, ExitCode


class ResultsBusyError(AlignprepError):
    """Another run holds the results root."""

    exit_code = ExitCode.VALIDATION_FAILED


@contextmanager
def results_lock(results_root: Path) -> Iterator[Path]:
    """Hold the results root's lock for the duration of the ``with`` block.

    The lock file is removed on exit. A run that opened it just before it was removed would hold
    a lock on a deleted file, so after locking we check that the path still names our file.
    """
    path = outputs.lock_path(Path(results_root))
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise ResultsBusyError(
                f"results root {results_root} is in use by another run ({_who(holder)}); wait "
                "for it to finish or use another --results-root"
            ) from None
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # removed by the run that just finished: take the new file
    try:
        stamp = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(stamp).encode(), 0)
        yield path
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)  # releases the flock


def _who(holder: str) -> str:
    try:
        info = json.loads(holder)
        return f"pid {info['pid']} on {info['host']}, started {info['started']}"
    except (ValueError, KeyError, TypeError):
        return "another process"
