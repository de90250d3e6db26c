"""The synthetic sorted asset in the AIND ephys pipeline's own layouts, with the labels as truth.

What the AIND pipeline's results collector leaves in ``<session>_sorted_<dt>/`` (read from
``aind-ephys-postprocessing``, ``aind-ephys-curation``, ``aind-ephys-unit-classifier`` and
``aind-ephys-results-collector``):

* ``postprocessed/<rec>.zarr`` (zarr SortingAnalyzer) or ``postprocessed/<rec>/``
  (``binary_folder``), ``<rec>`` = ``experiment<N>_<stream>_recording<M>[_group<K>]``;
* ``curated/<rec>/`` (no ``.zarr``): the analyzer's sorting with the curation labels as
  properties, saved by ``sorting.save(folder=...)`` (a SpikeInterface numpy folder);
* labels, by pipeline generation (``label_layout``):

  - ``"decoder"`` (unit-classifier era): ``default_qc``, ``decoder_label``,
    ``decoder_probability`` on the curated sorting only;
  - ``"unitrefine"`` (curation 2.x): ``default_qc``, ``unitrefine_label``,
    ``unitrefine_probability``, ``bombcell_label`` and the ``decoder_*`` aliases the collector
    adds, on the analyzer and on the curated sorting, plus ``curated/<rec>/curation.json``
    (format 2) that removes the UnitRefine noise units and proposes SLAy merges;

* a failed sort leaves ``postprocessed/<rec>.zarr/placeholder.npy`` (an empty bool array)
  instead of an analyzer (:func:`write_placeholder`).

Every random choice is seeded (noise-level chunks included) and extension run times are zeroed,
so the same seed writes the same bytes.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

QUALITY_METRICS = (
    "num_spikes",
    "firing_rate",
    "snr",
    "isi_violation",
    "amplitude_median",
    "sliding_rp_violation",
    "noise_cutoff",
)
UNITREFINE_LABELS = ("sua", "mua", "noise")
BOMBCELL_LABELS = ("good", "mua", "noise", "non_soma")
LABEL_LAYOUTS = ("decoder", "unitrefine")
ANALYZER_FORMATS = ("zarr", "binary_folder")
PLACEHOLDER = "placeholder.npy"


def analyzer_folder_name(rec_name: str, analyzer_format: str) -> str:
    """``<rec>.zarr`` for a zarr analyzer, ``<rec>`` for a binary folder."""
    if analyzer_format not in ANALYZER_FORMATS:
        raise ValueError(f"analyzer_format {analyzer_format!r} not in {ANALYZER_FORMATS}")
    return rec_name + (".zarr" if analyzer_format == "zarr" else "")


def write_placeholder(folder: Path) -> Path:
    """What the postprocessing capsule writes when sorting failed: a folder with an empty array."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / PLACEHOLDER
    np.save(path, np.array([], dtype=bool))
    return path


def unit_labels(unit_ids: list[str], layout: str, seed: int) -> dict[str, np.ndarray]:
    """Seeded curation labels of one analyzer, named as ``layout`` names them."""
    if layout not in LABEL_LAYOUTS:
        raise ValueError(f"label_layout {layout!r} not in {LABEL_LAYOUTS}")
    rng = np.random.default_rng(seed)
    n = len(unit_ids)
    default_qc = rng.random(n) < 0.6
    classifier = rng.choice(UNITREFINE_LABELS, size=n)
    probability = np.round(rng.uniform(0.5, 1.0, size=n), 4)
    if layout == "decoder":
        return {
            "default_qc": default_qc,
            "decoder_label": classifier,
            "decoder_probability": probability,
        }
    return {
        "default_qc": default_qc,
        "unitrefine_label": classifier,
        "unitrefine_probability": probability,
        "bombcell_label": rng.choice(BOMBCELL_LABELS, size=n),
        "decoder_label": classifier,
        "decoder_probability": probability,
    }


def curation_dict(unit_ids: list[str], labels: dict[str, np.ndarray]) -> dict[str, Any]:
    """``curation.json`` (format 2) as aind-ephys-curation writes it: UnitRefine noise removed."""
    noise = [
        u for u, lab in zip(unit_ids, labels["unitrefine_label"], strict=True) if lab == "noise"
    ]
    kept = [u for u in unit_ids if u not in noise]
    return {
        "format_version": "2",
        "unit_ids": list(unit_ids),
        "label_definitions": {
            "quality": {"label_options": ["good", "MUA", "noise"], "exclusive": True}
        },
        "manual_labels": [{"unit_id": u, "labels": {"quality": ["noise"]}} for u in noise],
        "removed": noise,
        "merges": [{"unit_ids": kept[:2]}] if len(kept) >= 2 else [],
        "splits": [],
    }


