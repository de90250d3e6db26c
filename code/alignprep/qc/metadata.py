"""The per-mouse ``quality_control.json``: aind-data-schema ``QualityControl``, pending review.

One :class:`~aind_data_schema.core.quality_control.QCMetric` per QC figure and per key number
(picks per track, tracks inside the brain, units per probe, fraction of channels with a region
per probe). Every metric's status history holds one entry, ``Pending``, set by the automated
evaluator at the run's time: the pipeline draws and counts, a person decides pass or fail.

Choices against the installed schema (aind-data-schema 2.x, ``QualityControl`` 2.4.x, which
has a flat ``metrics`` list grouped by ``tags`` and ``default_grouping``; there is no separate
evaluation object):

- **stage** is ``Stage.PROCESSING`` ("when during data processing the QC metrics were
  derived"): every figure and number here is computed from alignprep's processed outputs
  (registered volumes, mapped tracks, converted spike sorting), not from raw acquisition data
  (``RAW``), and it checks the processing itself rather than a scientific result
  (``ANALYSIS``). No other asset is evaluated, so not ``MULTI_ASSET``.
- **modality** is ``Modality.SPIM`` for histology/registration/track figures and
  ``Modality.ECEPHYS`` for probe figures; the caller names it ``"SPIM"`` or ``"ECEPHYS"``.
- **reference** holds a figure's path relative to the mouse results folder (POSIX, e.g.
  ``qc/registration_centre.png``), so the folder can move; numbers have no reference.
- **value** is the number itself for a key number, and ``None`` for a figure (the picture is
  the thing to review; its verdict is the status).
- **tags** group the metrics: ``{"kind": "figure" | "number"}``, plus ``{"group": ...}`` (a
  probe or track, when the caller names one); ``default_grouping`` lists those keys.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from .. import outputs
from ..logs import get_logger

log = get_logger("qc.metadata")

#: The evaluator of every status this module writes.
AUTOMATED_EVALUATOR = "alignprep (automated; pending human review)"
#: The file name (the schema's own default file name for ``QualityControl``; named in
#: :mod:`alignprep.outputs`).
FILE_NAME = outputs.QUALITY_CONTROL_NAME
#: The modality names a caller may give, in the schema's ``Modality`` attribute spelling.
MODALITIES = ("SPIM", "ECEPHYS")
#: Tag keys, in ``default_grouping`` order.
KIND_TAG = "kind"
GROUP_TAG = "group"
NOTES = (
    "Written by alignprep. Every metric is Pending: the pipeline drew the figures and counted "
    "the numbers, a person reviews them and sets Pass or Fail. A figure's reference is its "
    "path relative to the mouse results folder."
)


@dataclass(frozen=True)
class QcFigure:
    """One QC picture.

    Attributes
    ----------
    name : str
        Metric name, unique in the document.
    file : str
        Path relative to the mouse results folder (POSIX separators), e.g. ``qc/x.png``.
    description : str
        What the picture shows and what a reviewer should look for.
    modality : str
        ``"SPIM"`` (histology, registration, tracks) or ``"ECEPHYS"`` (probes).
    group : str
        Optional probe or track the figure belongs to (a ``group`` tag); ``""`` for none.
    """

    name: str
    file: str
    description: str
    modality: str
    group: str = ""


@dataclass(frozen=True)
class QcNumber:
    """One key number (a count or a fraction).

    Attributes
    ----------
    name : str
        Metric name, unique in the document.
    value : float or int
        The number (finite; not a bool).
    description : str
        What was counted and what a reviewer should expect.
    modality : str
        ``"SPIM"`` or ``"ECEPHYS"``.
    group : str
        Optional probe or track the number belongs to (a ``group`` tag); ``""`` for none.
    """

    name: str
    value: float | int
    description: str
    modality: str
    group: str = ""


def _modality(value: str, what: str) -> Any:
    """The schema's modality object for ``"SPIM"`` or ``"ECEPHYS"``; ValueError otherwise."""
    from aind_data_schema_models.modalities import Modality

    if value not in MODALITIES:
        raise ValueError(
            f"{what}: unknown QC modality {value!r}; expected one of {', '.join(MODALITIES)}"
        )
    return getattr(Modality, value)


def _relative_file(file: str, what: str) -> str:
    """``file`` checked to be a relative POSIX path inside the mouse folder."""
    path = PurePosixPath(file)
    if (
        not file
        or "\\" in file
        or path.is_absolute()
        or ".." in path.parts
        or str(path) != file
        or path == PurePosixPath(".")
    ):
        raise ValueError(
            f"{what}: figure file {file!r} must be a plain relative POSIX path inside the "
            "mouse folder (e.g. 'qc/registration_centre.png')"
        )
    return file


