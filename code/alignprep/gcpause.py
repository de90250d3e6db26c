"""Imports without garbage collection; in a process of one run, what they imported frozen.

Importing the stages' libraries leaves about 300,000 objects that live as long as the process.
While they are imported, Python's cyclic garbage collector runs a full collection each time the
heap has grown by a quarter, and each walks every object: five of them, 0.4-0.6 s of CPU, in the
run's process and again in the pool's fork server. Every later full collection walks them again,
in each worker forked from that server too. They are never garbage, so the collector is paused
while a process imports; when the last pause ends, a process that lives for one run
(:func:`own_process`: the command line's run and the fork server) also moves every object alive
into the permanent generation that collections skip (``gc.freeze``, which the Python
documentation recommends before a server forks its workers). A library caller's process (a
test, a notebook) is never frozen. Only imports are paused, never the reading of data.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_freeze = False


def own_process() -> None:
    """Declare this process to live for one run: ending a pause freezes what is alive."""
    global _freeze
    _freeze = True


def pause() -> None:
    """Stop cyclic garbage collection until the matching :func:`resume` (pauses nest, also
    across threads)."""
    global _depth
    with _lock:
        if _depth == 0:
            gc.disable()
        _depth += 1


def resume() -> None:
    """End one pause; the last one freezes (see :func:`own_process`) and collects again."""
    global _depth
    with _lock:
        _depth -= 1
        if _depth == 0:
            if _freeze:
                gc.freeze()
            gc.enable()


@contextmanager
def paused() -> Iterator[None]:
    """A pause for the duration of the block."""
    pause()
    try:
        yield
    finally:
        resume()
