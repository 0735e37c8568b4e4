"""What the data plane does for traffic after a routed request: per-arm metrics, the rollout window, and
the copies for shadow traffic and a rollout's mirrored inputs, run from the bounded shadow queue so that they
never reach or slow the caller. The rollout controller runs beside it, in every server process."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import numpy as np
from prometheus_client import CollectorRegistry

from maas.serving.contract import InferenceRequest, InferenceResponse
from maas.serving.loaded import LoadedVersion
from maas.serving.repository import ModelRepository
from maas.traffic.analysis import Agreement, compare, predicted_classes
from maas.traffic.controller import RolloutController, RolloutWindows
from maas.traffic.metrics import TrafficMetrics
from maas.traffic.rollout import Rollout, RolloutState
from maas.traffic.routing import ActiveSplit
from maas.traffic.shadow import ShadowQueue

log = logging.getLogger(__name__)

# Outcomes that count against an arm (server-side failures); a client's bad request says nothing of the model.
FAILURES = frozenset({"internal", "unavailable", "deadline_exceeded", "data_loss", "resource_exhausted"})
SHADOW_QUEUE = 256

Infer = Callable[[LoadedVersion, InferenceRequest, float], Awaitable[InferenceResponse]]


class TrafficPlane:
    def __init__(self, repository: ModelRepository, registry: CollectorRegistry, infer: Infer) -> None:
        self.repository = repository
        self.metrics = TrafficMetrics(registry)
        self.windows = RolloutWindows()
        # Copies share the inference pool with callers: at most a quarter of it, so they cannot crowd callers out.
        self.shadow = ShadowQueue(SHADOW_QUEUE, max(1, repository.options.inference_threads // 4))
        self._infer = infer
        self.controller = RolloutController(
            repository.traffic, self.windows, self.metrics, self._refresh, repository.serves, self._applied,
            repository.load_failure,
        )
        repository.watch(self.controller.wake)  # a rollout started or changed state: look now, not at idle_s

    def start(self) -> None:
        self.shadow.start()
        self.controller.start()

    async def stop(self) -> None:
        await self.controller.stop()
        await self.shadow.stop()

    async def _refresh(self) -> None:
        await self.repository.refresh(force=True)

    def _applied(self, rollout: Rollout) -> bool:
        """Whether bare requests already follow `rollout`'s current step here."""
        active = self.repository.split_of(rollout.model)
        if active is None or active.rollout is None or active.rollout.id != rollout.id:
            return False
        weights = {a.version: a.weight for a in active.split.arms}
        return weights.get(rollout.candidate) == rollout.steps[rollout.step]

    def after(self, routed: ActiveSplit, loaded: LoadedVersion, request: InferenceRequest,
              response: InferenceResponse | None, outcome: str, seconds: float, slot_wait_s: float = 0.0) -> None:
        """Called once per routed request, on the event loop, after its answer is ready. The rollout window
        judges `seconds` less `slot_wait_s`, the time the request was ready to run while another version of
        the model held the shared slots (serving/slots.py): what the arm would have taken alone. Otherwise a
        10 % candidate, which waits for a few of stable's batches to run its own, would look slower than
        stable for sharing, not for anything of its own; its own compute and batching stay in."""
        model, number = loaded.name, loaded.number
        self.metrics.routed(model, str(number), outcome, seconds)
        window = self.windows.get(model)
        if response is None:
            if window is not None and outcome in FAILURES:
                self.windows.record(model, number, False, seconds, None)
            return
        primary = {t.name: t.data for t in response.outputs}
        if window is not None:
            self.windows.record(model, number, True, seconds - slot_wait_s, predicted_classes(primary))
        rollout = routed.rollout
        if (rollout is not None and window is not None and rollout.state is RolloutState.RUNNING
                and number == rollout.stable and routed.chooser.mirror(rollout.thresholds.mirror_fraction)):
            self._copy(model, rollout.candidate, request, primary, window.mirrored,
                       rollout.thresholds.regression_tolerance)
        shadow = routed.split.shadow
        if shadow is not None and shadow.version != number and routed.chooser.mirror(shadow.fraction):
            self._copy(model, shadow.version, request, primary, None, 0.01)

    def _copy(self, model: str, number: int, request: InferenceRequest, primary: dict[str, np.ndarray],
              agreement: Agreement | None, tolerance: float) -> None:
        target = self.repository.get_loaded(model, number)
        version = str(number)
        if target is None or not self.shadow.offer(self._job(target, request, primary, agreement, tolerance)):
            self.metrics.shadow.labels(model, version, "dropped").inc()

    def _job(self, target: LoadedVersion, request: InferenceRequest, primary: dict[str, np.ndarray],
             agreement: Agreement | None, tolerance: float) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            model, version = target.name, str(target.number)
            target.acquire()
            try:
                response = await self._infer(target, request, time.monotonic())
            except Exception as exc:  # a shadow's failure is only counted, never raised to anyone
                log.debug("shadow request to %s:%s failed: %s", model, version, exc)
                self.metrics.shadow.labels(model, version, "failed").inc()
                if agreement is not None:
                    agreement.failures += 1
                return
            finally:
                target.release()
            self.metrics.shadow.labels(model, version, "ok").inc()
            agree, error, classes = compare(primary, {t.name: t.data for t in response.outputs}, tolerance)
            self.metrics.compared(model, version, agree, error)
            if agreement is not None:
                agreement.add(agree, error, classes)

        return run
