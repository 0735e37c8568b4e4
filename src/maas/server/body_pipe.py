"""A request body handed from the event loop to a worker thread as it arrives, with back-pressure: the loop
waits (without polling) while the thread is `depth` chunks behind, and stops feeding once the thread is done.

Used where a body streams into blocking storage (a resumable upload's piece into the blob store), so that
neither the whole body is held in memory nor the loop blocks on disk or encryption.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect

T = TypeVar("T")
# Bodies stream for as long as their clients take: on asyncio's default executor (6 threads on 2 cores) a few
# slow uploads would hold up everything else queued there (the audit log's writes, for one).
_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="maas-body")


class BodyPipe:
    def __init__(self, loop: asyncio.AbstractEventLoop, depth: int = 16) -> None:
        self._loop = loop
        self._depth = depth
        self._items: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._space = asyncio.Event()

    def chunks(self) -> Iterator[bytes]:
        """The consumer's side (a worker thread): chunks until the producer closes the pipe."""
        while True:
            with self._cond:
                while not self._items and not self._closed:
                    self._cond.wait()
                if not self._items:
                    return
                item = self._items.popleft()
            self._loop.call_soon_threadsafe(self._space.set)
            yield item

    async def put(self, item: bytes, consumer: asyncio.Future[Any]) -> bool:
        """Queue one chunk; False when the consumer has finished and wants no more."""
        while True:
            self._space.clear()
            if consumer.done():
                return False
            if len(self._items) < self._depth:
                break
            space: asyncio.Future[Any] = asyncio.ensure_future(self._space.wait())
            try:
                await asyncio.wait({space, consumer}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                space.cancel()
        with self._cond:
            self._items.append(item)
            self._cond.notify()
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()


async def feed_thread(body: AsyncIterable[bytes], work: Callable[[Iterator[bytes]], T]) -> tuple[T, bool]:
    """Run `work(chunks)` in a thread while `body` streams into it; returns its result and whether the
    client went away before the body ended (the chunks then end where the body broke off)."""
    loop = asyncio.get_running_loop()
    pipe = BodyPipe(loop)
    consumer: asyncio.Future[T] = loop.run_in_executor(_POOL, work, pipe.chunks())
    broken = False
    try:
        async for chunk in body:
            if chunk and not await pipe.put(chunk, consumer):
                break
    except ClientDisconnect:
        broken = True
    finally:
        pipe.close()
    return await consumer, broken
