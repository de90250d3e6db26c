"""SortingAnalyzers of the sorted asset, read with SpikeInterface: metadata and spike data.

:func:`analyzer_meta` opens an analyzer without its extensions (validation uses it: unit ids,
channel locations, contact ids). :func:`read_analyzer` loads only the extensions the ALF files
need, in SpikeInterface's own conventions (uV, sample indices, signed amplitudes); turning them
into IBL conventions is :mod:`alignprep.stages.alf`'s job. Where an optional extension is missing
the output it feeds is computed another way and :attr:`AnalyzerSpikes.notes` says how
(``sorted.EXTENSION_USES`` names what each extension feeds). Nothing is written.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from .sorted import EXTENSION_USES, AnalyzerRef

ANALYZER_LAYOUT = (
    "a SpikeInterface SortingAnalyzer: <rec>.zarr (zarr, with .zattrs) or <rec>/ (binary_folder, "
    "with spikeinterface_info.json)"
)


@dataclass(frozen=True)
class AnalyzerMeta:
    """What the checks and the normalisation need from an analyzer, read without extensions."""

    unit_ids: tuple[str, ...]
    channel_xy_um: np.ndarray  # (n_ch, 2), analyzer channel order
    contact_ids: tuple[str, ...] | None
    n_segments: int
    duration_s: float
    sampling_frequency_hz: float
    return_in_uv: bool
    labels: dict[str, np.ndarray]  # curation label columns among the sorting's properties


@dataclass(frozen=True)
class AnalyzerSpikes:
    """One analyzer's spikes and units, in SpikeInterface's conventions."""

    ref: AnalyzerRef
    meta: AnalyzerMeta
    sample_index: np.ndarray  # per spike, spike-vector order, relative to its segment
    unit_index: np.ndarray  # per spike, index into meta.unit_ids
    amplitudes_uv: np.ndarray  # per spike, signed trace value at the unit's main channel
    depths_um: np.ndarray  # per spike, y in the channel-location frame
    templates_uv: np.ndarray  # (n_units, n_samples, n_channels) dense average templates, float32
    metrics: pd.DataFrame  # quality metrics, index = meta.unit_ids (no columns without them)
    notes: tuple[str, ...] = ()


@contextmanager
def trusted_pickles() -> Iterator[None]:
    """Let numcodecs decode Pickle-encoded analyzer attributes (our own pipeline's assets)."""
    import numcodecs.pickles

    previous = getattr(numcodecs.pickles, "ALLOW_UNSAFE_PICKLE_DECODE", False)
    numcodecs.pickles.ALLOW_UNSAFE_PICKLE_DECODE = True
    try:
        yield
    finally:
        numcodecs.pickles.ALLOW_UNSAFE_PICKLE_DECODE = previous


def open_analyzer(ref: AnalyzerRef) -> Any:
    """The SortingAnalyzer of ``ref`` with no extension loaded.

    Raises
    ------
    InputError
        When SpikeInterface cannot open it (the message names the expected layout).
    """
    import spikeinterface as si

    try:
        with trusted_pickles(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return si.load_sorting_analyzer(ref.path, load_extensions=False)
    except Exception as exc:  # SpikeInterface raises many types on unreadable folders
        raise InputError(
            f"{ref.where}: cannot open the analyzer ({type(exc).__name__}: {exc}); "
            f"expected {ANALYZER_LAYOUT}",
            file=ref.path,
        ) from None


def _meta(analyzer: Any, ref: AnalyzerRef) -> AnalyzerMeta:
    from .curation import sorting_labels

    xy = np.asarray(analyzer.get_channel_locations(), dtype=float)[:, :2]
    contact_ids = None
    try:
        ids = [str(c) for c in analyzer.get_probe().contact_ids]
        contact_ids = tuple(ids) if len(ids) == len(xy) and all(ids) else None
    except Exception:  # no probe, or a probe group: fall back to locations
        contact_ids = None
    return AnalyzerMeta(
        unit_ids=tuple(str(u) for u in analyzer.unit_ids),
        channel_xy_um=xy,
        contact_ids=contact_ids,
        n_segments=int(analyzer.get_num_segments()),
        duration_s=float(analyzer.get_total_duration()),
        sampling_frequency_hz=float(analyzer.sampling_frequency),
        return_in_uv=bool(analyzer.return_in_uV),
        labels=sorting_labels(analyzer.sorting, ref.path),
    )


def require_uv(meta: AnalyzerMeta, ref: AnalyzerRef) -> None:
    """Refuse an analyzer whose templates and amplitudes are not in uV.

    Raises
    ------
    InputError
        When it was built with ``return_in_uV=False`` (raw ADC units: no known scale).
    """
    if not meta.return_in_uv:
        raise InputError(
            f"{ref.where}: analyzer was built with return_in_uV=False (raw ADC units), so its "
            "templates and amplitudes have no known scale; expected return_in_uV=True "
            "(return_scaled=true in the AIND pipeline)",
            file=ref.path,
        )


def analyzer_meta(ref: AnalyzerRef) -> AnalyzerMeta:
    """Unit ids, channel locations, contact ids and timing of an analyzer (no extensions)."""
    return _meta(open_analyzer(ref), ref)


def _extension(analyzer: Any, ref: AnalyzerRef, name: str) -> Any | None:
    """The loaded extension, or None when its folder / zarr group is absent (as discovery
    decides: stale consolidated zarr metadata must not make a deleted extension look present)."""
    if not (ref.path / "extensions" / name).is_dir():
        return None
    try:
        with trusted_pickles(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return analyzer.get_extension(name)
    except Exception as exc:  # a damaged extension folder
        raise InputError(
            f"{ref.where}: cannot load extension {name!r} ({type(exc).__name__}: {exc}); it "
            f"is needed for {EXTENSION_USES.get(name, 'the ALF files')}",
            file=ref.path / "extensions" / name,
        ) from None


def _required(analyzer: Any, ref: AnalyzerRef, name: str) -> Any:
    ext = _extension(analyzer, ref, name)
    if ext is None:
        raise InputError(
            f"{ref.where}: analyzer lacks extension {name!r}, needed for {EXTENSION_USES[name]}",
            file=ref.path,
        )
    return ext


def peak_channels(templates_uv: np.ndarray) -> np.ndarray:
    """Channel of largest peak-to-peak swing per unit (the converter's and IBL's peak channel)."""
    if not len(templates_uv):
        return np.zeros(0, dtype=np.int64)
    return np.argmax(np.ptp(templates_uv, axis=1), axis=1)


def _depths(
    analyzer: Any, ref: AnalyzerRef, meta: AnalyzerMeta, unit_index: np.ndarray, templates_uv
) -> tuple[np.ndarray, list[str]]:
    """``spike_locations`` y, else each unit's location y, else its peak channel's y."""
    ext = _extension(analyzer, ref, "spike_locations")
    if ext is not None:
        return np.asarray(ext.get_data()["y"], dtype=np.float64), []
    units = _extension(analyzer, ref, "unit_locations")
    if units is not None:
        unit_y = np.asarray(units.get_data(), dtype=np.float64)[:, 1]
        how = "the y of its unit's location (extension 'unit_locations')"
    else:
        unit_y = meta.channel_xy_um[peak_channels(templates_uv), 1]
        how = "the y of its unit's peak channel (largest template swing)"
    note = (
        f"{ref.where}: analyzer lacks extension 'spike_locations' (needed for spikes.depths); "
        f"each spike's depth is {how}"
    )
    return unit_y[unit_index], [note]


def _metrics(analyzer: Any, ref: AnalyzerRef, meta: AnalyzerMeta) -> tuple[pd.DataFrame, list]:
    ext = _extension(analyzer, ref, "quality_metrics")
    if ext is None:
        note = (
            f"{ref.where}: analyzer lacks extension 'quality_metrics' (needed for "
            f"{EXTENSION_USES['quality_metrics']}); clusters.metrics.csv has ids, shank and "
            "curation labels only"
        )
        return pd.DataFrame(index=pd.Index(meta.unit_ids, name="unit_id")), [note]
    table = ext.get_data().copy()
    table.index = pd.Index([str(u) for u in table.index], name="unit_id")
    if sorted(table.index) != sorted(meta.unit_ids):
        raise InputError(
            f"{ref.where}: quality_metrics rows {list(table.index)[:8]} are not the analyzer's "
            f"units {list(meta.unit_ids)[:8]}",
            file=ref.path / "extensions" / "quality_metrics",
        )
    return table.loc[list(meta.unit_ids)], []


def read_analyzer(ref: AnalyzerRef) -> AnalyzerSpikes:
    """Spikes, templates and metrics of one analyzer (only the extensions needed are loaded).

    Raises
    ------
    InputError
        Unreadable analyzer, amplitudes not in uV, a missing ``templates`` or
        ``spike_amplitudes`` extension, or extension data that does not match the sorting.
    """
    analyzer = open_analyzer(ref)
    meta = _meta(analyzer, ref)
    require_uv(meta, ref)
    spikes = analyzer.sorting.to_spike_vector()
    template_ext = _required(analyzer, ref, "templates")
    amplitude_ext = _required(analyzer, ref, "spike_amplitudes")
    try:
        with trusted_pickles(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            templates = template_ext.get_templates(operator="average", save=False)
            amplitudes = amplitude_ext.get_data()
    except Exception as exc:  # e.g. templates without the "average" operator
        raise InputError(
            f"{ref.where}: cannot read the average templates or the spike amplitudes "
            f"({type(exc).__name__}: {exc}); expected extensions 'templates' (with the "
            "'average' operator) and 'spike_amplitudes'",
            file=ref.path / "extensions",
        ) from None
    templates_uv = np.asarray(templates, dtype=np.float32)  # as stored; float64 doubles memory
    amplitudes_uv = np.asarray(amplitudes, dtype=np.float64).reshape(-1)
    if len(amplitudes_uv) != len(spikes) or templates_uv.shape[0] != len(meta.unit_ids):
        raise InputError(
            f"{ref.where}: extension data do not match the sorting ({len(spikes)} spikes, "
            f"{len(meta.unit_ids)} units; spike_amplitudes has {len(amplitudes_uv)}, templates "
            f"{templates_uv.shape[0]})",
            file=ref.path,
        )
    unit_index = np.asarray(spikes["unit_index"], dtype=np.int64)
    depths, notes = _depths(analyzer, ref, meta, unit_index, templates_uv)
    metrics, more = _metrics(analyzer, ref, meta)
    return AnalyzerSpikes(
        ref=ref,
        meta=meta,
        sample_index=np.asarray(spikes["sample_index"], dtype=np.int64),
        unit_index=unit_index,
        amplitudes_uv=amplitudes_uv,
        depths_um=depths,
        templates_uv=templates_uv,
        metrics=metrics,
        notes=tuple(notes + more),
    )
