"""Shared execution slots (serving/slots.py): the versions of a split take turns, the waiting arm's requests
run together and the other arms ride in its turn (and are never chained behind in their own lane meanwhile), a
turn is cut once the arms hold a full batch between them, a shadow target yields to an arm, the wait for
another arm is recorded for rollouts, leaving a pool frees a waiting batcher; the repository pools a split's
adaptive versions only.

Gated fake runtimes let the tests decide when a batch finishes; nothing depends on timing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from maas.registry import Registry
from maas.serving import ServingDataPlane, slots
from maas.serving.batcher import Batcher, last_pending
from maas.serving.options import BatchingPolicy
from maas.serving.slots import SharedSlots
from maas.traffic import TrafficService, TrafficSplit
from maas.types import TensorSpec

from . import serving_models as models
from .serving_models import serve

HANG_GUARD_S = 30.0


class Gated:
    """Doubles its input; every run waits for the test to open its gate (one run per `release`)."""

    inputs = (TensorSpec("x", "FP32", (-1, 2)),)
    outputs = (TensorSpec("y", "FP32", (-1, 2)),)

    def __init__(self, name: str, log: list[tuple[str, int]], running: list[int]) -> None:
        self.name, self.log, self.running = name, log, running
        self.threads: list[int] = []  # the worker thread of each run
        self.gate = threading.Semaphore(0)
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            self.running[0] += 1
            self.running[1] = max(self.running[1], self.running[0])
        self.log.append((self.name, int(inputs["x"].shape[0])))
        self.threads.append(threading.get_ident())
        self.started.release()
        try:
            assert self.gate.acquire(timeout=HANG_GUARD_S)
            return {"y": inputs["x"] * 2}
        finally:
            with self._lock:
                self.running[0] -= 1

    def close(self) -> None:
        pass


def default_policy() -> BatchingPolicy:
    return BatchingPolicy(16, 100, (), 1, 1, 100)


def one_row(value: float = 0.0) -> dict[str, np.ndarray]:
    return {"x": np.full((1, 2), value, dtype=np.float32)}


async def started(runtime: Gated) -> None:
    assert await asyncio.to_thread(runtime.started.acquire, True, HANG_GUARD_S)


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


Body = Callable[[dict[str, Batcher], dict[str, Gated], list[tuple[str, int]], list[int]], Awaitable[Any]]


def run_pooled(body: Body, arms: tuple[str, ...] = ("a", "b"), shadows: tuple[str, ...] = (),
               pooled: bool = True, policy: BatchingPolicy | None = None) -> Any:
    async def main() -> Any:
        log: list[tuple[str, int]] = []
        running = [0, 0]  # batches running now, most at once
        runtimes = {n: Gated(n, log, running) for n in (*arms, *shadows)}
        with ThreadPoolExecutor(4) as pool:
            batchers = {n: Batcher(f"m:{n}", policy or default_policy(), [r], pool) for n, r in runtimes.items()}
            for b in batchers.values():
                b.start()
            if pooled:
                SharedSlots().apply("m", [batchers[n] for n in arms], [batchers[n] for n in shadows])
            try:
                return await asyncio.wait_for(body(batchers, runtimes, log, running), HANG_GUARD_S)
            finally:
                for r in runtimes.values():
                    for _ in range(100):
                        r.gate.release()
                for b in batchers.values():
                    await b.stop(HANG_GUARD_S)

    return asyncio.run(main())


def test_the_arms_take_turns_and_a_waiting_arm_rides_in_the_turn_granted_to_another() -> None:
    """One batch holds the model's only slot; the arm that waited longest is granted it next and runs its queue
    as one batch, and the other arm's queued requests run right after it in the same worker, in the same turn
    (one wake instead of two); the slot frees only after the rider's batch."""

    async def body(b: dict[str, Batcher], r: dict[str, Gated], log: list[tuple[str, int]], running: list[int]) -> None:
        first = asyncio.ensure_future(b["a"].submit(one_row(), HANG_GUARD_S))
        await started(r["a"])
        waiting_b = [asyncio.ensure_future(b["b"].submit(one_row(), HANG_GUARD_S)) for _ in range(3)]
        waiting_a = [asyncio.ensure_future(b["a"].submit(one_row(), HANG_GUARD_S)) for _ in range(2)]
        await turns()
        assert log == [("a", 1)]  # b's requests wait while a's batch holds the model's only slot
        pool = b["a"].slots
        assert pool is not None
        r["a"].gate.release()  # b is granted the slot; a's two queued requests board its turn
        await started(r["b"])
        await turns()
        assert pool.in_use == 1 and log == [("a", 1), ("b", 3)]  # b waited longest, with more rows
        r["b"].gate.release()
        await started(r["a"])
        await asyncio.gather(first, *waiting_b)
        assert pool.in_use == 1  # b's callers have their answers, but a's rider still runs in the turn
        assert r["a"].threads[1] == r["b"].threads[0]  # right after b's batch, in the same worker
        r["a"].gate.release()
        outs = await asyncio.gather(*waiting_a)
        assert all(o["y"].shape == (1, 2) for o in outs)
        await turns()
        assert log == [("a", 1), ("b", 3), ("a", 2)] and running[1] == 1
        assert pool.in_use == 0

    run_pooled(body)


