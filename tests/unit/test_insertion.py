"""The insertion of a track: iblatlas ``Insertion.from_track`` on the run's own labels."""

from __future__ import annotations

import numpy as np
import pytest
from iblatlas.atlas import Insertion

from alignprep.space import atlas
from alignprep.space.insertion import insertion_from_track, labels_atlas
from alignprep.synthetic.volumes import brain_volumes

CENTER_UM = np.array([5739.0, 2000.0, 1500.0])  # ML, AP, DV
SEMI_UM = np.array([1900.0, 1700.0, 1250.0])
SHAPE = (160, 120, 320)  # AP, DV, ML


@pytest.fixture(scope="module")
def brain() -> tuple[np.ndarray, np.ndarray]:
    """(compact labels (AP, DV, ML), unique_labels) of the synthetic ellipsoid brain."""
    _, labels = brain_volumes(SHAPE, CENTER_UM, SEMI_UM, CENTER_UM[0], np.random.default_rng(0))
    unique, compact = np.unique(labels, return_inverse=True)
    return compact.reshape(labels.shape).astype(np.uint16), unique


def _track_ccf_um(entry_ml_ap, direction, rng, n=10, length_um=2000.0, jitter_um=8.0):
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    ml, ap = entry_ml_ap
    q = 1 - ((ml - CENTER_UM[0]) / SEMI_UM[0]) ** 2 - ((ap - CENTER_UM[1]) / SEMI_UM[1]) ** 2
    top = np.array([ml, ap, CENTER_UM[2] - SEMI_UM[2] * np.sqrt(q) + 100.0])  # inside
    return top + np.linspace(0, length_um, n)[:, None] * d + rng.normal(0, jitter_um, (n, 3))


@pytest.mark.parametrize("seed", range(4))
def test_cropped_atlas_gives_iblatlas_full_volume_result(brain, seed):
    rng = np.random.default_rng(seed)
    direction = [rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5), 1.0]
    entry = CENTER_UM[:2] + rng.uniform(-900, 900, 2)
    picks = atlas.ccf_um_to_bregma_um(_track_ccf_um(entry, direction, rng))
    full = Insertion.from_track(
        picks * 1e-6, brain_atlas=labels_atlas(*brain, slice(None), slice(None))
    )
    mine = insertion_from_track(picks, *brain)
    assert mine is not None
    assert np.allclose(mine.entry_um, full.entry * 1e6, rtol=0, atol=1e-6)
    assert np.allclose(mine.tip_um, full.tip * 1e6, rtol=0, atol=1e-6)
    assert mine.depth_um == pytest.approx(full.depth * 1e6, abs=1e-6)
    assert (mine.theta_deg, mine.phi_deg) == pytest.approx((full.theta, full.phi), abs=1e-9)


def test_vertical_track_enters_at_the_ellipsoid_surface(brain):
    ml, ap = 6000.0, 2300.0
    dv = np.linspace(900.0, 2400.0, 8)  # CCF um, straight down, no jitter
    picks = atlas.ccf_um_to_bregma_um(np.column_stack([np.full(8, ml), np.full(8, ap), dv]))
    ins = insertion_from_track(picks, *brain)
    assert ins is not None
    q = 1 - ((ml - CENTER_UM[0]) / SEMI_UM[0]) ** 2 - ((ap - CENTER_UM[1]) / SEMI_UM[1]) ** 2
    surface_dv = CENTER_UM[2] - SEMI_UM[2] * np.sqrt(q)
    entry_ccf = atlas.bregma_um_to_ccf_um(ins.entry_um)[0]
    assert abs(entry_ccf[2] - surface_dv) <= 25.0  # the first brain voxel below the surface
    assert np.allclose(entry_ccf[:2], [ml, ap], atol=12.5)  # the voxel column of the line
    assert np.allclose(ins.tip_um, picks[-1], atol=1e-6)  # deepest pick, on the line
    assert ins.theta_deg == pytest.approx(0.0, abs=1e-6)
    assert ins.depth_um == pytest.approx(ins.entry_um[2] - picks[-1, 2], abs=1e-6)


def test_oblique_track_enters_where_the_line_meets_the_ellipsoid(brain):
    rng = np.random.default_rng(3)
    direction_ccf = np.array([300.0, -400.0, 2000.0])  # CCF ML right, AP (down = anterior), DV
    ccf = _track_ccf_um((5600.0, 2100.0), direction_ccf, rng, jitter_um=0.0)
    ins = insertion_from_track(atlas.ccf_um_to_bregma_um(ccf), *brain)
    assert ins is not None
    # analytic entry: the line through the picks meets the ellipsoid surface (upper root)
    d = direction_ccf / np.linalg.norm(direction_ccf)
    p0 = (ccf[0] - CENTER_UM) / SEMI_UM
    v = d / SEMI_UM
    a, b, c = v @ v, 2 * p0 @ v, p0 @ p0 - 1
    t_entry = (-b - np.sqrt(b * b - 4 * a * c)) / (2 * a)
    entry_bregma = atlas.ccf_um_to_bregma_um(ccf[0] + t_entry * d)[0]
    voxel_diagonal_um = 25.0 * np.sqrt(3)
    assert np.linalg.norm(ins.entry_um - entry_bregma) <= voxel_diagonal_um
    assert np.allclose(ins.tip_um, atlas.ccf_um_to_bregma_um(ccf[-1])[0], atol=1e-6)
    up = -direction_ccf * np.array([1.0, -1.0, -1.0])  # tip -> entry, in bregma axes
    theta = np.degrees(np.arccos(up[2] / np.linalg.norm(up)))
    phi = np.degrees(np.arctan2(up[1], up[0]))
    tolerance_deg = np.degrees(np.arctan(voxel_diagonal_um / ins.depth_um))  # entry on a voxel
    assert abs(ins.theta_deg - theta) <= tolerance_deg
    assert abs(ins.phi_deg - phi) <= tolerance_deg / np.sin(np.radians(theta))
    assert ins.depth_um == pytest.approx(np.linalg.norm(ins.entry_um - ins.tip_um), abs=1e-6)


def test_track_missing_the_volume_has_no_insertion(brain):
    far = np.array([[20000.0, 0.0, -1000.0], [20000.0, 0.0, -2000.0]])  # 20 mm lateral
    assert insertion_from_track(far, *brain) is None
