"""IBL's single-unit ``label``: the fraction of three quality criteria a unit passes (1 = good).

ibllib ``brainbox.metrics.single_units.compute_labels`` (ibllib >= 2.36) scores each unit by::

    label = mean([max_confidence >= 90,       # sliding refractory period (slidingRP)
                  noise_cutoff < 5,           # amplitude distribution not cut off
                  amp_median > 50e-6])        # median amplitude above 50 uV (volts there)

A NaN metric fails its criterion. The AIND analyzers carry the SpikeInterface versions of these
metrics, which this module reads:

* ``sliding_rp_violation``: the smallest contamination (fraction) reached with > 90 %
  confidence at some refractory period (SpikeInterface's port of slidingRP). slidingRP's own
  pass rule (``pass_slidingRP_confmat``) is "minimum contamination at 90 % confidence <= 10 %";
  since confidence grows with the contamination tested, that is the same as "confidence at 10 %
  contamination >= 90 %", IBL's ``max_confidence >= 90``. Hence: ``sliding_rp_violation <= 0.10``.
* ``noise_cutoff``: SpikeInterface's version of IBL's metric (standard deviations between the low
  and the high amplitude bins); IBL's threshold 5 applies as is.
* ``amplitude_median``: median of the signed SpikeInterface amplitudes in uV; its magnitude is
  compared with 50 uV.

Without all three columns there is no ``label`` (the caller says so).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RP_MAX_CONTAMINATION = 0.10  # slidingRP cont_thresh 10 % at conf_thresh 90 %
NOISE_CUTOFF_MAX = 5.0  # ibllib METRICS_PARAMS["noise_cutoff"]["nc_threshold"]
AMP_MEDIAN_MIN_UV = 50.0  # ibllib METRICS_PARAMS["med_amp_thresh_uv"]
NEEDED_METRICS = ("sliding_rp_violation", "noise_cutoff", "amplitude_median")


def missing_metrics(columns: object) -> list[str]:
    """The metric columns the rule needs that ``columns`` lacks."""
    have = set(columns)  # type: ignore[call-overload]
    return [name for name in NEEDED_METRICS if name not in have]


def ibl_criteria(metrics: pd.DataFrame) -> pd.DataFrame:
    """The three pass/fail criteria per unit (NaN fails), in IBL's bit order."""
    rp = pd.to_numeric(metrics["sliding_rp_violation"], errors="coerce").to_numpy(float)
    nc = pd.to_numeric(metrics["noise_cutoff"], errors="coerce").to_numpy(float)
    amp = pd.to_numeric(metrics["amplitude_median"], errors="coerce").to_numpy(float)
    with np.errstate(invalid="ignore"):
        return pd.DataFrame(
            {
                "sliding_rp": rp <= RP_MAX_CONTAMINATION,
                "noise_cutoff": nc < NOISE_CUTOFF_MAX,
                "amp_median": np.abs(amp) > AMP_MEDIAN_MIN_UV,
            },
            index=metrics.index,
        )


def ibl_label(metrics: pd.DataFrame) -> pd.Series:
    """IBL ``label`` (0, 1/3, 2/3 or 1) of every row of ``metrics``.

    Raises
    ------
    KeyError
        When a needed metric column is missing (check with :func:`missing_metrics`).
    """
    missing = missing_metrics(metrics.columns)
    if missing:
        raise KeyError(f"IBL label needs metric columns {missing}")
    return ibl_criteria(metrics).mean(axis=1).rename("label")
