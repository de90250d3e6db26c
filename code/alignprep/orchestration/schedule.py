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
from functools import partial

from ..config import PipelineConfig
from ..logs import get_logger
from ..work import ChannelRegionsWork, EphysWork, QcWork, StageResult, Status, TrackWork, Work
from .executors import Executor
from .plan import MousePlan, Plan, resolve_tracks
from .priority import critical_paths, default_seconds
from .tasks import Envelope, run_envelope

log = get_logger("orchestration")


class Schedule:
    """The plan's items, given to ``executor`` as their inputs become available, the ready
    item with the longest chain of work behind it first (:mod:`.priority`).

    An executor with ``slots`` (the pool, asyncio, serial, a LocalCluster) gets at most that
    many items at once, so that an item becoming ready later can still go before one that
    waits for a worker; one without (a site's Dask cluster) gets every ready item with its
    priority and orders them itself.
    ``seconds`` estimates an item (default: :func:`~.priority.default_seconds`).
    """

    def __init__(
        self,
        config: PipelineConfig,
        plan: Plan,
        executor: Executor,
        seconds: Callable[[MousePlan, Work], float | None] | None = None,
    ) -> None:
        self.config, self.plan, self.executor = config, plan, executor
        self.seconds = seconds
        self.slots: int | None = getattr(executor, "slots", None)
        self.running = 0
        self.order = 0  # plan order, across mice, for equal priorities
        self.waiting: list[tuple[float, int, MousePlan, Work]] = []  # ready, for a free slot
        self.paths: dict[str, dict[str, float]] = {}  # mouse -> its items' critical paths
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
            self.running -= 1
            result = done(env, outcome)
            mouse = self.mice[env.work.mouse_id]
            self.finished[mouse.mouse_id][env.work.name] = result
            if not self.resolved[mouse.mouse_id] and self._all_finished(mouse, self._ephys(mouse)):
                resolve_tracks(self.config, mouse)
                self.resolved[mouse.mouse_id] = True
                self.paths.pop(mouse.mouse_id, None)  # new track and QC items
            self._submit_ready()

    def _submit_ready(self) -> None:
        for mouse in self.plan.mice:
            ready = [
                w
                for w in mouse.items
                if w.name not in self.submitted[mouse.mouse_id] and self._ready(mouse, w)
            ]
            if not ready:
                continue
            paths = self._paths(mouse)
            for work in ready:
                self.submitted[mouse.mouse_id].add(work.name)
                self._fail_if_upstream_failed(mouse, work)
                self.order += 1
                self.waiting.append((-paths[work.name], self.order, mouse, work))
        self.waiting.sort(key=lambda e: e[:2])  # longest chain first, then plan order
        while self.waiting and (self.slots is None or self.running < self.slots):
            minus_path, _, mouse, work = self.waiting.pop(0)
            env = Envelope(
                self.config,
                None if work.kind == "ephys" else mouse.report.context,
                work,
                mouse.errors.get(work.name, ""),
                n_threads=1,
            )
            self.executor.submit(run_envelope, env, priority=-minus_path)
            self.running += 1

    def _paths(self, mouse: MousePlan) -> dict[str, float]:
        """The critical path of each item of ``mouse`` (computed again once its tracks are)."""
        if mouse.mouse_id not in self.paths:
            ctx = mouse.report.context
            n_channels = len(ctx.asset.channels) if ctx is not None and ctx.light_sheet else 1

            def seconds(work: Work) -> float:
                known = self.seconds(mouse, work) if self.seconds is not None else None
                return known if known is not None else default_seconds(work, n_channels)

            waits = partial(self._waits, mouse)
            self.paths[mouse.mouse_id] = critical_paths(mouse.items, waits, seconds)
        return self.paths[mouse.mouse_id]

    def _waits(self, mouse: MousePlan, work: Work) -> list[str]:
        """The planned items ``work`` waits for: what it reads (``needs``, a QC item's
        ``after``); a track, a channel regions or QC item also every ephys item of the mouse
        (the tracks are named by the channel tables), a channel regions item the tracks."""
        waits = list(work.needs)
        if isinstance(work, (TrackWork, QcWork, ChannelRegionsWork)):
            waits += self._ephys(mouse)
        if isinstance(work, QcWork):  # draws what they wrote, failed ones included
            waits += work.after
        if isinstance(work, ChannelRegionsWork):  # its picks: the mouse's tracks
            waits += [t.name for t in mouse.tracks()]
        return [n for n in dict.fromkeys(waits) if self._planned(mouse, n)]

    def _ready(self, mouse: MousePlan, work: Work) -> bool:
        if (
            isinstance(work, (TrackWork, QcWork, ChannelRegionsWork))
            and not self.resolved[mouse.mouse_id]
        ):
            return False  # planned again once the channel tables exist
        return self._all_finished(mouse, self._waits(mouse, work))

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
