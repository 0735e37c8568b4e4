"""The ingress's side of deployments that come and go while it serves: a model's requests go to its deployment
once that deployment is running, and back to the ingress's own data plane once it is gone. No Ray import here
(Ray's calls are handed in), so it is tested without a cluster.

The driver (`cluster/following.py`) deploys and deletes; the ingress only looks. It looks when its registry
poll finds a change (the data plane's repository calls back) and then, while some model it serves has no
deployment attached yet, every poll interval (backing off to 2 s): one `serve.status()` call to Serve's
controller per look, none while everything is attached. Looking from the ingress rather than being told by the
driver means a restarted ingress replica, or a second one, finds the deployments by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from maas.cluster.dataplane import ClusterDataPlane

log = logging.getLogger(__name__)

RUNNING = "RUNNING"
GONE = ("DELETING", "NOT_STARTED")  # with an application that is not listed at all
LONGEST_LOOK_INTERVAL_S = 2.0


class DeploymentDiscovery:
    """`statuses()`: model name -> its application's status (Ray Serve's `ApplicationStatus` values), blocking;
    `handle_of(name)`: a handle to that model's deployment, blocking; `max_calls_of(name)`: the handle calls to keep
    in flight to it (scaling.ReplicaScaling.calls_in_flight of the model's current config), blocking."""

    def __init__(self, dataplane: ClusterDataPlane, statuses: Callable[[], Mapping[str, str]],
                 handle_of: Callable[[str], Any], max_calls_of: Callable[[str], int], interval_s: float) -> None:
        self.dataplane, self.statuses, self.handle_of, self.max_calls_of = dataplane, statuses, handle_of, max_calls_of
        self.interval_s = interval_s
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self) -> None:
        self.dataplane.repository.watch(self._changed.set)
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="follow model deployments")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def served(self) -> set[str]:
        """The tensor models this ingress has loaded: those it would serve itself (and looks deployments up for)."""
        return {v.name for v in self.dataplane.repository.all_loaded()}

    async def sync(self, limits: bool = False) -> bool:
        """One look: attach the running deployments of served models, detach those deleted or no longer served;
        `limits`: also re-read the calls in flight of those attached (their config may have changed). Returns
        whether every served model now has its deployment attached."""
        async with self._lock:
            statuses = dict(await asyncio.to_thread(self.statuses))
            served, dp = self.served(), self.dataplane
            for name in sorted(set(dp.handles)):
                status = statuses.get(name)
                if name not in served or status is None or status in GONE:
                    dp.detach(name)
                    log.info("%s: served by the ingress from now on (deployment %s)", name, status or "gone")
                elif limits:
                    dp.coalescers[name].max_calls = await asyncio.to_thread(self.max_calls_of, name)
            for name in sorted(served - set(dp.handles)):
                if statuses.get(name) == RUNNING:
                    handle = await asyncio.to_thread(self.handle_of, name)
                    dp.attach(name, handle, await asyncio.to_thread(self.max_calls_of, name))
                    log.info("%s: served by its deployment's replicas from now on", name)
            return served <= set(dp.handles)

    async def _follow(self) -> None:
        settled, delay = True, self.interval_s
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), None if settled else delay)
                delay = self.interval_s
            except TimeoutError:
                delay = min(2 * delay, max(self.interval_s, LONGEST_LOOK_INTERVAL_S))
            changed = self._changed.is_set()
            self._changed.clear()
            try:
                settled = await self.sync(limits=changed)
            except Exception:  # the controller unreachable for a moment: the ingress serves on, and looks again
                log.exception("looking up the model deployments failed; looking again in %.1f s", delay)
                settled = False
