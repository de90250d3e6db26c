"""Curation of one analyzer: unit labels of every pipeline generation, and ``curation.json``.

Label columns (AIND pipeline, by generation): ``default_qc`` (bool, threshold QC);
``decoder_label`` / ``decoder_probability`` (aind-ephys-unit-classifier; the collector keeps them
as aliases of the UnitRefine ones); ``unitrefine_label`` / ``unitrefine_probability`` and
``bombcell_label`` (aind-ephys-curation 2.x). They are sorting properties of the analyzer or of
the curated sorting ``curated/<rec>/``; property names are matched case-insensitively, the
analyzer's value wins, and ``*_label`` values are lower-cased (the Allen GUI compares
``unitrefine_label`` with ``"sua"`` / ``"noise"``). ``curated/<rec>/curation.json`` (SpikeInterface
curation format 0, 1 or 2) lists ``removed`` units and proposed ``merges``: removed units can be
dropped on request, merges are never applied. Nothing is written.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .sorted import AnalyzerRef

LABEL_COLUMNS = (
    "default_qc",
    "unitrefine_label",
    "unitrefine_probability",
    "decoder_label",
    "decoder_probability",
    "bombcell_label",
)
CURATION_JSON = "curation.json"
CURATED_LAYOUT = "a SpikeInterface sorting folder, as sorting.save(folder=...) writes it"
_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


@dataclass(frozen=True)
class UnitCuration:
    """Labels (column -> one value per analyzer unit) and the curation.json decisions."""

    labels: dict[str, np.ndarray] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    merges: tuple[tuple[str, ...], ...] = ()
    sources: tuple[str, ...] = ()  # where the labels came from, for notes


def _as_bool(values: np.ndarray, key: str, source: Path) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool:
        return arr
    text = [str(v).strip().lower() for v in arr]
    if not all(t in _TRUE | _FALSE for t in text):
        bad = sorted({t for t in text if t not in _TRUE | _FALSE})[:3]
        raise InputError(
            f"property {key!r} has values {bad}; expected booleans (True/False)", file=source
        )
    return np.array([t in _TRUE for t in text], dtype=bool)


def sorting_labels(sorting: Any, source: Path) -> dict[str, np.ndarray]:
    """The label columns a sorting carries as properties (case-insensitive names).

    Raises
    ------
    InputError
        Two properties differing only in case, or a ``default_qc`` that is not boolean.
    """
    by_lower: dict[str, str] = {}
    for key in sorting.get_property_keys():
        low = key.lower()
        if low in LABEL_COLUMNS and low in by_lower:
            raise InputError(
                f"properties {by_lower[low]!r} and {key!r} name the same label column", file=source
            )
        by_lower[low] = key
    labels: dict[str, np.ndarray] = {}
    for column in LABEL_COLUMNS:
        if column not in by_lower:
            continue
        values = np.asarray(sorting.get_property(by_lower[column]))
        if column == "default_qc":
            values = _as_bool(values, by_lower[column], source)
        elif column.endswith("_label"):
            values = np.array([str(v).strip().lower() for v in values], dtype=object)
        else:
            values = values.astype(np.float64)
        labels[column] = values
    return labels


def load_curated_sorting(path: Path) -> Any:
    """The curated sorting at ``path`` (``curated/<rec>``)."""
    import spikeinterface as si

    from .analyzers import trusted_pickles

    try:
        with trusted_pickles(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return si.load(path)
    except Exception as exc:  # SpikeInterface raises many types on unreadable folders
        raise InputError(
            f"cannot open the curated sorting ({type(exc).__name__}: {exc}); expected "
            f"{CURATED_LAYOUT}",
            file=path,
        ) from None


def _reorder(values: np.ndarray, ids: list[str], unit_ids: tuple[str, ...]) -> np.ndarray:
    index = {u: k for k, u in enumerate(ids)}
    return np.asarray(values)[[index[u] for u in unit_ids]]


def curated_labels(ref: AnalyzerRef, unit_ids: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Labels of ``curated/<rec>``, in the analyzer's unit order (empty without one).

    Raises
    ------
    InputError
        Unreadable curated sorting, or unit ids that are not the analyzer's.
    """
    if ref.curated is None:
        return {}
    sorting = load_curated_sorting(ref.curated)
    ids = [str(u) for u in sorting.unit_ids]
    if sorted(ids) != sorted(unit_ids):
        extra, missing = sorted(set(ids) - set(unit_ids)), sorted(set(unit_ids) - set(ids))
        raise InputError(
            f"{ref.where}: the curated sorting's unit ids do not match analyzer "
            f"{ref.path.name} ({len(ids)} vs {len(unit_ids)} units; only curated: {extra[:8]}, "
            f"only in the analyzer: {missing[:8]}); expected the same units, as the AIND "
            "collector saves the analyzer's own sorting",
            file=ref.curated,
        )
    return {k: _reorder(v, ids, unit_ids) for k, v in sorting_labels(sorting, ref.curated).items()}


def read_curation_json(path: Path, unit_ids: tuple[str, ...], where: str) -> UnitCuration:
    """``removed`` and ``merges`` of a ``curation.json``, checked against the analyzer's units.

    Raises
    ------
    InputError
        Unreadable JSON, a document SpikeInterface's curation model rejects, or unit ids that
        are not the analyzer's.
    """
    from pydantic import ValidationError
    from spikeinterface.curation.curation_model import Curation

    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        model = Curation(**doc)
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{where}: unreadable curation file: {exc}", file=path) from None
    except (ValidationError, ValueError, TypeError) as exc:
        first = str(exc).splitlines()[0]
        raise InputError(
            f"{where}: not a SpikeInterface curation document (format_version 1 or 2 with "
            f"unit_ids, removed, merges): {first}",
            file=path,
        ) from None
    listed = [str(u) for u in model.unit_ids]
    if sorted(listed) != sorted(unit_ids):
        raise InputError(
            f"{where}: unit_ids ({len(listed)}) are not the analyzer's {len(unit_ids)} units",
            file=path,
            key="unit_ids",
        )
    removed = tuple(str(u) for u in model.removed or ())
    merges = tuple(tuple(str(u) for u in m.unit_ids) for m in model.merges or ())
    return UnitCuration(removed=removed, merges=merges, sources=(str(path),))


def read_unit_curation(
    ref: AnalyzerRef, unit_ids: tuple[str, ...], analyzer_labels: dict[str, np.ndarray]
) -> UnitCuration:
    """Every label of an analyzer's units (analyzer first, then ``curated/``) and curation.json.

    ``unitrefine_label`` is filled from ``decoder_label`` when only the older name exists, as the
    converter and the AIND collector do: the Allen GUI's UnitRefine filters read that column.
    """
    labels = dict(analyzer_labels)
    sources = [str(ref.path)] if analyzer_labels else []
    from_curated = curated_labels(ref, unit_ids)
    if from_curated:
        sources.append(str(ref.curated))
    for column, values in from_curated.items():
        labels.setdefault(column, values)
    if "unitrefine_label" not in labels and "decoder_label" in labels:
        labels["unitrefine_label"] = labels["decoder_label"]
    removed: tuple[str, ...] = ()
    merges: tuple[tuple[str, ...], ...] = ()
    json_path = ref.curated / CURATION_JSON if ref.curated is not None else None
    if json_path is not None and json_path.is_file():
        decisions = read_curation_json(json_path, unit_ids, ref.where)
        removed, merges = decisions.removed, decisions.merges
        sources.append(str(json_path))
    ordered = {c: labels[c] for c in LABEL_COLUMNS if c in labels}
    return UnitCuration(ordered, removed, merges, tuple(sources))
