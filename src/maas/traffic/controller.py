"""Drives running rollouts from inside a server: measures both arms over each interval (in this process),
judges, and records the decision in the database, which moves the traffic of every server on the registry.

The state lives in the database only. A restarted server finds its running rollouts there and starts a fresh
interval; a paused one stays paused. Several servers may measure the same rollout; the first decision written
for a generation wins and the others are discarded (`TrafficStore.transition`).

While a rollout served here is running, the store is read every `tick_s` (intervals are timed from it). With
none, the controller waits for `wake` (the registry's revision moved: a rollout was started, or one changed
state, in any process; the server's registry poll notices within its interval) or `idle_s`, whichever comes
first: ten store reads a second had been a third of an idle server's CPU."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import numpy as np

from maas.traffic.analysis import Agreement, ArmWindow, judge
from maas.traffic.metrics import TrafficMetrics
from maas.traffic.rollout import Rollout, RolloutState, Verdict, after_verdict
from maas.traffic.store import TrafficStore

log = logging.getLogger(__name__)


@dataclass
class Window:
    """One interval of one rollout step, as this process saw it."""

    rollout_id: int
    generation: int
    stable_version: int
    candidate_version: int
    started: float = field(default_factory=time.monotonic)
    stable: ArmWindow = field(default_factory=ArmWindow)
    candidate: ArmWindow = field(default_factory=ArmWindow)
    mirrored: Agreement = field(default_factory=Agreement)


class RolloutWindows:
    """The current window of every model under a running rollout; the data plane records into it."""

    def __init__(self) -> None:
        self._windows: dict[str, Window] = {}
        self._rng = random.Random()

    def get(self, model: str) -> Window | None:
        return self._windows.get(model)

    def begin(self, r: Rollout) -> Window:
        window = self._windows[r.model] = Window(r.id, r.generation, r.stable, r.candidate)
        return window

    def drop(self, model: str) -> None:
        self._windows.pop(model, None)

    def models(self) -> set[str]:
        return set(self._windows)

    def record(self, model: str, version: int, ok: bool, seconds: float, classes: np.ndarray | None) -> None:
        window = self._windows.get(model)
        if window is None:
            return
        if version == window.stable_version:
            window.stable.add(ok, seconds, classes, self._rng.random())
        elif version == window.candidate_version:
            window.candidate.add(ok, seconds, classes, self._rng.random())


def controller_name() -> str:
    return f"controller {socket.gethostname()}:{os.getpid()}"


class RolloutController:
    def __init__(self, store: TrafficStore, windows: RolloutWindows, metrics: TrafficMetrics,
                 on_change: Callable[[], Awaitable[None]], served: Callable[[str], bool],
                 applied: Callable[[Rollout], bool], load_failure: Callable[[str, int], str | None],
                 tick_s: float = 0.1, idle_s: float = 2.0) -> None:
        self.store = store
        self.windows = windows
        self.metrics = metrics
        self.on_change = on_change
        self.served = served
        self.applied = applied
        self.load_failure = load_failure
        self.tick_s = tick_s
        self.idle_s = idle_s
        self.who = controller_name()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the store now (call on the event loop): something about rollouts may have changed."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="rollout controller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        await asyncio.sleep(self.tick_s)
        while True:
            self._wake.clear()  # before the look: a wake during it brings the next one at once
            busy = True
            try:
                busy = await self.tick()
            except Exception:
                log.exception("driving rollouts failed; retrying")
            if busy:
                await asyncio.sleep(self.tick_s)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_s)

    async def tick(self) -> bool:
        """One look at the store's rollouts; whether one served here is running (to be looked at again soon)."""
        rollouts = await asyncio.to_thread(self.store.active_rollouts)
        running: set[str] = set()
        for r in rollouts:
            if not self.served(r.model):
                continue
            self.metrics.rollout(r.model, r.state, r.candidate_weight)
            if r.state is not RolloutState.RUNNING:
                continue
            running.add(r.model)
            window = self.windows.get(r.model)
            if window is None or window.rollout_id != r.id or window.generation != r.generation:
                # An interval starts only once this server routes by the step's weights, or it would measure
                # requests that never saw the split.
                if not self.applied(r):
                    await self.on_change()
                if self.applied(r):
                    self.windows.begin(r)
                elif (why := self.load_failure(r.model, r.candidate)) is not None:
                    await self._fail(r, f"version {r.candidate} cannot be served: {why}")
                continue
            if time.monotonic() - window.started >= r.interval_s:
                await self._decide(r, window)
        for model in self.windows.models() - running:
            self.windows.drop(model)
        return bool(running)

    async def _fail(self, r: Rollout, reason: str) -> None:
        written = await asyncio.to_thread(
            self.store.transition, r.id, r.generation, state=RolloutState.ROLLED_BACK, step=r.step,
            kind="rolled_back", verdict="failed", figures={}, reason=reason, by=self.who, candidate_weight=0,
        )
        if written:
            log.warning("rollout of %s to %s: rolled back (%s)", r.model, r.candidate, reason)
            self.metrics.rollout(r.model, RolloutState.ROLLED_BACK, 0)
            await self.on_change()

    async def _decide(self, r: Rollout, window: Window) -> None:
        m = judge(window.stable, window.candidate, window.mirrored, r.thresholds)
        if m.figures.get("agreement") is not None:
            self.metrics.rollout_agreement.labels(r.model).set(m.figures["agreement"])
        if m.figures.get("psi") is not None:
            self.metrics.rollout_psi.labels(r.model).set(m.figures["psi"])
        in_row = 0
        if m.verdict is Verdict.INCONCLUSIVE:
            in_row = await asyncio.to_thread(self.store.inconclusive_in_row, r.id, r.step) + 1
        t = after_verdict(r, m.verdict, m.reason, in_row)
        figures = {**m.figures, "interval_s": round(time.monotonic() - window.started, 3)}
        self.windows.drop(r.model)
        written = await asyncio.to_thread(
            self.store.transition, r.id, r.generation, state=t.state, step=t.step, kind=t.kind,
            verdict=m.verdict.value, figures=figures, reason=t.reason, by=self.who,
            candidate_weight=t.candidate_weight, promote=t.promote,
        )
        if not written:
            return
        level = logging.WARNING if t.state is RolloutState.ROLLED_BACK else logging.INFO
        log.log(level, "rollout of %s to %s: %s (%s)", r.model, r.candidate, t.kind, t.reason)
        weight = t.candidate_weight if t.candidate_weight is not None else r.candidate_weight
        self.metrics.rollout(r.model, t.state, weight)
        if t.candidate_weight is not None or t.promote:
            await self.on_change()
