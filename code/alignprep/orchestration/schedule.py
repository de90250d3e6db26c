"""Each item starts as soon as what it reads exists, not when a whole phase has finished.

An item waits for the items whose outputs it reads: a channel's CCF-space QC for the
image-space channels (:attr:`~alignprep.work.Work.needs`); the tracks of a mouse for every
ephys item of that mouse (their ``_shank{N}`` suffixes come from the channel tables, so the
tracks are re-planned then, :func:`~alignprep.orchestration.plan.resolve_tracks`); a probe
folder's channel regions for its ephys and the mouse's tracks. When something it needs failed,
it fails without running, saying which; a QC item draws what exists instead (a failed item
leaves a gap, never a failed QC). The phases of the plan are the same order drawn as
levels; this runs it as the graph it is, so a worker never idles while a long item of an
earlier level runs on the other (on the demo: a channel's CCF QC starts while the atlas part
is still warping).
"""

from __future__ import annotations

from collections.abc import Callable

from ..config import PipelineConfig
from ..logs import get_logger
from ..work import ChannelRegionsWork, EphysWork, QcWork, StageResult, Status, TrackWork, Work
from .executors import Executor
from .plan import MousePlan, Plan, resolve_tracks
from .tasks import Envelope, run_envelope

log = get_logger("orchestration")


class Schedule:
    """The plan's items, submitted to ``executor`` as their inputs become available."""

    def __init__(self, config: PipelineConfig, plan: Plan, executor: Executor) -> None:
        self.config, self.plan, self.executor = config, plan, executor
        self.mice = {m.mouse_id: m for m in plan.mice}
        self.finished: dict[str, dict[str, StageResult]] = {m.mouse_id: {} for m in plan.mice}
        self.submitted: dict[str, set[str]] = {m.mouse_id: set() for m in plan.mice}
        self.resolved = {m.mouse_id: not self._ephys(m) for m in plan.mice}
        for mouse in plan.mice:
            if self.resolved[mouse.mouse_id]:
                resolve_tracks(config, mouse)  # no ephys in this run: the folders say today

    def run(self, done: Callable[[Envelope, object], StageResult]) -> None:
        """Submit what is ready, then after each finished item what became ready; ``done``
        turns an outcome into the recorded result."""
        self._submit_ready()
        for env, outcome in self.executor.completed():
            result = done(env, outcome)
            mouse = self.mice[env.work.mouse_id]
            self.finished[mouse.mouse_id][env.work.name] = result
            if not self.resolved[mouse.mouse_id] and self._all_finished(mouse, self._ephys(mouse)):
                resolve_tracks(self.config, mouse)
                self.resolved[mouse.mouse_id] = True
            self._submit_ready()

    def _submit_ready(self) -> None:
        for mouse in self.plan.mice:
            for work in mouse.items:
                if work.name in self.submitted[mouse.mouse_id] or not self._ready(mouse, work):
                    continue
                self.submitted[mouse.mouse_id].add(work.name)
                self._fail_if_upstream_failed(mouse, work)
                env = Envelope(
                    self.config,
                    None if work.kind == "ephys" else mouse.report.context,
                    work,
                    mouse.errors.get(work.name, ""),
                    n_threads=1,
                )
                self.executor.submit(run_envelope, env)

    def _ready(self, mouse: MousePlan, work: Work) -> bool:
        if isinstance(work, TrackWork):
            return self.resolved[mouse.mouse_id]
        if isinstance(work, QcWork):  # draws what they wrote, failed ones included
            after = [n for n in work.after if self._planned(mouse, n)]
            return self.resolved[mouse.mouse_id] and self._all_finished(mouse, after)
        waits = list(work.needs)
        if isinstance(work, ChannelRegionsWork):  # its picks: the mouse's tracks, once planned
            if not self.resolved[mouse.mouse_id]:
                return False
            waits += [t.name for t in mouse.tracks()]
        return self._all_finished(mouse, [n for n in waits if self._planned(mouse, n)])

    def _fail_if_upstream_failed(self, mouse: MousePlan, work: Work) -> None:
        finished = self.finished[mouse.mouse_id]
        failed = [n for n in work.needs if n in finished and finished[n].status == Status.FAILED]
        if failed and work.name not in mouse.errors:
            reason = finished[failed[0]].reason
            mouse.errors[work.name] = f"{failed[0]} failed in this run ({reason})"

    def _all_finished(self, mouse: MousePlan, names: list[str]) -> bool:
        return all(n in self.finished[mouse.mouse_id] for n in names)

    @staticmethod
    def _planned(mouse: MousePlan, name: str) -> bool:
        return any(w.name == name for w in mouse.items)

    @staticmethod
    def _ephys(mouse: MousePlan) -> list[str]:
        return [w.name for w in mouse.items if isinstance(w, EphysWork)]
