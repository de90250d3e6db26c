"""Typed errors and the documented process exit codes."""

from __future__ import annotations

from enum import IntEnum


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
    """Bad input data; the message names the file, row, layer or key."""


class ValidationFailedError(AlignprepError):
    """Pre-flight validation found errors."""

    exit_code = ExitCode.VALIDATION_FAILED