def test_an_instance_riding_in_another_lane_is_not_chained_behind_in_its_own() -> None:
    """A version that leaves the pool while its batch rides in another version's lane must not run a chained
    batch on the same instance in its own lane meanwhile (a runtime is called from one thread at a time)."""

    async def body(b: dict[str, Batcher], r: dict[str, Gated], log: list[tuple[str, int]], running: list[int]) -> None:
        first = asyncio.ensure_future(b["a"].submit(one_row(), HANG_GUARD_S))
        await started(r["a"])
        waiting = [asyncio.ensure_future(b[n].submit(one_row(), HANG_GUARD_S)) for n in ("b", "a")]
        await turns()
        r["a"].gate.release()  # b is granted the slot, a's request rides behind b's batch
        await started(r["b"])
        pool = b["a"].slots
        assert pool is not None
        pool.detach(b["a"])
        full = [asyncio.ensure_future(b["a"].submit(one_row(), HANG_GUARD_S)) for _ in range(16)]
        await turns()
        assert log == [("a", 1), ("b", 1)]  # the full batch waits for a's instance to come back
        r["b"].gate.release()
        await started(r["a"])
        r["a"].gate.release()
        await started(r["a"])
        r["a"].gate.release()
        await asyncio.gather(first, *waiting, *full)
        assert log == [("a", 1), ("b", 1), ("a", 1), ("a", 16)] and running[1] == 1

    run_pooled(body)


def test_a_turn_is_cut_when_the_arms_queues_hold_a_full_batch_between_them() -> None:
    """Neither arm alone fills a batch of 4, and the queue delay is longer than the test may take: together
    they do, so the turn runs at once, one arm's batch and the other's riding with it, as one version's full
    batch would."""

    async def body(b: dict[str, Batcher], r: dict[str, Gated], log: list[tuple[str, int]], running: list[int]) -> None:
        warm = [asyncio.ensure_future(b[n].submit(one_row(), HANG_GUARD_S)) for n in "aaaabbbb"]
        for n in "ab":  # full batches first, so that the batchers wait out the delay for company after them
            r[n].gate.release()
        await asyncio.gather(*warm)
        log.clear()
        tasks = [asyncio.ensure_future(b[n].submit(one_row(), HANG_GUARD_S)) for n in ("a", "b", "a")]
        await turns()
        assert log == []  # three rows: the turn is not full, and the delay is far off
        tasks.append(asyncio.ensure_future(b["b"].submit(one_row(), HANG_GUARD_S)))
        await started(r["b"])  # the fourth row fills the turn; b, whose request filled it, is granted the slot
        r["b"].gate.release()
        await started(r["a"])
        r["a"].gate.release()
        await asyncio.gather(*tasks)
        assert sorted(log) == [("a", 2), ("b", 2)] and running[1] == 1

    run_pooled(body, policy=BatchingPolicy(4, 2 * int(HANG_GUARD_S * 1e6), (), 1, 1, 100))


def test_without_a_pool_the_versions_run_at_once() -> None:
    """The control: the same batchers, not pooled, run both versions' batches at the same time."""

    async def body(b: dict[str, Batcher], r: dict[str, Gated], log: list[tuple[str, int]], running: list[int]) -> None:
        tasks = [asyncio.ensure_future(b[n].submit(one_row(), HANG_GUARD_S)) for n in ("a", "b")]
        await started(r["a"])
        await started(r["b"])
        assert running[1] == 2
        r["a"].gate.release()
        r["b"].gate.release()
        await asyncio.gather(*tasks)

    run_pooled(body, pooled=False)


def test_a_shadow_target_yields_the_slot_to_a_waiting_arm(monkeypatch: pytest.MonkeyPatch) -> None:
    # The copies' score is their rows x their wait x SHADOW_WEIGHT, the arm's its wait: on a loaded machine the
    # gap between queueing the copies and the arm's request can outweigh 1/16 (a CI run gave the copies the
    # slot). A far smaller weight keeps the rule under test and takes the clock out of it.
    monkeypatch.setattr(slots, "SHADOW_WEIGHT", 1e-9)

    async def body(b: dict[str, Batcher], r: dict[str, Gated], log: list[tuple[str, int]], running: list[int]) -> None:
        first = asyncio.ensure_future(b["a"].submit(one_row(), HANG_GUARD_S))
        await started(r["a"])
        copies = [asyncio.ensure_future(b["s"].submit(one_row(), HANG_GUARD_S)) for _ in range(4)]
        await turns()
        second = asyncio.ensure_future(b["a"].submit(one_row(), HANG_GUARD_S))  # queued after the copies
        await turns()
        r["a"].gate.release()
        await started(r["a"])
        await turns()
        assert log == [("a", 1), ("a", 1)]  # the arm's request went first, though the copies came before it
        r["a"].gate.release()
        await started(r["s"])
        r["s"].gate.release()
        await asyncio.gather(first, second, *copies)
        assert log == [("a", 1), ("a", 1), ("s", 4)]
        assert running[1] == 1

    run_pooled(body, arms=("a",), shadows=("s",))


