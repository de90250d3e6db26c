"""The compact-label lookup: every entry an Allen id, every compact index the volume uses covered.

Truth: the synthetic CCF labels (real Allen ids from iblatlas BrainRegions) and the defects put in.
"""

from __future__ import annotations

import numpy as np
import pytest

from alignprep.config import ParamLayer, build_config
from alignprep.errors import InputError
from alignprep.inputs.references import CcfLabels, unique_labels
from alignprep.space import atlas
from alignprep.synthetic import faults
from alignprep.synthetic.volumes import brain_volumes, write_ccf_volumes


@pytest.fixture
def config(tmp_path):
    rng = np.random.default_rng(0)
    shape = (40, 30, 60)
    center, semi = np.array([750.0, 500.0, 375.0]), np.array([500.0, 400.0, 300.0])
    template, labels = brain_volumes(shape, center, semi, 750.0, rng)
    cfg = build_config([ParamLayer("test", {"data_root": str(tmp_path)})], environ={})
    refs = cfg.references
    truth = write_ccf_volumes(
        template,
        labels,
        atlas.ccf_header(shape),
        refs.ccf_template,
        refs.ccf_labels_compact,
        refs.ccf_labels_unique_values,
    )
    return cfg, truth


def test_good_lookup_loads(config):
    cfg, truth = config
    np.testing.assert_array_equal(unique_labels(cfg), truth)
    labels = CcfLabels.load(cfg)
    assert set(np.unique(labels.unique_labels[labels.compact])) <= set(atlas.brain_regions().id)


def test_non_allen_ids_are_named(config):
    cfg, _ = config
    path = cfg.references.ccf_labels_unique_values
    faults.lookup_with(path, {2: 999999999, 5: -999999998})
    with pytest.raises(InputError) as err:
        unique_labels(cfg)
    assert err.value.file == str(path)
    assert "[2] = 999999999" in str(err.value) and "[5] = -999999998" in str(err.value)
    assert "2 entries" in str(err.value)


def test_non_integer_and_misshapen_lookups(config):
    cfg, truth = config
    path = cfg.references.ccf_labels_unique_values
    np.savez(path, unique_labels=truth.astype(float) + 0.5)
    with pytest.raises(InputError, match="non-integer"):
        unique_labels(cfg)
    np.savez(path, unique_labels=np.stack([truth, truth]))
    with pytest.raises(InputError, match="1-D"):
        unique_labels(cfg)
    np.savez(path, other=truth)
    with pytest.raises(InputError, match="unique_labels") as err:
        unique_labels(cfg)
    assert err.value.file == str(path)


def test_lookup_too_short_for_the_volume(config):
    cfg, truth = config
    faults.shorten_lookup(cfg.references.ccf_labels_unique_values, 3)
    with pytest.raises(InputError) as err:
        CcfLabels.load(cfg)
    n = len(truth)
    assert err.value.file == str(cfg.references.ccf_labels_compact)
    assert f"compact labels {n - 3}, {n - 2}, {n - 1}" in str(err.value)
    assert str(cfg.references.ccf_labels_unique_values) in str(err.value)
