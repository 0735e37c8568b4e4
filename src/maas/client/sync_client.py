"""Client: the synchronous facade of AsyncClient, running it on a private event-loop thread."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from maas.client.async_client import AsyncClient

T = TypeVar("T")


class Client:
    """Same verbs as `maas.Registry`, over HTTP. Use as a context manager or call `close()`."""

    def __init__(self, url: str = "http://127.0.0.1:8000", **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="maas-client", daemon=True)
        self._thread.start()
        self._async: AsyncClient = self._run(self._make(url, kwargs))

    @staticmethod
    async def _make(url: str, kwargs: dict[str, Any]) -> AsyncClient:
        return AsyncClient(url, **kwargs)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._async, name)
        if not asyncio.iscoroutinefunction(method):
            return method  # type: ignore[no-any-return]

        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._run(method(*args, **kwargs))

        return call

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._async.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
