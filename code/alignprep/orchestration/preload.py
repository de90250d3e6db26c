"""Imported by the process pool's fork server: every stage and the libraries they use, once.

Each worker is then forked from the server with all of it imported, instead of importing it
again (seconds of CPU per worker). No thread is started here: threads must not exist in a
process that forks (the stages start their own, a thread per core, in the worker).

When the run ends, the server leaves at once instead of tearing down every module it imported
(0.8 s measured, during which it still holds the run's output streams open: a ``code/run | tee``
or a capsule's log waits for it).
"""

import atexit
import multiprocessing.forkserver
import os
import sys

from ..gcpause import resume


def in_fork_server() -> bool:
    """Whether this module is being imported by a fork server's ``main`` (its preload)."""
    frame = sys._getframe()
    while frame is not None:
        code = frame.f_code
        if code.co_name == "main" and code.co_filename == multiprocessing.forkserver.__file__:
            return True
        frame = frame.f_back
    return False


def leave_now() -> None:
    """Flush the output streams and exit without the interpreter's teardown."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


_SERVER = in_fork_server()
if _SERVER:  # the server has no state of its own to save; its workers exit by themselves
    atexit.register(leave_now)
try:
    from .tasks import warm_up

    warm_up()
finally:
    if _SERVER:  # ends the pause of .preload_begin, even when an import failed
        resume()
