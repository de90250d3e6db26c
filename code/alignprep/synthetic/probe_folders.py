"""Probe folders as the ephys stage leaves them, without sorting anything: fast test inputs.

:func:`write_channel_table` writes ``channels.*`` of a Neuropixels layout (probeinterface, the
same layouts as the synthetic ephys assets: NP1.0 staggered columns; NP2.0 4-shank with shank k
at x = 250 k um); :func:`write_units` writes ``clusters.channels`` and a ``clusters.metrics.csv``
with IBL's ``label`` (seeded). :func:`shell_ids_at` is the analytic truth of the synthetic CCF
labels (:func:`alignprep.synthetic.volumes.brain_volumes`) at any continuous point.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .ephys_signals import np1_probe, np2_probe, np2_shank_indices
from .volumes import SHELLS, allen_ids


def probe_layout(kind: str, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """``(xy_um (n, 2), shank_ind)`` of ``"np1"`` (one shank) or ``"np2"`` (4 shanks,
    ``n_channels`` split evenly, shank offsets included in x)."""
    if kind == "np1":
        probe = np1_probe(n_channels)
        return np.asarray(probe.contact_positions, dtype=float), np.zeros(n_channels, np.int64)
    if kind == "np2":
        if n_channels % 4:
            raise ValueError(f"np2: {n_channels} channels do not split over 4 shanks")
        per_shank = np2_shank_indices(n_channels // 4)
        probe = np2_probe(np.concatenate(per_shank))
        shank = np.repeat(np.arange(4), n_channels // 4)
        return np.asarray(probe.contact_positions, dtype=float), shank.astype(np.int64)
    raise ValueError(f"unknown probe kind {kind!r} (np1 or np2)")


def write_channel_table(probe_dir: Path, kind: str, n_channels: int) -> np.ndarray:
    """``channels.localCoordinates / rawInd / shankInd`` of a layout; returns the (n, 2) um."""
    xy, shank = probe_layout(kind, n_channels)
    probe_dir.mkdir(parents=True, exist_ok=True)
    np.save(probe_dir / "channels.localCoordinates.npy", xy)
    np.save(probe_dir / "channels.rawInd.npy", np.arange(len(xy), dtype=np.int64))
    np.save(probe_dir / "channels.shankInd.npy", shank)
    return xy


def write_units(
    probe_dir: Path, n_channels: int, n_units: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``clusters.channels`` (random peak rows) and metrics with ``label`` in {0, 1/3, 2/3, 1}.

    Returns ``(peak rows, good)`` where good = ``label == 1``.
    """
    rng = np.random.default_rng(seed)
    peak = rng.integers(0, n_channels, n_units).astype(np.int64)
    label = rng.integers(0, 4, n_units) / 3.0
    np.save(probe_dir / "clusters.channels.npy", peak)
    metrics = pd.DataFrame(
        {"cluster_id": np.arange(n_units), "unit_id": np.arange(n_units), "label": label}
    )
    metrics.to_csv(probe_dir / "clusters.metrics.csv", index=False)
    return peak, label == 1.0


def shell_ids_at(
    ccf_um: np.ndarray, center_um: np.ndarray, semi_axes_um: np.ndarray, midline_ml_um: float
) -> np.ndarray:
    """Signed Allen id of the synthetic brain at CCF um points (ML, AP, DV), analytically.

    The innermost shell whose normalised radius contains the point; left of the midline
    negative; 0 outside the brain (the rule of ``brain_volumes``, evaluated off the grid).
    """
    p = np.atleast_2d(np.asarray(ccf_um, dtype=float))
    r = np.sqrt(np.sum(((p - center_um) / semi_axes_um) ** 2, axis=1))
    ids = np.zeros(len(p), dtype=np.int64)
    for (outer, _, _), region in zip(SHELLS, allen_ids([s[1] for s in SHELLS]), strict=True):
        ids[r <= outer] = region
    ids[p[:, 0] < midline_ml_um] *= -1
    return ids