def _number(value: Any, what: str) -> int | float:
    """``value`` as a plain finite int or float; ValueError for bools, NaN, inf, non-numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{what}: value {value!r} is not a number")
    if isinstance(value, numbers.Integral):
        return int(value)
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{what}: value {value!r} is not finite")
    return out


def _tags(kind: str, group: str) -> dict[str, str]:
    return {KIND_TAG: kind, GROUP_TAG: group} if group else {KIND_TAG: kind}


def quality_control(
    figures: Sequence[QcFigure],
    numbers: Sequence[QcNumber],
    timestamp: datetime,
    evaluator: str = AUTOMATED_EVALUATOR,
) -> dict:
    """The ``QualityControl`` document of one mouse, validated, as JSON-ready data.

    Parameters
    ----------
    figures : sequence of QcFigure
        The figures, one metric each, in this order.
    numbers : sequence of QcNumber
        The key numbers, one metric each, after the figures, in this order.
    timestamp : datetime
        Timezone-aware time of the run: every status entry carries it, so equal input gives
        an equal document.
    evaluator : str
        Who set the (pending) status.

    Returns
    -------
    dict
        ``QualityControl.model_dump(mode="json")`` of the validated model.

    Raises
    ------
    ValueError
        Unknown modality, a bad figure path, a non-finite or non-numeric value, a repeated
        metric name or figure file, a naive timestamp, or no metric at all.
    """
    from aind_data_schema.core.quality_control import (
        QCMetric,
        QCStatus,
        QualityControl,
        Stage,
        Status,
    )

    if timestamp.tzinfo is None or timestamp.utcoffset() is None:
        raise ValueError(f"QC timestamp {timestamp.isoformat()} is not timezone-aware")
    if not figures and not numbers:
        raise ValueError("quality_control needs at least one figure or number")
    names = [item.name for item in (*figures, *numbers)]
    if any(not name for name in names):
        raise ValueError("every QC figure and number needs a non-empty name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"QC metric names must be unique; repeated: {', '.join(repeated)}")
    files = [f.file for f in figures]
    repeated = sorted({f for f in files if files.count(f) > 1})
    if repeated:
        raise ValueError(f"each QC figure file may appear once; repeated: {', '.join(repeated)}")

    def pending() -> list[QCStatus]:
        return [QCStatus(evaluator=evaluator, status=Status.PENDING, timestamp=timestamp)]

    metrics = [
        QCMetric(
            name=fig.name,
            modality=_modality(fig.modality, f"figure {fig.name!r}"),
            stage=Stage.PROCESSING,
            value=None,
            status_history=pending(),
            description=fig.description,
            reference=_relative_file(fig.file, f"figure {fig.name!r}"),
            tags=_tags("figure", fig.group),
        )
        for fig in figures
    ]
    metrics += [
        QCMetric(
            name=num.name,
            modality=_modality(num.modality, f"number {num.name!r}"),
            stage=Stage.PROCESSING,
            value=_number(num.value, f"number {num.name!r}"),
            status_history=pending(),
            description=num.description,
            tags=_tags("number", num.group),
        )
        for num in numbers
    ]
    grouping = [KIND_TAG]
    if any(item.group for item in (*figures, *numbers)):
        grouping.append(GROUP_TAG)
    qc = QualityControl(metrics=metrics, default_grouping=grouping, notes=NOTES)
    return _canonical(qc)


def _canonical(qc: Any) -> dict:
    """The model as JSON data with its computed ``status`` mapping in sorted key order.

    The schema builds that mapping from sets, so its order depends on the hash seed.
    """
    document = json.loads(qc.model_dump_json())
    if isinstance(document.get("status"), dict):
        document["status"] = dict(sorted(document["status"].items()))
    return document


def write_quality_control(mouse_dir: Path, document: dict) -> Path:
    """Validate ``document`` and write ``<mouse_dir>/quality_control.json`` atomically.

    The bytes are the model's JSON with sorted keys, indent 2 and a trailing newline (equal
    documents give equal bytes). The file is written under a temporary name in ``mouse_dir``
    and renamed over the old one (``os.replace``): a reader sees the old or the new file, whole.

    Parameters
    ----------
    mouse_dir : Path
        The mouse results folder (created if missing).
    document : dict
        A ``QualityControl`` document, e.g. from :func:`quality_control`.

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    pydantic.ValidationError
        The document is not a valid ``QualityControl`` (nothing is written).
    """
    from aind_data_schema.core.quality_control import QualityControl

    qc = QualityControl.model_validate(document)
    path = Path(mouse_dir) / FILE_NAME
    outputs.write_bytes_atomic(path, outputs.json_bytes(_canonical(qc)))
    log.info("quality control: %s (%d metric(s))", path, len(qc.metrics))
    return path
