"""Region runs along a shank, unit regions and the ALF region datasets (pure functions)."""

from __future__ import annotations

import numpy as np
import one.alf.io as alfio
import pytest

from alignprep.space import atlas
from alignprep.stages import region_tables as rt
from alignprep.synthetic.volumes import allen_ids

CA1, DG, TH = allen_ids(["CA1", "DG-mo", "TH"])


def _shank(ids_by_depth: list[int], gui_shank: int = 0) -> rt.ShankChannels:
    """Two columns per depth (20 um pitch), rows shuffled; ``ids_by_depth`` from the tip up."""
    n_depth = len(ids_by_depth)
    axial = np.repeat(np.arange(n_depth) * 20.0, 2)
    lateral = np.tile([11.0, 43.0], n_depth) + 250.0 * gui_shank
    ids = np.repeat(ids_by_depth, 2).astype(np.int64)
    perm = np.random.default_rng(1).permutation(len(axial))
    bregma = np.column_stack([np.zeros(len(axial)), np.zeros(len(axial)), -3000.0 + axial])
    return rt.ShankChannels(
        gui_shank=gui_shank,
        rows=np.arange(len(axial))[perm] + 100 * gui_shank,
        axial_um=axial[perm],
        lateral_um=lateral[perm],
        bregma_um=bregma[perm],
        ccf_um=atlas.bregma_um_to_ccf_um(bregma[perm]),
        lateralized_id=ids[perm],
        beyond_track=(axial[perm] >= 80.0),
    )


def test_region_runs_split_where_the_region_changes_and_count_units():
    shank = _shank([TH, TH, -DG, -DG, -DG, TH, 0])  # TH, left DG, TH again, void at the top
    units = rt.Units(
        peak_row=np.array([shank.rows[shank.axial_um == a][0] for a in (0, 20, 40, 100, 100)]),
        good=np.array([True, False, True, True, True]),
    )
    table = rt.region_runs(shank, units)
    assert table["acronym"].tolist() == ["TH", "DG-mo", "TH", "void"]
    assert table["lateralized_id"].tolist() == [TH, -DG, TH, 0]
    assert table["allen_id"].tolist() == [TH, DG, TH, 0]
    assert table["axial_start_um"].tolist() == [0.0, 40.0, 100.0, 120.0]
    assert table["axial_end_um"].tolist() == [20.0, 80.0, 100.0, 120.0]
    assert table["n_channels"].tolist() == [4, 6, 2, 2]
    assert table["n_beyond_track"].tolist() == [0, 2, 2, 2]
    assert table["n_units"].tolist() == [2, 1, 2, 0]
    assert table["n_good_units"].tolist() == [1, 1, 2, 0]


def test_good_units_unknown_without_labels_and_zero_without_units():
    shank = _shank([CA1, CA1])
    units = rt.Units(peak_row=np.array([shank.rows[0]]), good=None)
    assert rt.region_runs(shank, units)["n_good_units"].isna().all()
    assert rt.region_runs(shank, None)[["n_units", "n_good_units"]].iloc[0].tolist() == [0, 0]


def test_alf_arrays_load_with_one_and_follow_the_peak_channel(tmp_path):
    shanks = [_shank([CA1, -DG], 0), _shank([TH, 0], 1)]
    n_ch = 104  # rows 0..3 and 100..103 used; the rest have no track
    with pytest.raises(ValueError, match="have no track"):
        rt.alf_arrays(n_ch, shanks, None)
    shanks[1] = rt.ShankChannels(**{**shanks[1].__dict__, "rows": shanks[1].rows - 96})
    peak = np.array([0, 5, 7, 2])
    arrays = rt.alf_arrays(8, shanks, rt.Units(peak, None))
    for name, value in arrays.items():
        np.save(tmp_path / name, value, allow_pickle=False)
    channels = alfio.load_object(tmp_path, "channels")
    clusters = alfio.load_object(tmp_path, "clusters")
    assert not alfio.check_dimensions(channels) and not alfio.check_dimensions(clusters)
    assert (
        channels["mlapdv"].dtype == np.int32
        and channels["brainLocationIds_ccf_2017"].dtype == np.int32
    )
    ids = np.empty(8, dtype=np.int64)
    for s in shanks:
        ids[s.rows] = np.abs(s.lateralized_id)
    assert np.array_equal(channels["brainLocationIds_ccf_2017"], ids)
    assert np.array_equal(clusters["brainLocationIds_ccf_2017"], ids[peak])
    assert clusters["brainLocationAcronyms_ccf_2017"].tolist() == atlas.region_acronyms(ids[peak])
    want = np.empty((8, 3))
    for s in shanks:
        want[s.rows] = s.bregma_um
    assert np.abs(channels["mlapdv"] - want).max() <= 0.5
    assert np.array_equal(clusters["mlapdv"], channels["mlapdv"][peak])
