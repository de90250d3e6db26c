"""The schedule: each item starts once the items whose outputs it reads have finished, and
fails without running when one of them failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alignprep.config import ParamLayer, build_config
from alignprep.inputs.manifest import Manifest, ManifestRow
from alignprep.orchestration.plan import MousePlan, Plan
from alignprep.orchestration.schedule import Schedule
from alignprep.orchestration.tasks import Envelope
from alignprep.stages.validate import MouseReport
from alignprep.work import (
    ChannelRegionsWork,
    EphysWork,
    HistologyCcfWork,
    HistologyWork,
    StageResult,
    Status,
    TrackWork,
)

ROW = ManifestRow(
    line=2,
    mouseid="m",
    sorted_recording="rec_sorted",
    recording_id="rec",
    probe_file="ProbeA.json",
    histology_track_id="ProbeA_track",
    ephys_collection="ProbeA",
    annotation_format="json",
    logical_probe="ProbeA",
    histology_shank=None,
    ephys_shank=None,
    surface_finding=None,
    registration_asset=None,
    template_to_ccf_asset=None,
)


class ScriptedExecutor:
    """Runs nothing: each item finishes with the status the test gives its name, in
    submission order; records what was submitted when, with its priority."""

    mode = "serial"

    def __init__(self, statuses: dict[str, Status], slots: int | None = None) -> None:
        self.statuses = statuses
        self.slots = slots
        self.queue: list[Envelope] = []
        self.order: list[tuple[str, str]] = []  # (name, validation error it carried)
        self.submitted: list[tuple[str, float]] = []  # (name, priority), as submitted

    def submit(self, fn: Any, env: Envelope, priority: float = 0.0) -> None:
        self.queue.append(env)
        self.submitted.append((env.work.name, priority))

    def completed(self) -> Iterator[tuple[Envelope, StageResult]]:
        while self.queue:
            env = self.queue.pop(0)
            self.order.append((env.work.name, env.error))
            status = Status.FAILED if env.error else self.statuses.get(env.work.name, Status.OK)
            yield env, StageResult(env.work.name, status, env.error or "scripted")


def _plan(tmp_path: Path) -> tuple[Plan, object]:
    config = build_config(
        [ParamLayer("t", {"data_root": str(tmp_path), "results_root": str(tmp_path / "out")})],
        environ={},
    )
    manifest = Manifest(tmp_path / "manifest.csv", "m", (ROW,), (), (), None, None)
    mouse = MousePlan(MouseReport(manifest.path, manifest))
    mouse.items = [  # dependents listed before their inputs: only the schedule orders them
        ChannelRegionsWork(
            "m", "channel regions rec/ProbeA", recording_id="rec", collection="ProbeA", rows=(ROW,)
        ),
        HistologyCcfWork("m", "histology ccf Ex_639", "Ex_639", True),
        TrackWork("m", "track rec/ProbeA/ProbeA_track", row=ROW),
        EphysWork("m", "ephys rec/ProbeA", recording_id="rec", collection="ProbeA"),
        HistologyWork("m", "histology atlas", part="atlas"),
        HistologyWork("m", "histology", part="channels"),
    ]
    return Plan(mice=[mouse]), config


def _run(
    tmp_path: Path, statuses: dict[str, Status], slots: int | None = None, seconds=None
) -> ScriptedExecutor:
    plan, config = _plan(tmp_path)
    executor = ScriptedExecutor(statuses, slots)
    Schedule(config, plan, executor, seconds).run(lambda env, outcome: outcome)
    return executor


def test_each_item_starts_after_what_it_reads(tmp_path):
    order = [name for name, _ in _run(tmp_path, {}).order]
    assert sorted(order) == sorted(
        [
            "histology",
            "histology atlas",
            "ephys rec/ProbeA",
            "histology ccf Ex_639",
            "track rec/ProbeA/ProbeA_track",
            "channel regions rec/ProbeA",
        ]
    )  # each once
    at = {name: i for i, name in enumerate(order)}
    assert at["histology ccf Ex_639"] > at["histology"]  # reads the image-space channel
    assert at["track rec/ProbeA/ProbeA_track"] > at["ephys rec/ProbeA"]  # its shank suffix
    regions = at["channel regions rec/ProbeA"]
    assert regions > at["ephys rec/ProbeA"] and regions > at["track rec/ProbeA/ProbeA_track"]


def test_an_item_whose_input_failed_fails_without_running_and_says_which(tmp_path):
    order = dict(
        _run(tmp_path, {"histology": Status.FAILED, "ephys rec/ProbeA": Status.FAILED}).order
    )
    assert order["histology ccf Ex_639"] == "histology failed in this run (scripted)"
    assert order["channel regions rec/ProbeA"] == "ephys rec/ProbeA failed in this run (scripted)"
    assert order["histology atlas"] == ""  # a sibling's failure is not an input


def test_nothing_fails_when_the_inputs_were_skipped_as_unchanged(tmp_path):
    order = dict(
        _run(tmp_path, {"histology": Status.SKIPPED, "ephys rec/ProbeA": Status.SKIPPED}).order
    )
    assert all(error == "" for error in order.values())


#: Seconds chosen so that the longest-chain order differs from the plan's and from the phases':
#: the channels head 1 + 10 (their CCF QC), the ephys 4 + 1 + 1 (a track, then the regions),
#: the atlas 5 alone.
SECONDS = {
    "histology": 1.0,
    "histology ccf Ex_639": 10.0,
    "ephys rec/ProbeA": 4.0,
    "histology atlas": 5.0,
    "track rec/ProbeA/ProbeA_track": 1.0,
    "channel regions rec/ProbeA": 1.0,
}


def _seconds(mouse: MousePlan, work: Any) -> float:
    return SECONDS[work.name]


def test_a_free_worker_takes_the_ready_item_with_the_longest_chain_behind_it(tmp_path):
    executor = _run(tmp_path, {}, slots=1, seconds=_seconds)
    assert [name for name, _ in executor.order] == [
        "histology",  # 1 + 10 ahead of the ephys' 6 and the atlas' 5
        "histology ccf Ex_639",  # ready now, and 10 > 6
        "ephys rec/ProbeA",
        "histology atlas",  # 5 > the track's 1 + 1, ready after the ephys
        "track rec/ProbeA/ProbeA_track",
        "channel regions rec/ProbeA",
    ]


def test_an_executor_without_slots_gets_every_ready_item_with_its_chain_as_priority(tmp_path):
    executor = _run(tmp_path, {}, slots=None, seconds=_seconds)
    first = executor.submitted[:3]  # what was ready at the start, submitted at once
    assert first == [("histology", 11.0), ("ephys rec/ProbeA", 6.0), ("histology atlas", 5.0)]
