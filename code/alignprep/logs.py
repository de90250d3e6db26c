"""One configured logger, per-step wall times and TTY-aware progress reporting."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

LOGGER_NAME = "alignprep"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
T = TypeVar("T")


def get_logger(name: str | None = None) -> logging.Logger:
    """Return the package logger or one of its children (``alignprep.<name>``)."""
    return logging.getLogger(LOGGER_NAME if not name else f"{LOGGER_NAME}.{name}")


LOG_FILE_NAME = "alignprep.log"


class _Early(logging.Handler):
    """Keeps the records of a run until its log file can be opened (after the roots pass)."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) < 10_000:
            self.records.append(record)


def _formatter() -> logging.Formatter:
    return logging.Formatter(_FORMAT, datefmt="%H:%M:%S")


def configure_logging(level: str = "INFO", log_file: Path | None = None) -> logging.Logger:
    """One stderr handler on the package logger (idempotent), and optionally its log file.

    Without ``log_file`` the records are also kept in memory, so that :func:`attach_log_file`
    can write the whole run, from its first line, once the results root is known to be usable.
    A worker process passes the run's ``log_file`` and appends to it.
    """
    logger = get_logger()
    logger.setLevel(level.upper())
    if not any(getattr(h, "_alignprep", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_formatter())
        handler._alignprep = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        if log_file is None:
            logger.addHandler(_Early())
    if log_file is not None:
        attach_log_file(log_file, append=True)
    logger.propagate = True
    return logger


def attach_log_file(path: Path, append: bool = False) -> Path:
    """Write the package's log records to ``path`` too (the same lines as the console).

    A new run truncates the file and first writes the records kept since it started; workers
    and the supervisor append.
    """
    logger = get_logger()
    if any(getattr(h, "_alignprep_file", None) == str(path) for h in logger.handlers):
        return path
    early = [h for h in logger.handlers if isinstance(h, _Early)]
    if not append:
        Path(path).write_bytes(b"")  # truncate; then append like every other process does
    handler = logging.FileHandler(path, mode="a", encoding="utf-8")  # O_APPEND: no overwrites
    handler.setFormatter(_formatter())
    handler._alignprep_file = str(path)  # type: ignore[attr-defined]
    for keeper in early:
        for record in keeper.records:
            if record.levelno >= logger.getEffectiveLevel():
                handler.handle(record)
        logger.removeHandler(keeper)
    logger.addHandler(handler)
    return path


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


@contextmanager
def heartbeat(
    desc: str,
    every_s: float = 30.0,
    logger: logging.Logger | None = None,
    tty: bool | None = None,
) -> Iterator[None]:
    """Show that one long opaque call (an ANTs warp, the converter) is still running.

    On a terminal, a bar with the elapsed time; otherwise a plain line every ``every_s``. A
    background thread reports, because the call itself never returns to Python until done.
    """
    import threading

    if tty is None:
        tty = sys.stderr.isatty()
    log = logger or get_logger()
    stop = threading.Event()
    t0_s = time.perf_counter()

    def beat() -> None:
        if tty:
            from tqdm import tqdm

            with tqdm(
                desc=desc, total=None, file=sys.stderr, bar_format="{desc}: {elapsed}"
            ) as bar:
                while not stop.wait(1.0):
                    bar.refresh()
            return
        while not stop.wait(every_s):
            log.info("%s: still running after %.0f s", desc, time.perf_counter() - t0_s)

    thread = threading.Thread(target=beat, name=f"heartbeat {desc}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
