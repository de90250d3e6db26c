"""``python -m alignprep``: the supervisor, or in its child the CLI; leave with the exit code
whatever native threads do."""

from __future__ import annotations

import contextlib
import logging
import os
import sys

from .supervisor import is_supervised, supervise


def _exit(code: int) -> None:
    """Flush everything, then leave with exactly ``code``.

    ``os._exit`` skips interpreter finalisation. There, on Python 3.11, a C++ worker thread that
    still needs the GIL is killed with ``pthread_exit`` and takes the process down with
    ``std::terminate`` (SIGABRT, exit 134). We saw this with pyarrow's scanner thread after
    ``iblatlas.regions.BrainRegions()`` (pandas hands pyarrow a Python file object), in about 1 of
    20 processes that exit within 50 ms of that call. All our work is finished and flushed here.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def main() -> int:
    """Supervise a child that runs the command, or be that child (:mod:`.supervisor`)."""
    if not is_supervised():
        return supervise(sys.argv[1:])
    from .gcpause import own_process, paused

    own_process()  # this process runs one command (see gcpause)
    with paused():
        from .cli import main as run

    return int(run())


if __name__ == "__main__":
    _exit(main())
