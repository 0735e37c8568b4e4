"""One load per key at a time: callers asking for a version that is already loading await the same task, so a
burst of first requests (or a poll racing a request) never loads one model twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable, Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, start: Callable[[], Coroutine[Any, Any, V]], name: str = "") -> V:
        """The result of the task for `key`, starting it with `start()` unless one is in flight. Shielded: a
        caller that is cancelled leaves the load running for the others."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(start(), name=name or None)
            self._tasks[key] = task
            task.add_done_callback(lambda _t: self._tasks.pop(key, None))
        return await asyncio.shield(task)

    async def settle(self) -> None:
        """Wait for every load in flight to finish (successfully or not)."""
        for task in list(self._tasks.values()):
            await asyncio.gather(task, return_exceptions=True)

    def __contains__(self, key: object) -> bool:
        return key in self._tasks

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._tasks))
