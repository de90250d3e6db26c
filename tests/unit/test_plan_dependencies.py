"""Items that read an earlier item's outputs fail without running when that item failed."""

from __future__ import annotations

from pathlib import Path

from alignprep.orchestration.plan import MousePlan
from alignprep.orchestration.run import upstream_failures
from alignprep.stages.validate import MouseReport
from alignprep.work import (
    ChannelRegionsWork,
    EphysWork,
    HistologyCcfWork,
    HistologyWork,
    StageResult,
    Status,
    channel_regions_work_name,
    histology_ccf_work_name,
    histology_work_name,
    probe_work_name,
)


def _plan() -> MousePlan:
    mp = MousePlan(MouseReport(Path("manifest.csv")))
    mp.items = [
        HistologyWork("m", histology_work_name("channels"), part="channels"),
        HistologyWork("m", histology_work_name("atlas"), part="atlas"),
        EphysWork("m", probe_work_name("rec", "ProbeA"), recording_id="rec", collection="ProbeA"),
        HistologyCcfWork("m", histology_ccf_work_name("Ex_639"), "Ex_639", True),
        HistologyCcfWork("m", histology_ccf_work_name("Ex_488"), "Ex_488", False),
        ChannelRegionsWork(
            "m", channel_regions_work_name("rec", "ProbeA"), recording_id="rec", collection="ProbeA"
        ),
    ]
    return mp


def test_each_channels_qc_needs_the_image_space_channels_and_regions_need_their_ephys():
    mp = _plan()
    done = [
        StageResult("histology", Status.FAILED, "zarr unreadable"),
        StageResult("histology atlas", Status.OK),
        StageResult("ephys rec/ProbeA", Status.FAILED, "no spikes"),
    ]
    upstream_failures(mp, 1, done)
    assert mp.errors == {
        "histology ccf Ex_639": "histology failed in this run (zarr unreadable)",
        "histology ccf Ex_488": "histology failed in this run (zarr unreadable)",
    }
    upstream_failures(mp, 2, done)
    assert (
        mp.errors["channel regions rec/ProbeA"] == "ephys rec/ProbeA failed in this run (no spikes)"
    )


def test_nothing_fails_when_what_an_item_needs_succeeded_or_a_sibling_failed():
    mp = _plan()
    done = [
        StageResult("histology", Status.OK),
        StageResult("histology atlas", Status.FAILED, "labels outside the lookup"),
        StageResult("ephys rec/ProbeA", Status.SKIPPED, "unchanged since the last run"),
    ]
    upstream_failures(mp, 1, done)
    upstream_failures(mp, 2, done)
    assert mp.errors == {}
