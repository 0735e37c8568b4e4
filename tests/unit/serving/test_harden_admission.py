"""Admission by expected wait: once a batch's service time is known, a request whose wait (the batches ahead
of it × that time) would pass its deadline or the maximum queue wait is refused at once, not queued."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from maas.errors import ResourceExhausted
from maas.serving.batcher import Batcher
from maas.serving.options import BatchingPolicy, ServingOptions
from maas.types import TensorSpec

SERVICE_S = 0.06


class SlowRuntime:
    """Takes at least SERVICE_S per batch, so the measured service time is known from below."""

    inputs = (TensorSpec("x", "FP32", (-1, 2)),)
    outputs = (TensorSpec("y", "FP32", (-1, 2)),)

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        time.sleep(SERVICE_S)
        return {"y": inputs["x"] + 1}

    def close(self) -> None:
        pass


def one_row() -> dict[str, np.ndarray]:
    return {"x": np.ones((1, 2), np.float32)}


@pytest.mark.parametrize("max_wait_s,timeout_s,why", [(0.1, 30.0, "maximum queue wait"), (30.0, 0.03, "deadline")])
def test_a_request_expected_to_wait_too_long_is_refused_at_once(max_wait_s: float, timeout_s: float,
                                                                why: str) -> None:
    policy = BatchingPolicy(1, 0, (), 1, 1, 100, max_queue_wait_s=max_wait_s)

    async def body() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher("slow:1", policy, [SlowRuntime()], pool)
            batcher.start()
            assert batcher.expected_wait() == 0.0  # nothing measured: admitted on count alone
            await batcher.submit(one_row(), 30.0)
            assert batcher.expected_wait() == 0.0  # idle, empty queue: no wait
            running = asyncio.ensure_future(batcher.submit(one_row(), 30.0))
            await asyncio.sleep(0)
            assert batcher.expected_wait() >= SERVICE_S  # behind the running batch
            second = asyncio.ensure_future(batcher.submit(one_row(), timeout_s if why == "maximum queue wait"
                                                          else 30.0))
            await asyncio.sleep(0)
            started, depth = time.monotonic(), batcher.depth
            with pytest.raises(ResourceExhausted, match=why):
                await batcher.submit(one_row(), timeout_s)
            assert time.monotonic() - started < SERVICE_S  # refused without waiting for anything
            assert batcher.depth == depth  # the refused request never joined the queue
            await asyncio.gather(running, second)
            await batcher.stop(10)

    asyncio.run(body())


def test_the_bound_is_a_setting() -> None:
    from maas.config import Settings

    assert Settings(max_queue_wait_ms=250).max_queue_wait_ms == 250
    with pytest.raises(Exception, match="max_queue_wait_s"):
        ServingOptions(max_queue_wait_s=0)


def test_a_queue_whose_head_has_waited_too_long_refuses_however_fast_its_batches() -> None:
    """A saturated event loop (a burst of clients) delays every turn a queued request needs, which the service
    time of a batch does not show: the head's wait so far bounds what a newcomer would wait."""
    policy = BatchingPolicy(1, 0, (), 1, 1, 100, max_queue_wait_s=0.05)

    class FastRuntime(SlowRuntime):
        def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            time.sleep(0.005)
            return {"y": inputs["x"] + 1}

    async def body() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher("fast:1", policy, [FastRuntime()], pool)
            batcher.start()
            await batcher.submit(one_row(), 30.0)  # a service time of ~5 ms is measured
            running = asyncio.ensure_future(batcher.submit(one_row(), 30.0))
            await asyncio.sleep(0)
            chained = asyncio.ensure_future(batcher.submit(one_row(), 30.0))  # handed to the busy instance
            await asyncio.sleep(0)
            queued = asyncio.ensure_future(batcher.submit(one_row(), 30.0))
            await asyncio.sleep(0)
            assert batcher.depth == 1
            time.sleep(0.1)  # the loop is busy elsewhere: the queued head waits, whatever its batches take
            with pytest.raises(ResourceExhausted, match="maximum queue wait"):
                await batcher.submit(one_row(), 30.0)
            assert batcher.overloaded() is not None  # the transports' check before a body is read agrees
            await asyncio.gather(running, chained, queued)
            assert batcher.overloaded() is None  # drained: admitted again
            await batcher.stop(10)

    asyncio.run(body())


def test_time_spent_unread_in_the_socket_buffer_counts_against_the_maximum_queue_wait() -> None:
    """A request the event loop read late (a burst waits in the kernel's socket buffers) has spent part of its
    wait already: the protocol passes that time (`unread_s`) to the check made before the body is read. It counts
    only with work ahead: an idle instance with an empty queue serves a late request at once."""
    policy = BatchingPolicy(1, 0, (), 1, 1, 100, max_queue_wait_s=0.05)

    async def body() -> None:
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher("idle:1", policy, [SlowRuntime()], pool)
            batcher.start()
            assert batcher.overloaded() is None and batcher.overloaded(0.04) is None
            assert batcher.overloaded(0.06) is None  # idle, nothing ahead: it would start at once
            running = asyncio.ensure_future(batcher.submit(one_row(), 30.0))
            await asyncio.sleep(0)  # its batch holds the one instance
            assert batcher.overloaded(0.04) is None
            why = batcher.overloaded(0.06)
            assert why is not None and "60 ms unread" in why and "maximum queue wait (50 ms)" in why
            await running
            assert batcher.overloaded(0.06) is None  # drained: idle again
            await batcher.stop(10)

    asyncio.run(body())
