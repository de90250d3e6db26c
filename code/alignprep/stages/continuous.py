"""The converter's continuous extraction: channel table, RMS, LFP spectra, band correlations.

``extract_continuous`` of ``aind-ephys-ibl-gui-conversion`` reads the raw session's compressed
zarrs and writes ``channels.*``, ``_iblqc_*`` and ``band_corr/`` into ``<out>/<probe>/``. Its
prints go to the debug log and its warnings and errors to ours.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..logs import get_logger, heartbeat

if TYPE_CHECKING:
    from ..inputs.sorted import ProbeInputs
    from .ephys import EphysSettings

log = get_logger("stages.ephys")


class _LogWriter(io.TextIOBase):
    """A text stream that sends each printed line to a logger (the converter prints)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.logger.debug("converter: %s", line.rstrip())
        return len(text)


class _Forward(logging.Handler):
    """Root-logger handler sending the converter's warnings and errors to our logger."""

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(log.name.split(".")[0]):  # ours propagate to root too
            log.log(record.levelno, "converter: %s", record.getMessage())


def run_continuous(inputs: ProbeInputs, out: Path, settings: EphysSettings, n_threads: int) -> Path:
    """Run ``extract_continuous`` for the probe's stream; return the probe folder it wrote."""
    from aind_ephys_ibl_gui_conversion import extract_continuous

    out.mkdir(parents=True)
    stream = inputs.streams.stream
    forward = _Forward(logging.WARNING)
    logging.getLogger().addHandler(forward)
    try:
        with (
            contextlib.redirect_stdout(_LogWriter(log)),
            warnings.catch_warnings(record=True) as caught,
            heartbeat(f"{inputs.recording_id}/{inputs.collection}: RMS and LFP windows"),
        ):
            warnings.simplefilter("always")
            extract_continuous(
                inputs.sorted_asset,  # only its name is used, when session_folder is None
                out,
                stream_to_use=stream,
                session_folder=inputs.raw.path,
                probe_surface_finding=inputs.surface.path if inputs.surface else None,
                rms_window_interval=settings.rms_window_interval_s,
                rms_window_duration=settings.rms_window_duration_s,
                num_parallel_jobs=n_threads,
            )
    finally:
        logging.getLogger().removeHandler(forward)
    for message in sorted({str(w.message) for w in caught}):
        log.debug("converter warning: %s", message)
    folders = [p for p in out.iterdir() if p.is_dir()]
    if len(folders) != 1:
        raise RuntimeError(f"the converter wrote {len(folders)} probe folders in {out}")
    return folders[0]
