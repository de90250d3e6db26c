"""Reading one SortingAnalyzer: only the extensions needed, fallbacks said, unscaled refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import spikeinterface as si
from spikeinterface.generation import generate_ground_truth_recording

from alignprep.errors import InputError
from alignprep.inputs.analyzers import analyzer_meta, read_analyzer
from alignprep.inputs.sorted import AnalyzerRef

EXTENSIONS = ["random_spikes", "templates", "spike_amplitudes", "unit_locations"]


def small_analyzer(folder: Path, extensions: list[str], return_in_uv: bool = True) -> AnalyzerRef:
    """A 3-unit, 8-channel zarr analyzer (2 s) with ``extensions`` computed."""
    rec, sorting = generate_ground_truth_recording(
        durations=[2.0], sampling_frequency=30000.0, num_channels=8, num_units=3, seed=5
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        an = si.create_sorting_analyzer(
            sorting, rec, format="zarr", folder=folder, return_in_uV=return_in_uv, seed=5
        )
        an.compute(extensions, extension_params={"random_spikes": {"seed": 5}})
    return AnalyzerRef(folder, 1, 1, 0, None, probe="rec/ProbeB")


def test_without_spike_locations_each_spike_takes_its_unit_location(tmp_path):
    ref = small_analyzer(tmp_path / "a.zarr", EXTENSIONS)
    spikes = read_analyzer(ref)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        an = si.load_sorting_analyzer(ref.path)
        unit_y = an.get_extension("unit_locations").get_data()[:, 1]
        vector = an.sorting.to_spike_vector()
    assert np.array_equal(spikes.depths_um, unit_y[vector["unit_index"]])
    assert np.array_equal(spikes.sample_index, vector["sample_index"])
    assert np.allclose(spikes.amplitudes_uv, an.get_extension("spike_amplitudes").get_data())
    assert spikes.templates_uv.shape[0] == 3 and spikes.metrics.shape == (3, 0)
    (depth_note, metrics_note) = spikes.notes
    assert "rec/ProbeB, shank group 0" in depth_note and "'unit_locations'" in depth_note
    assert "'quality_metrics'" in metrics_note and "ids, shank and curation labels" in metrics_note


def test_missing_required_extension_names_what_needs_it(tmp_path):
    ref = small_analyzer(tmp_path / "a.zarr", ["random_spikes", "templates"])
    with pytest.raises(
        InputError, match=r"lacks extension 'spike_amplitudes', needed for spikes"
    ) as err:
        read_analyzer(ref)
    assert err.value.file == str(ref.path)


def test_analyzer_in_raw_units_is_refused(tmp_path):
    """return_in_uV=False: templates and amplitudes in ADC counts, no scale to volts."""
    ref = small_analyzer(tmp_path / "a.zarr", EXTENSIONS, return_in_uv=False)
    assert analyzer_meta(ref).return_in_uv is False
    with pytest.raises(InputError, match="return_in_uV=False") as err:
        read_analyzer(ref)
    assert err.value.file == str(ref.path) and "expected return_in_uV=True" in str(err.value)
