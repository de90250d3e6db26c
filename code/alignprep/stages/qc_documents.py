"""The QC page and ``quality_control.json`` of one mouse, written at packaging.

They need the run's results (which items succeeded, which failed and why), so they are written by
the run process after every item, from the QC item's index (``qc/figures.json``,
:mod:`alignprep.stages.qc`) and the probe folders' region-along-track tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd

from .. import outputs
from ..config import PipelineConfig
from ..logs import get_logger
from ..work import QcWork, StageResult

log = get_logger("stages.qc_documents")


SECTIONS = ("Registration", "Tracks on histology", "Tracks in the atlas", "Probes")


def read_indexes(config: PipelineConfig, items: Sequence[QcWork]) -> list[dict]:
    """The index of every QC item that drew (in plan order); an unreadable one is skipped."""
    from .qc import index_path

    out = []
    for work in items:
        path = index_path(config, work)
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("QC index %s not read: %s", path, exc)
    return out


def region_tables(config: PipelineConfig, items: Sequence[QcWork]) -> dict[str, pd.DataFrame]:
    """Each probe shank's region-along-track table (channel regions), by ``<probe><suffix>``."""
    tables: dict[str, pd.DataFrame] = {}
    for work in items:
        for t in work.tracks if work.scope == "probe" else ():
            probe = outputs.probe_dir(
                config.results_root, work.mouse_id, t.recording_id, t.collection
            )
            path = outputs.channel_regions_paths(probe, t.suffix)["regions"]
            if path.is_file():
                tables[f"{t.recording_id}/{t.collection}{t.suffix}"] = pd.read_csv(path)
    return tables


def write_qc_documents(
    config: PipelineConfig,
    items: Sequence[QcWork],
    results: Sequence[StageResult],
    timestamp: datetime,
) -> list[Path]:
    """Write ``qc/index.html`` and ``quality_control.json`` from the QC items that finished
    (``items``); return them and the figures they show ([] when nothing was drawn).

    ``timestamp`` dates the pending statuses: the start of the run that drew the figures, so an
    unchanged re-run writes the same bytes.
    """
    from ..qc.metadata import QcFigure, QcNumber, quality_control, write_quality_control
    from ..qc.page import PageFigure, PageItem, render_page, write_page

    if not items:
        return []
    mouse_id = items[0].mouse_id
    indexes = read_indexes(config, items)
    qc = outputs.qc_dir(config.results_root, mouse_id)
    figures = [f for i in indexes for f in i.get("figures", []) if (qc / f["file"]).is_file()]
    figures.sort(key=lambda f: SECTIONS.index(f["section"]) if f["section"] in SECTIONS else 99)
    numbers = [n for i in indexes for n in i.get("numbers", [])]
    notes = [n for i in indexes for n in i.get("notes", [])]
    if not figures and not numbers:
        return []
    page = render_page(
        mouse_id,
        [PageFigure(f["file"], f["title"], f["section"], f["caption"]) for f in figures],
        [PageItem(r.name, str(r.status), r.reason, r.seconds) for r in results],
        region_tables(config, items),
        notes=notes,
    )
    written = [write_page(qc, page)]
    document = quality_control(
        [
            QcFigure(
                f["title"], f"{outputs.QC_DIR}/{f['file']}", f["caption"], f["modality"], f["group"]
            )
            for f in figures
        ],
        [
            QcNumber(n["name"], n["value"], n["description"], n["modality"], n["group"])
            for n in numbers
        ],
        timestamp,
    )
    mouse = outputs.mouse_dir(config.results_root, mouse_id)
    written.append(write_quality_control(mouse, document))
    log.info("QC page: %s", written[0])
    return written + [qc / f["file"] for f in figures]
