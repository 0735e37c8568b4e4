"""The ingress's coalescer: calls in flight bounded, waiting requests sent together, failures and deadlines."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import pytest

from maas.cluster.coalescing import Coalescer
from maas.errors import DeadlineExceeded, Internal


def run(test: Callable[[], Awaitable[None]]) -> Callable[[], None]:
    """The test's body on a fresh event loop (the project's tests call asyncio.run, no async plugin)."""

    @functools.wraps(test)
    def wrapper() -> None:
        asyncio.run(test())  # type: ignore[arg-type]

    return wrapper


class Replica:
    """A `send` that answers each call when released, recording the groups it was given."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.release = asyncio.Event()

    async def send(self, items: list[int]) -> list[int]:
        self.groups.append(list(items))
        await self.release.wait()
        return [i * 10 for i in items]


@run
async def test_below_the_bound_each_request_is_its_own_call() -> None:
    replica = Replica()
    replica.release.set()
    calls = Coalescer(replica.send, max_calls=4)
    assert await asyncio.gather(*(calls.submit(i, 5) for i in range(3))) == [0, 10, 20]
    assert replica.groups == [[0], [1], [2]]


@run
async def test_requests_beyond_the_bound_wait_and_go_together() -> None:
    replica = Replica()
    calls = Coalescer(replica.send, max_calls=2, max_group=4)
    tasks = [asyncio.create_task(calls.submit(i, 5)) for i in range(8)]
    for _ in range(3):  # the submits, then the two calls they started
        await asyncio.sleep(0)
    assert replica.groups == [[0], [1]] and calls.waiting() == 6
    replica.release.set()
    assert await asyncio.gather(*tasks) == [i * 10 for i in range(8)]
    assert replica.groups == [[0], [1], [2, 3, 4, 5], [6, 7]]  # the group bound splits what waited
    assert (calls.sent_calls, calls.sent_items, calls.calls) == (4, 8, 0)


@run
async def test_a_failed_call_fails_each_of_its_requests_and_the_next_call_still_goes() -> None:
    attempts: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        attempts.append(items)
        await asyncio.sleep(0)
        if len(attempts) == 1:
            raise ConnectionError("replica lost")
        return items

    calls = Coalescer(send, max_calls=1)
    results = await asyncio.gather(*(calls.submit(i, 5) for i in range(3)), return_exceptions=True)
    assert isinstance(results[0], ConnectionError) and results[1:] == [1, 2]
    assert attempts == [[0], [1, 2]]


@run
async def test_a_short_answer_is_an_internal_error_for_the_whole_group() -> None:
    async def send(items: list[int]) -> list[int]:
        return items[:1]

    calls = Coalescer(send, max_calls=1)
    first = asyncio.create_task(calls.submit(0, 5))
    rest = [asyncio.create_task(calls.submit(i, 5)) for i in (1, 2)]
    assert await first == 0
    for task in rest:
        with pytest.raises(Internal, match="returned 1 results for 2 requests"):
            await task


@run
async def test_deadline_passed_while_waiting_and_cancelled_waiters_are_not_sent() -> None:
    replica = Replica()
    seen: list[tuple[int, float]] = []
    calls = Coalescer(replica.send, max_calls=1, prepare=lambda item, left: seen.append((item, left)))
    first = asyncio.create_task(calls.submit(0, 5))
    late = asyncio.create_task(calls.submit(1, 0.01))
    gone = asyncio.create_task(calls.submit(2, 5))
    kept = asyncio.create_task(calls.submit(3, 5))
    await asyncio.sleep(0.05)
    gone.cancel()
    replica.release.set()
    assert await first == 0 and await kept == 30
    with pytest.raises(DeadlineExceeded):
        await late
    assert replica.groups == [[0], [3]]
    assert [item for item, _ in seen] == [0, 3] and 4.9 < seen[1][1] < 5  # the time left, as the group left


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Coalescer(Replica().send, max_calls=0)
