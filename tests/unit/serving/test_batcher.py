"""The batcher: merging under a busy instance, preferred sizes, error fan-out, bounded queue, timeouts.

A fake runtime blocks on a gate so the tests control when an instance is busy; nothing depends on timing.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from maas.errors import DeadlineExceeded, Internal, ResourceExhausted, Unavailable
from maas.serving.batcher import Batcher
from maas.serving.options import BatchingPolicy
from maas.types import TensorSpec

HANG_GUARD_S = 30.0


class GatedRuntime:
    """Doubles its input; the first run waits for `gate` so requests pile up behind it."""

    inputs = (TensorSpec("x", "FP32", (-1, -1)),)
    outputs = (TensorSpec("y", "FP32", (-1, -1)),)

    def __init__(self, fail: Exception | None = None, collapse: bool = False) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()
        self.batches: list[int] = []
        self.fail = fail
        self.collapse = collapse

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.started.set()
        assert self.gate.wait(HANG_GUARD_S)
        x = inputs["x"]
        self.batches.append(x.shape[0])
        if self.fail is not None and len(self.batches) > 1:
            raise self.fail
        y = x * 2
        return {"y": y[:1] if self.collapse and len(self.batches) > 1 else y}

    def close(self) -> None:
        pass


def policy(max_batch_size: int = 8, preferred: tuple[int, ...] = (), queue: int = 100) -> BatchingPolicy:
    return BatchingPolicy(max_batch_size, 20_000, preferred, 1, 1, queue)


def rows(n: int, start: float, width: int = 3) -> dict[str, np.ndarray]:
    return {"x": np.arange(start, start + n * width, dtype=np.float32).reshape(n, width)}


async def _with_batcher(runtime: GatedRuntime, pol: BatchingPolicy, body):  # type: ignore[no-untyped-def]
    with ThreadPoolExecutor(2) as pool:
        batcher = Batcher("test:1", pol, [runtime], pool)
        batcher.start()
        try:
            return await asyncio.wait_for(body(batcher), HANG_GUARD_S)
        finally:
            runtime.gate.set()
            await batcher.stop(HANG_GUARD_S)


async def _occupy(batcher: Batcher, runtime: GatedRuntime) -> asyncio.Task[dict[str, np.ndarray]]:
    """Start a first request and wait until the only instance is busy running it."""
    first = asyncio.ensure_future(batcher.submit(rows(1, -1.0), HANG_GUARD_S))
    assert await asyncio.to_thread(runtime.started.wait, HANG_GUARD_S)
    return first


def test_requests_queued_behind_a_busy_instance_are_merged_and_split_back() -> None:
    runtime = GatedRuntime()

    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        sizes = [2, 1, 3]
        inputs = [rows(n, 100.0 * i) for i, n in enumerate(sizes)]
        tasks = [asyncio.ensure_future(batcher.submit(x, HANG_GUARD_S)) for x in inputs]
        await asyncio.sleep(0)
        runtime.gate.set()
        results = await asyncio.gather(*tasks)
        await first
        for x, out in zip(inputs, results, strict=True):
            np.testing.assert_array_equal(out["y"], x["x"] * 2)
        assert runtime.batches == [1, 6]

    asyncio.run(_with_batcher(runtime, policy(), body))


def test_a_batch_is_cut_at_the_largest_reachable_preferred_size() -> None:
    runtime = GatedRuntime()

    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        tasks = [asyncio.ensure_future(batcher.submit(rows(n, 10.0 * n), HANG_GUARD_S)) for n in (2, 2, 3)]
        await asyncio.sleep(0)
        runtime.gate.set()
        await asyncio.gather(first, *tasks)
        assert runtime.batches == [1, 4, 3]

    asyncio.run(_with_batcher(runtime, policy(preferred=(4,)), body))


def test_requests_with_different_inner_shapes_run_separately() -> None:
    runtime = GatedRuntime()

    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        narrow = asyncio.ensure_future(batcher.submit(rows(2, 0.0, width=3), HANG_GUARD_S))
        wide = asyncio.ensure_future(batcher.submit(rows(1, 0.0, width=5), HANG_GUARD_S))
        await asyncio.sleep(0)
        runtime.gate.set()
        out_narrow, out_wide, _ = await asyncio.gather(narrow, wide, first)
        assert out_narrow["y"].shape == (2, 3) and out_wide["y"].shape == (1, 5)
        assert sorted(runtime.batches) == [1, 1, 2]

    asyncio.run(_with_batcher(runtime, policy(), body))


@pytest.mark.parametrize(
    ("runtime", "error"),
    [(GatedRuntime(fail=Internal("boom")), Internal), (GatedRuntime(collapse=True), Internal)],
    ids=["model-raises", "output-rows-mismatch"],
)
def test_an_error_reaches_every_caller_of_the_batch(runtime: GatedRuntime, error: type[Exception]) -> None:
    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        tasks = [asyncio.ensure_future(batcher.submit(rows(2, float(i)), HANG_GUARD_S)) for i in range(3)]
        await asyncio.sleep(0)
        runtime.gate.set()
        await first
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert runtime.batches == [1, 6]
        assert all(isinstance(r, error) for r in results), results

    asyncio.run(_with_batcher(runtime, policy(), body))


def test_a_full_queue_refuses_at_once() -> None:
    runtime = GatedRuntime()

    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        queued = [asyncio.ensure_future(batcher.submit(rows(1, 0.0), HANG_GUARD_S)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(ResourceExhausted):
            await batcher.submit(rows(1, 0.0), HANG_GUARD_S)
        runtime.gate.set()
        await asyncio.gather(first, *queued)

    asyncio.run(_with_batcher(runtime, policy(queue=2), body))


def test_a_request_that_waits_too_long_gets_deadline_exceeded_and_leaves_the_queue() -> None:
    runtime = GatedRuntime()

    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(rows(1, 0.0), 0.01)
        runtime.gate.set()
        await first
        out = await batcher.submit(rows(2, 5.0), HANG_GUARD_S)
        np.testing.assert_array_equal(out["y"], rows(2, 5.0)["x"] * 2)
        assert runtime.batches == [1, 2]  # the abandoned request never ran

    asyncio.run(_with_batcher(runtime, policy(), body))


def test_stop_finishes_queued_work_then_refuses_new_requests() -> None:
    runtime = GatedRuntime()

    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        queued = asyncio.ensure_future(batcher.submit(rows(1, 3.0), HANG_GUARD_S))
        await asyncio.sleep(0)
        stopping = asyncio.ensure_future(batcher.stop(HANG_GUARD_S))
        await asyncio.sleep(0)
        with pytest.raises(Unavailable):
            await batcher.submit(rows(1, 0.0), HANG_GUARD_S)
        runtime.gate.set()
        await asyncio.gather(first, queued, stopping)
        np.testing.assert_array_equal(queued.result()["y"], rows(1, 3.0)["x"] * 2)

    asyncio.run(_with_batcher(runtime, policy(), body))


def test_a_lone_request_does_not_wait_for_company() -> None:
    """Sparse arrivals (the first request, or a single client) run at once instead of paying the delay."""
    runtime = GatedRuntime()
    runtime.gate.set()

    async def body(batcher: Batcher) -> float:
        started = asyncio.get_running_loop().time()
        out = await batcher.submit(rows(1, 7.0), HANG_GUARD_S)
        np.testing.assert_array_equal(out["y"], rows(1, 7.0)["x"] * 2)
        return asyncio.get_running_loop().time() - started

    slow = BatchingPolicy(8, 900_000, (), 1, 1, 100)  # a 0.9 s delay the lone request must not wait out
    assert asyncio.run(_with_batcher(runtime, slow, body)) < 0.45


def test_queued_rows_are_spread_over_idle_instances() -> None:
    """8 queued rows and 2 idle single-threaded sessions run as 4 + 4, not 8 on one while the other waits."""
    first, second = GatedRuntime(), GatedRuntime()
    first.gate.set()
    second.gate.set()

    async def body() -> None:
        with ThreadPoolExecutor(2) as pool:
            batcher = Batcher("test:1", policy(), [first, second], pool)
            batcher.start()
            try:
                inputs = [rows(1, float(i)) for i in range(8)]
                outs = await asyncio.wait_for(
                    asyncio.gather(*(batcher.submit(x, HANG_GUARD_S) for x in inputs)), HANG_GUARD_S
                )
                for x, out in zip(inputs, outs, strict=True):
                    np.testing.assert_array_equal(out["y"], x["x"] * 2)
            finally:
                await batcher.stop(HANG_GUARD_S)

    asyncio.run(body())
    assert first.batches == [4] and second.batches == [4]


def test_a_full_batch_is_handed_to_the_busy_instance_and_a_partial_one_stays_queued() -> None:
    """While the only instance is busy, a full batch goes into its lane, to run the moment the current run ends;
    a batch that is not full stays in the queue, where later requests can still join it."""
    runtime = GatedRuntime()

    async def body(batcher: Batcher) -> None:
        first = await _occupy(batcher, runtime)
        inputs = [rows(1, 10.0 * i) for i in range(5)]
        early = [asyncio.ensure_future(batcher.submit(x, HANG_GUARD_S)) for x in inputs[:3]]
        await asyncio.sleep(0)
        assert batcher.depth == 3  # 3 of 4 rows: waits for company
        late = [asyncio.ensure_future(batcher.submit(x, HANG_GUARD_S)) for x in inputs[3:]]
        await asyncio.sleep(0)
        assert batcher.depth == 1  # the first 4 rows are in the instance's lane; the fifth is queued
        runtime.gate.set()
        outs = await asyncio.gather(*early, *late)
        await first
        for x, out in zip(inputs, outs, strict=True):
            np.testing.assert_array_equal(out["y"], x["x"] * 2)
        assert runtime.batches == [1, 4, 1]

    asyncio.run(_with_batcher(runtime, policy(max_batch_size=4), body))