def test_the_wait_for_another_arms_run_is_recorded_on_the_request() -> None:
    async def submitted(batcher: Batcher) -> float:
        await batcher.submit(one_row(), HANG_GUARD_S)
        pending = last_pending.get()  # set by submit in this task while the batcher is pooled
        assert pending is not None
        return pending.slot_wait

    async def body(b: dict[str, Batcher], r: dict[str, Gated], log: list[tuple[str, int]], running: list[int]) -> None:
        first = asyncio.ensure_future(submitted(b["a"]))
        await started(r["a"])
        blocked = asyncio.ensure_future(submitted(b["b"]))
        await turns()
        await asyncio.sleep(0.01)  # b is refused a slot for as long as a's batch runs (at least this long)
        r["a"].gate.release()
        await started(r["b"])
        r["b"].gate.release()
        assert await first == 0.0  # it ran at once
        assert await blocked >= 0.01

    run_pooled(body)


def test_leaving_the_pool_lets_a_waiting_batcher_run_at_once() -> None:
    async def body(b: dict[str, Batcher], r: dict[str, Gated], log: list[tuple[str, int]], running: list[int]) -> None:
        first = asyncio.ensure_future(b["a"].submit(one_row(), HANG_GUARD_S))
        await started(r["a"])
        waiting = asyncio.ensure_future(b["b"].submit(one_row(), HANG_GUARD_S))
        await turns()
        assert log == [("a", 1)]
        pool = b["b"].slots
        assert pool is not None
        pool.detach(b["b"])  # as SharedSlots.apply does when the split changes
        await started(r["b"])  # runs while a still holds its batch
        assert running[1] == 2 and b["b"].slots is None
        r["a"].gate.release()
        r["b"].gate.release()
        await asyncio.gather(first, waiting)

    run_pooled(body)


def test_the_repository_pools_a_splits_adaptive_versions_and_not_an_explicit_layout(
    serving_registry: Registry,
) -> None:
    for value in (1, 2):
        models.publish(serving_registry, "adder", models.add_constant(value))
    models.publish(serving_registry, "fixed", models.add_constant(1))
    models.publish(serving_registry, "fixed", models.add_constant(2), config={"batching": {"instances": 2}})
    service = TrafficService(serving_registry)
    halves = TrafficSplit.from_dict({"arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]})

    async def body(plane: ServingDataPlane) -> None:
        for name in ("adder", "fixed"):
            await asyncio.to_thread(service.set_split, name, halves)
        await plane.repository.refresh()
        one, two = (plane.repository.get_loaded("adder", n) for n in (1, 2))
        assert one is not None and two is not None
        assert one.batcher.slots is not None and one.batcher.slots is two.batcher.slots
        assert one.batcher.slots.size == 1  # what one arm alone gets
        # v2 of "fixed" asked for 2 instances: it keeps them to itself, and v1 has nobody to share with
        assert all(v.batcher.slots is None for v in plane.repository.loaded("fixed"))
        answers = [await plane.infer(_request()) for _ in range(10)]
        assert {float(a.outputs[0].data[0, 0]) for a in answers} <= {1.0, 2.0}
        await asyncio.to_thread(service.clear_split, "adder")
        await plane.repository.refresh()
        assert one.batcher.slots is None

    serve(serving_registry, body, adaptive_layout=True)


def _request() -> Any:
    from maas.serving.contract import InferenceRequest, InferTensor

    return InferenceRequest("adder", None, [InferTensor("x", "FP32", (1, 2), np.zeros((1, 2), np.float32))])


def test_a_rollout_judges_an_arms_latency_without_its_wait_for_the_other_arm(serving_registry: Registry) -> None:
    """The per-arm metrics keep what the client saw; the rollout window gets the latency less the slot wait."""
    from types import SimpleNamespace

    for value in (1, 2):
        models.publish(serving_registry, "adder", models.add_constant(value))
    halves = TrafficSplit.from_dict({"arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]})

    async def body(plane: ServingDataPlane) -> None:
        await asyncio.to_thread(TrafficService(serving_registry).set_split, "adder", halves)
        await plane.repository.refresh()
        routed, candidate = plane.repository.split_of("adder"), plane.repository.get_loaded("adder", 2)
        assert routed is not None and candidate is not None
        window = plane.traffic.windows.begin(SimpleNamespace(  # type: ignore[arg-type]
            model="adder", id=1, generation=1, stable=1, candidate=2))
        request = _request()
        response = await plane.infer(request)
        window.candidate.latencies.clear()
        plane.traffic.after(routed, candidate, request, response, "ok", 0.050, 0.030)
        assert window.candidate.latencies == [pytest.approx(0.020)]

    serve(serving_registry, body)
