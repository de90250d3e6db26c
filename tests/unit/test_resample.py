"""Anti-aliased resampling, dtype narrowing and reorientation, against analytic truth."""

from __future__ import annotations

import numpy as np
import pytest

from alignprep.space.frames import ImageHeader, direction_from_code, reorient
from alignprep.space.resample import antialias_resample, output_size, reorient_array, to_dtype

S_IN = 0.0288  # mm, the usual registration level
S_OUT = 0.060  # mm, a 2.08x downsampling


def _wave(n: int, period_vox: float, amplitude: float) -> np.ndarray:
    i = np.arange(n)
    line = 1000.0 + amplitude * np.cos(2 * np.pi * i / period_vox)
    return np.broadcast_to(line[:, None, None], (n, 6, 6)).copy()


def test_nyquist_pattern_is_removed_not_aliased():
    """A +-A alternation at the input Nyquist frequency: gain exp(-2 pi^2 sigma^2 f^2) ~ 0.5%."""
    vol = _wave(200, 2.0, 100.0)
    out = antialias_resample(vol, np.full(3, S_IN), S_OUT, (96, 3, 3))
    sigma_vox = (S_OUT / 2) / S_IN
    gain = np.exp(-2 * np.pi**2 * sigma_vox**2 * 0.5**2)
    assert gain < 0.01
    core = out[5:-5, 1, 1]
    assert np.abs(core - 1000.0).max() < 100.0 * 2 * gain + 1e-3
    # without the Gaussian, plain linear resampling would alias the pattern into +-100 swings
    from scipy import ndimage

    naive = ndimage.affine_transform(
        vol.astype(np.float32), np.diag(np.full(3, S_OUT / S_IN)), output_shape=(96, 3, 3), order=1
    )
    assert np.abs(naive[5:-5, 1, 1] - 1000.0).max() > 50.0


def test_slow_signal_keeps_the_analytic_gain():
    """A 2 mm period passes with the Gaussian's gain exp(-2 pi^2 sigma^2 f^2), sigma = s_out/2."""
    period_vox = 2.0 / S_IN
    vol = _wave(400, period_vox, 100.0)
    out = antialias_resample(vol, np.full(3, S_IN), S_OUT, (192, 3, 3))[10:-10, 1, 1]
    sigma_vox = (S_OUT / 2) / S_IN
    gain = np.exp(-2 * np.pi**2 * sigma_vox**2 / period_vox**2)
    x_in_vox = np.arange(10, 182) * S_OUT / S_IN  # output index -> input index
    truth = 1000.0 + 100.0 * gain * np.cos(2 * np.pi * x_in_vox / period_vox)
    # what remains is linear interpolation error, ~ A (pi / period)^2 / 2 = 0.1
    assert np.abs(out - truth).max() < 0.15
    assert 0.99 < gain < 0.999  # the smoothing is real and small at this frequency


def test_index_zero_coincides_and_no_smoothing_when_not_coarsened():
    vol = np.random.default_rng(0).normal(size=(20, 21, 22)).astype(np.float32)
    out = antialias_resample(vol, np.array([0.03, 0.03, 0.03]), 0.03, (20, 21, 22))
    assert np.array_equal(out, vol)  # same grid: identity, no blur


@pytest.mark.parametrize("threads", [1, 3])
def test_linear_zoom_equals_scipy_affine_transform(threads):
    """The one-pass trilinear zoom against scipy's own (order 1, edge values past the end) on
    random data, coarsening on two axes and refining on one, to float32 rounding."""
    from scipy import ndimage

    from alignprep.space.resample import linear_zoom

    vol = np.random.default_rng(2).uniform(0, 1000, (37, 29, 23)).astype(np.float32)
    scale = np.array([1.37, 0.8, 1.9])
    size = (28, 37, 13)  # the last output index of axis 1 reads past the last voxel (edge)
    want = ndimage.affine_transform(
        vol, np.diag(scale), output_shape=size, order=1, mode="nearest", prefilter=False
    )
    got = linear_zoom(vol, scale, size, threads)
    assert got.shape == size and got.dtype == np.float32 and got.flags.f_contiguous
    np.testing.assert_allclose(got, want, rtol=0, atol=1000 * 2e-7)


def test_output_size_rule():
    assert output_size((640, 462, 247), np.array([0.0288, 0.0288, 0.032]), 0.03) == (614, 444, 263)
    assert output_size((10, 10, 10), np.array([0.01, 0.01, 0.01]), 0.03) == (3, 3, 3)


def test_to_dtype_clips_never_wraps():
    v = np.array([-5.0, 0.4, 0.6, 255.6, 70000.0])
    assert to_dtype(v, np.uint16).tolist() == [0, 0, 1, 256, 65535]
    assert to_dtype(np.array([1340.0]), np.uint8).tolist() == [255]  # not 1340 % 256 = 60
    assert to_dtype(np.array([484682470.0]), np.int32).tolist() == [484682470]
    work = v.copy()
    assert to_dtype(work, np.uint16, overwrite=True).tolist() == [0, 0, 1, 256, 65535]
    assert work.tolist() == [0.0, 0.0, 1.0, 256.0, 65535.0]  # rounded and clipped in place


@pytest.mark.parametrize("code", ["RPI", "LAS", "SAR", "PIR", "IRP", "ALI"])
def test_reorient_keeps_every_voxel_at_its_physical_point(code):
    rng = np.random.default_rng(1)
    header = ImageHeader(
        rng.normal(size=3), np.array([0.02, 0.03, 0.04]), direction_from_code(code), (5, 6, 7)
    )
    vol = np.arange(5 * 6 * 7).reshape(5, 6, 7)
    new, transform = reorient(header, "IRP")
    out = reorient_array(vol, transform)
    assert new.code == "IRP" and out.shape == new.size
    for ijk in rng.integers(0, (5, 6, 7), size=(20, 3)):
        (where,) = np.argwhere(out == vol[tuple(ijk)])
        assert np.allclose(header.index_to_physical(ijk), new.index_to_physical(where), atol=1e-12)
    back, t_back = reorient(new, code)
    assert np.array_equal(reorient_array(out, t_back), vol)
    assert np.allclose(back.origin, header.origin) and np.allclose(back.spacing, header.spacing)
