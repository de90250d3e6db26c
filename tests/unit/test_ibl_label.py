"""IBL's unit label rule on SpikeInterface metrics: thresholds, NaN handling, slidingRP mapping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alignprep.stages import ibl_label as rule


def test_label_is_the_fraction_of_passed_criteria_at_ibl_thresholds():
    """Expected labels worked out by hand from ibllib's compute_labels:
    mean([max_confidence >= 90, noise_cutoff < 5, amp_median > 50 uV]), NaN failing."""
    metrics = pd.DataFrame(
        {
            # slidingRP min contamination at 90 % confidence: passes when <= 10 %
            "sliding_rp_violation": [0.05, 0.10, 0.20, np.nan, 0.0, 0.105],
            "noise_cutoff": [1.0, 4.99, 5.0, 2.0, np.nan, -3.0],
            # signed SpikeInterface medians (uV): the magnitude is compared with 50 uV
            "amplitude_median": [-80.0, 50.0, 120.0, -51.0, 10.0, -49.9],
            "snr": [9.0, 9.0, 9.0, 9.0, 9.0, 9.0],  # not part of the rule
        },
        index=["a", "b", "c", "d", "e", "f"],
    )
    expected = {"a": 1.0, "b": 2 / 3, "c": 1 / 3, "d": 2 / 3, "e": 1 / 3, "f": 1 / 3}
    labels = rule.ibl_label(metrics)
    assert labels.to_dict() == pytest.approx(expected)
    assert rule.ibl_criteria(metrics).loc["b"].tolist() == [True, True, False]


def test_missing_metric_columns_are_named():
    table = pd.DataFrame({"snr": [1.0], "amplitude_median": [-60.0]})
    assert rule.missing_metrics(table.columns) == ["sliding_rp_violation", "noise_cutoff"]
    with pytest.raises(KeyError, match="noise_cutoff"):
        rule.ibl_label(table)


def _train_s(rng: np.random.Generator, rate_hz: float, contamination: float, duration_s: float):
    """A unit with a 2 ms refractory period plus a fraction of refractory-free Poisson spikes."""
    n_clean = rng.poisson(rate_hz * (1 - contamination) * duration_s)
    isi = rng.exponential(1 / (rate_hz * (1 - contamination)), n_clean) + 0.002
    clean = np.cumsum(isi)
    extra = rng.uniform(0, duration_s, rng.poisson(rate_hz * contamination * duration_s))
    times = np.sort(np.concatenate([clean[clean < duration_s], extra]))
    return times


def test_sliding_rp_threshold_equals_ibl_max_confidence_rule():
    """IBL passes a unit when its confidence of <= 10 % contamination, maximised over refractory
    periods > 0.5 ms, is >= 90 % (slidingRP ``max_confidence``). The rule above uses
    SpikeInterface's ``sliding_rp_violation`` (smallest contamination reached with > 90 %
    confidence) <= 0.10 instead. Derive IBL's quantity from SpikeInterface's own confidence
    matrix and check both decisions agree on units across firing rates and contaminations."""
    from spikeinterface.core import NumpySorting
    from spikeinterface.metrics.quality.misc_metrics import slidingRP_violations

    fs_hz, duration_s, bin_ms = 30000.0, 300.0, 0.25
    rng = np.random.default_rng(7)
    decisions = []
    for rate_hz in (1.0, 4.0, 15.0):
        for contamination in (0.0, 0.05, 0.15, 0.4):
            times = _train_s(rng, rate_hz, contamination, duration_s)
            sorting = NumpySorting.from_samples_and_labels(
                [np.round(times * fs_hz).astype(np.int64)], [np.zeros(len(times), int)], fs_hz
            )
            min_cont, conf = slidingRP_violations(
                sorting, duration_s, bin_size_ms=bin_ms, return_conf_matrix=True
            )
            cont = np.arange(0.5, 35.5, 0.5) / 100  # SpikeInterface's (and slidingRP's) grid
            rp_centers_ms = (np.arange(conf.shape[1]) + 0.5) * bin_ms
            at_10 = conf[np.flatnonzero(cont >= 0.10 - 1e-12)[0], rp_centers_ms > 0.5]
            ibl_pass = bool(np.max(at_10) >= 0.9)
            ours = rule.ibl_criteria(
                pd.DataFrame(
                    {
                        "sliding_rp_violation": [min_cont],
                        "noise_cutoff": [0.0],
                        "amplitude_median": [100.0],
                    }
                )
            )["sliding_rp"].iloc[0]
            decisions.append((ibl_pass, bool(ours)))
    assert all(ibl == ours for ibl, ours in decisions), decisions
    assert {d[0] for d in decisions} == {True, False}  # both outcomes exercised
