"""Typed errors and the documented process exit codes."""

from __future__ import annotations

from enum import IntEnum
from pathlib import Path


class ExitCode(IntEnum):
    """Exit codes of ``code/run`` / ``alignprep`` (documented in the README)."""

    OK = 0
    RUN_FAILED = 1
    USAGE = 2
    VALIDATION_FAILED = 3


class AlignprepError(Exception):
    """Base class of every error this package raises on purpose."""

    exit_code: ExitCode = ExitCode.RUN_FAILED


class ConfigError(AlignprepError):
    """Invalid parameters: unknown key, wrong type, unreadable params source."""

    exit_code = ExitCode.USAGE


class InputError(AlignprepError):
    """Bad input data. The message names what was wrong and what was expected.

    ``file``, ``row`` (1-based line number in the file), ``layer`` and ``key`` locate the problem;
    they are prefixed to the message so every log line and report says where to look.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        layer: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.layer = layer
        self.key = key
        where = []
        if self.file is not None:
            where.append(self.file)
        if row is not None:
            where.append(f"line {row}")
        if layer is not None:
            where.append(f"layer {layer!r}")
        if key is not None:
            where.append(f"key {key!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)
