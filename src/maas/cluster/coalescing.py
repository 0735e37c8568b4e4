"""Requests for one deployment sent together: at most `max_calls` handle calls in flight from this ingress, and
whatever arrives meanwhile goes in the next call, as one list. No Ray import here (the send is handed in).

Why: a Ray Serve handle call costs ~3 ms of CPU on each side here (the router, the actor task, the replica's
request bookkeeping), 6-15x what a whole small request costs in one process (docs/scaling.md). Bounding the calls
in flight turns that cost into one per group: the busier the replica, the more requests wait, the larger the next
group, as maas's batcher grows its batches with the queue. Below the bound each request is its own call and
waits for nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from maas.errors import DeadlineExceeded, Internal

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class _Waiting(Generic[Item, Result]):
    item: Item
    deadline: float  # monotonic; a request whose deadline passes while it waits is answered here
    future: asyncio.Future[Result] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Coalescer(Generic[Item, Result]):
    """`send(items)` makes one call and returns one result per item, in order; an exception it raises is every
    item's (each caller decides whether to retry, as after a call of its own). `prepare(item, seconds_left)`
    runs on each item as its group leaves (the data plane sets the request's remaining timeout)."""

    def __init__(
        self, send: Callable[[list[Item]], Awaitable[list[Result]]], max_calls: int, max_group: int = 64,
        prepare: Callable[[Item, float], None] | None = None,
    ) -> None:
        if max_calls < 1 or max_group < 1:
            raise ValueError("max_calls and max_group must be at least 1")
        self.send, self.max_calls, self.max_group, self.prepare = send, max_calls, max_group, prepare
        self.calls = 0  # in flight now
        self._waiting: deque[_Waiting[Item, Result]] = deque()
        self.sent_calls = self.sent_items = 0  # totals: their ratio is the mean group size
        self._tasks: set[asyncio.Task[None]] = set()  # the calls in flight, held so that none is collected

    def waiting(self) -> int:
        return len(self._waiting)

    async def submit(self, item: Item, timeout_s: float) -> Result:
        entry: _Waiting[Item, Result] = _Waiting(item, time.monotonic() + timeout_s)
        self._waiting.append(entry)
        self._pump()
        return await entry.future  # a caller that is cancelled leaves its entry done: skipped when cut

    def _pump(self) -> None:
        while self._waiting and self.calls < self.max_calls:
            group: list[_Waiting[Item, Result]] = []
            now = time.monotonic()
            while self._waiting and len(group) < self.max_group:
                entry = self._waiting.popleft()
                if entry.future.done():  # cancelled while waiting
                    continue
                left = entry.deadline - now
                if left <= 0:
                    entry.future.set_exception(DeadlineExceeded("the request timed out before it was sent"))
                    continue
                if self.prepare is not None:
                    self.prepare(entry.item, left)
                group.append(entry)
            if group:
                self.calls += 1
                self.sent_calls += 1
                self.sent_items += len(group)
                task = asyncio.get_running_loop().create_task(self._call(group))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _call(self, group: list[_Waiting[Item, Result]]) -> None:
        try:
            results = await self.send([e.item for e in group])
            if len(results) != len(group):
                raise Internal(f"a grouped call returned {len(results)} results for {len(group)} requests")
        except asyncio.CancelledError:  # the loop is closing: so are its callers
            for e in group:
                e.future.cancel()
            raise
        except Exception as exc:  # handed to every caller of the group, raised there
            for e in group:
                if not e.future.done():
                    e.future.set_exception(exc)
        else:
            for e, result in zip(group, results, strict=True):
                if not e.future.done():
                    e.future.set_result(result)
        finally:
            self.calls -= 1
            self._pump()
