"""One configured logger, per-step wall times and TTY-aware progress reporting."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

LOGGER_NAME = "alignprep"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
T = TypeVar("T")


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger or one of its children (``alignprep.<name>``)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


def configure_logging(level: str = "INFO") -> logging.Logger:
    """Attach one stderr handler to the package logger (idempotent)."""
    logger = get_logger()
    logger.setLevel(level.upper())
    if not any(getattr(h, "_alignprep", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(_FORMAT, datefmt="%H:%M:%S"))
        handler._alignprep = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.propagate = True
    return logger


@contextmanager
def step(name: str, logger: logging.Logger | None = None) -> Iterator[None]:
    """Log the start of a step and, on exit, its wall time (or failure)."""
    log = logger or get_logger()
    log.info("step %s: started", name)
    t0_s = time.perf_counter()
    try:
        yield
    except BaseException:
        log.error("step %s: failed after %.2f s", name, time.perf_counter() - t0_s)
        raise
    log.info("step %s: done in %.2f s", name, time.perf_counter() - t0_s)


def progress(
    items: Iterable[T],
    desc: str,
    total: int | None = None,
    every_s: float = 30.0,
    logger: logging.Logger | None = None,
    tty: bool | None = None,
) -> Iterator[T]:
    """Iterate with a progress bar on a TTY, else with a plain log line every ``every_s``."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if tty is None:
        tty = sys.stderr.isatty()
    if tty:
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, total=total, file=sys.stderr)
        return
    log = logger or get_logger()
    of_total = f"/{total}" if total is not None else ""
    t0_s = last_s = time.perf_counter()
    n = 0
    for n, item in enumerate(items, start=1):
        yield item
        now_s = time.perf_counter()
        if now_s - last_s >= every_s:
            log.info("%s: %d%s after %.1f s", desc, n, of_total, now_s - t0_s)
            last_s = now_s
    log.info("%s: %d%s done in %.1f s", desc, n, of_total, time.perf_counter() - t0_s)
