"""Probe summary figure: depth axis, shanks, regions, RMS and LFP against synthetic truth."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from iblatlas.regions import BrainRegions
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from alignprep.qc import probe_summary as ps
from alignprep.qc.render import data_to_pixel, png_bytes

REGIONS = BrainRegions()
LOW_REGION, HIGH_REGION = "MOp5", "CA1"  # distinct Allen colours
RMS_BASE_UV = 10.0
N_WINDOWS = 3


def _allen(acronym: str) -> tuple[int, np.ndarray]:
    k = int(np.flatnonzero((REGIONS.acronym == acronym) & (REGIONS.id > 0))[0])
    return int(REGIONS.id[k]), REGIONS.rgb[k].astype(float) / 255.0


@dataclass
class Probe:
    """A synthetic probe folder and the truth it was built from."""

    path: Path
    xy_um: np.ndarray
    shank_of_channel: np.ndarray  # GUI shank (0-based) of each channel row
    pitch_um: float
    rms_uv: np.ndarray  # per channel row: the median over windows
    peak_depth_um: dict[int, float]  # per GUI shank: depth of the largest RMS
    lfp_db: np.ndarray  # per channel row
    boundary_um: dict[int, float]  # regions: LOW below, HIGH at and above
    spike_amps_v: np.ndarray
    spike_depths_um: np.ndarray
    spike_clusters: np.ndarray
    spike_times_s: np.ndarray
    cluster_channels: np.ndarray


def _layout(kind: str) -> tuple[np.ndarray, float]:
    if kind == "np1":  # 384 channels, 20 um rows, checkerboard columns
        i = np.arange(384)
        x = np.array([43.0, 11.0, 59.0, 27.0])[i % 4]
        return np.column_stack([x, 20.0 * (i // 2)]), 20.0
    # NP2.0 4-shank: 4 x 48 channels, two columns 32 um apart, 15 um rows, shanks 250 um apart
    rows = []
    for shank in range(4):
        for k in range(48):
            rows.append((250.0 * shank + 32.0 * (k % 2), 15.0 * (k // 2)))
    return np.array(rows), 15.0


def _make_probe(
    root: Path,
    kind: str,
    *,
    n_spikes_per_unit: int = 300,
    rms: bool = True,
    lfp: bool = True,
    regions: bool = True,
    spikes: bool = True,
) -> Probe:
    rng = np.random.default_rng(7)
    path = root / kind
    path.mkdir(parents=True)
    xy, pitch = _layout(kind)
    n_ch = len(xy)
    shank_of = np.round(xy[:, 0] // 250).astype(int) if kind == "np2" else np.zeros(n_ch, int)
    # the _iblqc_ columns are raw channels: a permutation, so a reader ignoring rawInd fails
    raw_ind = rng.permutation(n_ch)
    np.save(path / "channels.localCoordinates.npy", xy)
    np.save(path / "channels.rawInd.npy", raw_ind)
    np.save(path / "channels.shankInd.npy", shank_of)

    # RMS: 10 uV + 5 uV per shank, with a 30 uV bump at one depth per shank (both columns)
    y = xy[:, 1]
    peak_depth = {s: float(np.unique(y[shank_of == s])[7 + 3 * s]) for s in np.unique(shank_of)}
    rms_uv = RMS_BASE_UV + 5.0 * shank_of + 0.01 * y
    for s, d in peak_depth.items():
        rms_uv[(shank_of == s) & (y == d)] += 30.0
    windows = rms_uv[None, :] * np.array([0.5, 1.0, 3.0])[:, None]  # median = rms_uv
    rms_raw = np.zeros((N_WINDOWS, n_ch), np.float32)
    rms_raw[:, raw_ind] = windows * 1e-6  # volts
    if rms:
        np.save(path / "_iblqc_ephysTimeRmsAP.rms.npy", rms_raw)
        np.save(path / "_iblqc_ephysTimeRmsAP.timestamps.npy", np.arange(N_WINDOWS) * 30.0)

    # LFP PSD: in 4-10 Hz a channel's power is P = 1e-12 * (1 + channel depth / 100) V^2/Hz
    # (half at 4-7 Hz, 1.5x at 7-10 Hz: mean P); 1000x elsewhere, so other bands show
    freqs = np.arange(0.0, 300.0, 0.5)
    band_p = 1e-12 * (1.0 + y / 100.0)
    power = np.full((len(freqs), n_ch), 1e-9)
    in_band = (freqs >= 4) & (freqs < 10)
    shape = np.where(freqs[in_band] < 7, 0.5, 1.5)
    power_rows = np.zeros((in_band.sum(), n_ch))
    power_rows[:] = shape[:, None] * band_p[None, :]
    power[in_band] = power_rows
    power_raw = np.zeros_like(power)
    power_raw[:, raw_ind] = power
    if lfp:
        np.save(path / "_iblqc_ephysSpectralDensityLF.power.npy", power_raw.astype(np.float32))
        np.save(path / "_iblqc_ephysSpectralDensityLF.freqs.npy", freqs.astype(np.float32))

    # regions: LOW below the boundary, HIGH (stored as a negative, left-hemisphere id) above
    low_id, _ = _allen(LOW_REGION)
    high_id, _ = _allen(HIGH_REGION)
    boundary = {s: float(np.unique(y[shank_of == s])[10 + s]) for s in np.unique(shank_of)}
    ids = np.where(y >= np.array([boundary[s] for s in shank_of]), -high_id, low_id)
    if regions:
        (path / "regions_from_histology_track").mkdir()
        np.save(path / "regions_from_histology_track/channels.brainLocationIds_ccf_2017.npy", ids)

    # units: three per shank, peak channels at known rows, spikes near their peak's depth
    cluster_channels = np.concatenate(
        [np.flatnonzero(shank_of == s)[[4, 20, 33]] for s in np.unique(shank_of)]
    )
    n_units = len(cluster_channels)
    clusters = np.repeat(np.arange(n_units), n_spikes_per_unit)
    depths = y[cluster_channels][clusters] + rng.normal(0, 3.0, clusters.size)
    amps_v = (40.0 + 10.0 * clusters + rng.normal(0, 2.0, clusters.size)) * 1e-6
    times = np.sort(rng.uniform(0, 100.0, clusters.size))
    order = rng.permutation(clusters.size)
    clusters, depths, amps_v = clusters[order], depths[order], amps_v[order]
    if spikes:
        np.save(path / "spikes.times.npy", times)
        np.save(path / "spikes.clusters.npy", clusters.astype(np.uint32))
        np.save(path / "spikes.amps.npy", amps_v)
        np.save(path / "spikes.depths.npy", depths)
        np.save(path / "clusters.channels.npy", cluster_channels.astype(np.int64))
    return Probe(
        path=path,
        xy_um=xy,
        shank_of_channel=shank_of,
        pitch_um=pitch,
        rms_uv=rms_uv,
        peak_depth_um=peak_depth,
        lfp_db=10.0 * np.log10(band_p),
        boundary_um=boundary,
        spike_amps_v=amps_v,
        spike_depths_um=depths,
        spike_clusters=clusters,
        spike_times_s=times,
        cluster_channels=cluster_channels,
    )


@pytest.fixture(scope="module")
def np2(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    return _make_probe(tmp_path_factory.mktemp("ps"), "np2")


@pytest.fixture(scope="module")
def np1(tmp_path_factory: pytest.TempPathFactory) -> Probe:
    # 3 units x 20k spikes: more than the 50k the figure draws
    return _make_probe(tmp_path_factory.mktemp("ps"), "np1", n_spikes_per_unit=20_000)


_RENDERED: dict[tuple[str, str], tuple[Figure, bytes]] = {}


def _rendered(probe: Probe, suffix: str) -> tuple[Figure, bytes]:
    """The figure of one shank and its PNG bytes, drawn once per test module."""
    key = (str(probe.path), suffix)
    if key not in _RENDERED:
        data = ps.load_probe_summary(probe.path)
        fig = ps.draw_probe_summary(data, suffix, f"{probe.path.name}{suffix}")
        _RENDERED[key] = fig, png_bytes(fig)
    return _RENDERED[key]


def _axes(fig: Figure) -> dict[str, Axes]:
    return {ax.get_label(): ax for ax in fig.axes}


def _decode(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png), format="png")


def _profile(ax: Axes) -> tuple[np.ndarray, np.ndarray]:
    """The solid line of a channel panel: (values, depths)."""
    (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def _points(ax: Axes) -> tuple[np.ndarray, np.ndarray]:
    """The per-channel markers of a channel panel: (values, depths)."""
    (line,) = [ln for ln in ax.get_lines() if ln.get_linestyle() == "None"]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def test_shanks_in_gui_order(np1: Probe, np2: Probe) -> None:
    shanks = ps.summary_shanks(ps.load_probe_summary(np2.path))
    assert [s for s, _ in shanks] == ["_shank1", "_shank2", "_shank3", "_shank4"]
    for k, (_, rows) in enumerate(shanks):
        np.testing.assert_array_equal(rows, np.flatnonzero(np2.shank_of_channel == k))
    one = ps.summary_shanks(ps.load_probe_summary(np1.path))
    assert len(one) == 1 and one[0][0] == ""
    np.testing.assert_array_equal(one[0][1], np.arange(384))
    with pytest.raises(ValueError, match="_shank5"):
        ps.draw_probe_summary(ps.load_probe_summary(np2.path), "_shank5", "x")


def test_loaded_values_match_truth(np2: Probe) -> None:
    data = ps.load_probe_summary(np2.path)
    np.testing.assert_allclose(data.ap_rms_uv, np2.rms_uv, rtol=1e-5)  # rawInd mapping, uV
    np.testing.assert_allclose(data.lfp_power_db, np2.lfp_db, atol=1e-4)  # band 4-10 Hz, dB
    np.testing.assert_allclose(data.spike_amps_uv, np2.spike_amps_v * 1e6)
    assert ps.LFP_BAND_HZ == (4.0, 10.0)
    assert np.all(data.region_ids > 0)  # left-hemisphere ids read as their absolute value


@pytest.mark.parametrize("kind", ["np1", "np2"])
def test_depth_axis_is_the_shank_channel_range(kind: str, np1: Probe, np2: Probe) -> None:
    probe = {"np1": np1, "np2": np2}[kind]
    data = ps.load_probe_summary(probe.path)
    for k, (suffix, _) in enumerate(ps.summary_shanks(data)):
        y = probe.xy_um[probe.shank_of_channel == k, 1]
        axes = _axes(_rendered(probe, suffix)[0])
        lims = {name: axes[name].get_ylim() for name in ps.PANELS}
        assert len(set(lims.values())) == 1, lims  # one shared depth axis
        lo, hi = lims["spikes"]
        assert lo <= y.min() and y.min() - lo <= probe.pitch_um / 2 + 1e-9
        assert hi >= y.max() and hi - y.max() <= probe.pitch_um / 2 + 1e-9


def test_region_strip_colours_at_channel_depths(np2: Probe) -> None:
    data = ps.load_probe_summary(np2.path)
    _, low_rgb = _allen(LOW_REGION)
    _, high_rgb = _allen(HIGH_REGION)
    for k, (suffix, _) in enumerate(ps.summary_shanks(data)):
        fig, png = _rendered(np2, suffix)
        img = _decode(png)
        ax = _axes(fig)["regions"]
        depths = np.unique(np2.xy_um[np2.shank_of_channel == k, 1])
        for depth in depths:
            col, row = data_to_pixel(ax, (0.5, depth))
            want = high_rgb if depth >= np2.boundary_um[k] else low_rgb
            got = img[int(row), int(col), :3]
            np.testing.assert_allclose(got, want, atol=1.5 / 255, err_msg=f"{suffix} {depth}")
        labels = sorted(t.get_text() for t in ax.texts)
        assert labels == sorted([LOW_REGION, HIGH_REGION])


def test_rms_maximum_drawn_at_its_depth(np2: Probe) -> None:
    data = ps.load_probe_summary(np2.path)
    for k, (suffix, _) in enumerate(ps.summary_shanks(data)):
        fig, png = _rendered(np2, suffix)
        ax = _axes(fig)["ap_rms"]
        values, depths = _profile(ax)
        assert depths[np.argmax(values)] == np2.peak_depth_um[k]
        mine = np2.shank_of_channel == k
        np.testing.assert_allclose(values.max(), np2.rms_uv[mine].max(), rtol=1e-5)
        # in the picture: the rightmost opaque red pixel of the panel is on the peak's row
        img = _decode(png)
        x0, y1 = data_to_pixel(ax, (ax.get_xlim()[0], ax.get_ylim()[0]))
        x1, y0 = data_to_pixel(ax, (ax.get_xlim()[1], ax.get_ylim()[1]))
        panel = img[int(y0) + 2 : int(y1) - 2, int(x0) + 2 : int(x1) - 2, :3]
        red = (panel[..., 0] > 0.7) & (panel[..., 1] < 0.3) & (panel[..., 2] < 0.3)
        rows, cols = np.nonzero(red)
        top_row = rows[np.argmax(cols)] + int(y0) + 2
        _, want_row = data_to_pixel(ax, (values.max(), np2.peak_depth_um[k]))
        px_per_um = abs(y1 - y0) / np.ptp(ax.get_ylim())
        assert abs(top_row - want_row) <= 0.5 * np2.pitch_um * px_per_um


def test_each_shank_figure_has_only_its_channels_and_units(np2: Probe) -> None:
    data = ps.load_probe_summary(np2.path)
    unit_shank = np2.shank_of_channel[np2.cluster_channels]
    for k, (suffix, _) in enumerate(ps.summary_shanks(data)):
        axes = _axes(_rendered(np2, suffix)[0])
        mine = np2.shank_of_channel == k
        for name, truth in (("ap_rms", np2.rms_uv), ("lfp", np2.lfp_db)):
            values, depths = _points(axes[name])
            got = sorted(zip(depths, np.round(values, 3), strict=True))
            want = sorted(zip(np2.xy_um[mine, 1], np.round(truth[mine], 3), strict=True))
            assert got == want, name
        units = np.flatnonzero(unit_shank == k)
        spikes = np.isin(np2.spike_clusters, units)
        amps_uv = axes["spikes"].collections[0].get_offsets()[:, 0]
        np.testing.assert_allclose(np.sort(amps_uv), np.sort(np2.spike_amps_v[spikes] * 1e6))
        offsets = axes["unit_fr"].collections[0].get_offsets()
        want_depth = [np2.spike_depths_um[np2.spike_clusters == u].mean() for u in units]
        want_fr = [np.sum(np2.spike_clusters == u) / np2.spike_times_s.max() for u in units]
        np.testing.assert_allclose(offsets[:, 1], want_depth)
        np.testing.assert_allclose(offsets[:, 0], want_fr)


def test_many_spikes_are_subsampled_deterministically(np1: Probe) -> None:
    fig, png = _rendered(np1, "")
    drawn = _axes(fig)["spikes"].collections[0].get_offsets()
    assert len(drawn) == ps.MAX_SPIKES_DRAWN < len(np1.spike_clusters)
    assert np.isin(drawn[:, 0], np1.spike_amps_v * 1e6).all()
    again = ps.draw_probe_summary(ps.load_probe_summary(np1.path), "", f"{np1.path.name}")
    assert png_bytes(again) == png


def test_two_renders_give_identical_bytes(np2: Probe) -> None:
    _, first = _rendered(np2, "_shank3")
    again = ps.draw_probe_summary(ps.load_probe_summary(np2.path), "_shank3", "np2_shank3")
    assert png_bytes(again) == first
    assert _rendered(np2, "_shank2")[1] != first


@pytest.mark.parametrize("spikes", [True, False])
def test_folder_without_optional_files_still_draws(tmp_path: Path, spikes: bool) -> None:
    probe = _make_probe(tmp_path, "np2", rms=False, lfp=False, regions=False, spikes=spikes)
    data = ps.load_probe_summary(probe.path)
    assert data.ap_rms_uv is None and data.lfp_power_db is None and data.region_ids is None
    assert data.has_spikes == spikes
    fig = ps.draw_probe_summary(data, "_shank2", "t")
    axes = _axes(fig)
    texts = {name: " ".join(t.get_text() for t in axes[name].texts) for name in ps.PANELS}
    assert "not available" in texts["ap_rms"] and "not available" in texts["lfp"]
    assert "regions not computed" in texts["regions"]
    assert ("not available" in texts["spikes"]) != spikes
    assert not axes["ap_rms"].get_lines() and not axes["lfp"].get_lines()
    assert png_bytes(fig)[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_channel_table_is_an_input_error(tmp_path: Path) -> None:
    from alignprep.errors import InputError

    with pytest.raises(InputError, match=r"channels\.localCoordinates"):
        ps.load_probe_summary(tmp_path)
