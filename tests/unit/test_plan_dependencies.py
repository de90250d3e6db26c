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
    submission order; records what was submitted when."""

    mode = "serial"

    def __init__(self, statuses: dict[str, Status]) -> None:
        self.statuses = statuses
        self.queue: list[Envelope] = []
        self.order: list[tuple[str, str]] = []  # (name, validation error it carried)

    def submit(self, fn: Any, env: Envelope) -> None:
        self.queue.append(env)

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


def _run(tmp_path: Path, statuses: dict[str, Status]) -> list[tuple[str, str]]:
    plan, config = _plan(tmp_path)
    executor = ScriptedExecutor(statuses)
    Schedule(config, plan, executor).run(lambda env, outcome: outcome)
    return executor.order


def test_each_item_starts_after_what_it_reads(tmp_path):
    order = [name for name, _ in _run(tmp_path, {})]
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
    order = dict(_run(tmp_path, {"histology": Status.FAILED, "ephys rec/ProbeA": Status.FAILED}))
    assert order["histology ccf Ex_639"] == "histology failed in this run (scripted)"
    assert order["channel regions rec/ProbeA"] == "ephys rec/ProbeA failed in this run (scripted)"
    assert order["histology atlas"] == ""  # a sibling's failure is not an input


def test_nothing_fails_when_the_inputs_were_skipped_as_unchanged(tmp_path):
    order = dict(_run(tmp_path, {"histology": Status.SKIPPED, "ephys rec/ProbeA": Status.SKIPPED}))
    assert all(error == "" for error in order.values())