def _zero_runtimes(analyzer: Any) -> None:
    """Run times are wall-clock measurements: zero them so equal inputs give equal bytes."""
    for ext in analyzer.extensions.values():
        if ext.run_info is not None:
            ext.run_info["runtime_s"] = 0.0
        if isinstance(ext.data.get("runtime_s"), dict):
            ext.data["runtime_s"] = dict.fromkeys(ext.data["runtime_s"], 0.0)


def write_sorted_group(
    sorted_dir: Path,
    rec_name: str,
    sorting: Any,
    recording: Any,
    *,
    analyzer_format: str,
    label_layout: str,
    seed: int,
    n_jobs: int = 1,
) -> dict[str, Any]:
    """One analyzer and its curated sorting in the AIND layout; return their truth.

    The truth holds the analyzer folder name, the curated folder name, every label column
    (unit id -> value) and, for the ``unitrefine`` layout, the removed units and merge groups.
    """
    import spikeinterface as si

    from .volumes import _single_threaded_blosc

    name = analyzer_folder_name(rec_name, analyzer_format)
    job = {"n_jobs": n_jobs, "progress_bar": False}
    analyzer = si.create_sorting_analyzer(
        sorting, recording, format="memory", seed=seed, job_kwargs=job
    )
    analyzer.compute(
        ["random_spikes", "noise_levels", "templates", "spike_amplitudes", "spike_locations"],
        extension_params={
            "random_spikes": {"max_spikes_per_unit": 200, "seed": seed},
            "noise_levels": {"random_slices_kwargs": {"seed": seed}},
        },
        **job,
    )
    analyzer.compute("quality_metrics", metric_names=list(QUALITY_METRICS))
    unit_ids = [str(u) for u in sorting.unit_ids]
    labels = unit_labels(unit_ids, label_layout, seed)
    if label_layout == "unitrefine":  # the collector also sets them on the analyzer
        for key, values in labels.items():
            analyzer.set_sorting_property(key, values)
    _zero_runtimes(analyzer)
    curated_dir = sorted_dir / "curated" / rec_name
    with _single_threaded_blosc():
        analyzer.save_as(format=analyzer_format, folder=sorted_dir / "postprocessed" / name)
        curated = sorting.clone()
        for key, values in labels.items():
            curated.set_property(key, values)
        curated.save(folder=curated_dir)
    truth: dict[str, Any] = {
        "analyzer": name,
        "curated": rec_name,
        "labels": {
            key: dict(zip(unit_ids, np.asarray(values).tolist(), strict=True))
            for key, values in labels.items()
        },
        "removed": [],
        "merges": [],
    }
    if label_layout == "unitrefine":
        curation = curation_dict(unit_ids, labels)
        (curated_dir / "curation.json").write_text(json.dumps(curation, indent=4) + "\n")
        truth["removed"] = curation["removed"]
        truth["merges"] = [m["unit_ids"] for m in curation["merges"]]
    return truth


# --- damaged variants of a built asset (for the checks that must catch them) ----------------


def empty_the_analyzer(folder: Path) -> None:
    """Replace the analyzer at ``folder`` by the same analyzer with zero units (an empty sort)."""
    import shutil

    import spikeinterface as si

    from .volumes import _single_threaded_blosc

    fmt = "zarr" if folder.suffix == ".zarr" else "binary_folder"
    tmp = folder.with_name(f"{folder.stem}-empty" + (".zarr" if fmt == "zarr" else ""))
    with warnings.catch_warnings(), _single_threaded_blosc():
        warnings.simplefilter("ignore")  # a recordingless analyzer
        analyzer = si.load_sorting_analyzer(folder)
        analyzer.select_units([], format=fmt, folder=tmp)
    shutil.rmtree(folder)
    tmp.rename(folder)


def corrupt_the_analyzer(folder: Path) -> None:
    """Truncate the analyzer's top-level metadata, as an interrupted copy leaves it."""
    names = (".zattrs", ".zmetadata") if folder.suffix == ".zarr" else ("settings.json",)
    for name in names:
        (folder / name).write_text("{")


def rename_a_curated_unit(curated: Path, new_id: str = "9999") -> str:
    """Save the curated sorting again with its first unit renamed; return the old id."""
    import shutil

    import spikeinterface as si

    sorting = si.load(curated)
    ids = [str(u) for u in sorting.unit_ids]
    renamed = sorting.rename_units([new_id, *ids[1:]])
    tmp = curated.with_name(curated.name + ".renamed")
    renamed.save(folder=tmp)
    for extra in curated.glob("*.json"):  # curation.json and friends stay beside it
        if not (tmp / extra.name).exists():
            shutil.copy(extra, tmp / extra.name)
    shutil.rmtree(curated)
    tmp.rename(curated)
    return ids[0]
