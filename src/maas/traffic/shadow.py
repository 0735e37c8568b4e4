"""The shadow queue: copies of requests (shadow traffic, a rollout's mirrored inputs) run here, apart from
the caller. Bounded: when it is full a copy is dropped and counted, never waited for, so a slow or failing
shadow can neither reach nor slow the caller."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class ShadowQueue:
    def __init__(self, max_size: int = 256, workers: int = 4) -> None:
        self._queue: asyncio.Queue[Job] = asyncio.Queue(max_size)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self.dropped = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._work(), name=f"shadow {i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def offer(self, job: Job) -> bool:
        """Queue `job`; False (and counted) when the queue is full or not running."""
        if not self._tasks:
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    async def _work(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await job()
            except Exception:  # a job reports its own outcome; this only keeps the worker alive
                log.exception("shadow request failed unexpectedly")
