"""The innermost layer of the REST edge: the server's lifespan, the two health probes, and the FastAPI app with
every other route (control API, v2 metadata and repository, v1, OpenAI, console, docs, /metrics), which is built
after the server is ready instead of before it.

Why (issue #19, start to ready): importing FastAPI and the routes' modules and building ~150 routes' pydantic
models was most of what `maas serve` spent between the data plane's imports and its first ready answer, and
serving needs none of it: the infer route is answered by the edge (`InferEndpoint`, before this layer), the
health probes here, and gRPC has its own server.

Where it is built: in a worker thread, started by `maas serve` as soon as both listeners accept
(`_Server.startup` in main.py calls `build_soon`), so the build overlaps nothing that readiness waits for.
A request for any other route that arrives before the build has finished waits for that one build (and starts
it, when nobody has: an app driven without `maas serve`'s uvicorn server); once built, every request goes
straight to it. The infer route and the health probes never wait for it. The lifespan (models, gRPC, jobs, the
monitoring threads) is run here rather than by FastAPI, so it does not wait for the routes either.
"""

from __future__ import annotations

import asyncio
import threading
import traceback
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from starlette.datastructures import State
from starlette.types import ASGIApp, Receive, Scope, Send

from maas.errors import MaasError, Unavailable
from maas.protocol import rest_codec
from maas.server.errors import ERROR_CODE_HEADER, status_of
from maas.server.errors import log as errors_log

HEALTH_PATHS = ("/v2/health/live", "/v2/health/ready")


def health(dataplane: Any, path: str) -> bytes:
    """The body of a health probe's answer (`/v2/health/live` or `/ready`); Unavailable when it is not."""
    if path == "/v2/health/live":
        if not dataplane.live():
            raise Unavailable("server is not live")
        return rest_codec.dumps({"live": True})
    if not dataplane.ready():
        raise Unavailable("server is not ready")
    return rest_codec.dumps({"ready": True})


class DeferredApp:
    """`build()` (blocking: run in a worker thread) returns the FastAPI app; `lifespan()` is the server's lifespan.
    `state` is the app's `state` (the FastAPI app is given this one object once built)."""

    def __init__(self, build: Callable[[], ASGIApp], lifespan: Callable[[], AbstractAsyncContextManager[None]],
                 dataplane: Any) -> None:
        self.state = State()
        self.dataplane = dataplane
        self._build = build
        self._lifespan = lifespan
        self._app: ASGIApp | None = None
        self._building: asyncio.Future[ASGIApp] | None = None
        self._lock = threading.Lock()

    @property
    def app(self) -> ASGIApp | None:
        """The FastAPI app once built (None before): the last of the edge's `.app` chain."""
        return self._app

    def build_soon(self) -> None:
        """Start building the app in a worker thread, unless started already (on the event loop's thread)."""
        if self._building is None:
            self._building = asyncio.ensure_future(asyncio.to_thread(self._build_once))

    def _build_once(self) -> ASGIApp:
        with self._lock:
            if self._app is None:
                app = self._build()
                app.state = self.state  # type: ignore[attr-defined]
                self._app = app
            return self._app

    async def built(self) -> ASGIApp:
        """The app, waiting for its build (started now if it was not)."""
        if self._app is not None:
            return self._app
        self.build_soon()
        assert self._building is not None
        return await asyncio.shield(self._building)

    async def settle(self) -> None:
        """Wait for a build in progress (at shutdown: what it made is then closed with the rest)."""
        if self._building is not None:
            await asyncio.gather(self._building, return_exceptions=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http" and scope["method"] == "GET" and scope["path"] in HEALTH_PATHS:
            return await self._health(scope["path"], send)
        if kind == "lifespan":
            return await self._run_lifespan(receive, send)
        app = self._app if self._app is not None else await self.built()
        await app(scope, receive, send)

    async def _health(self, path: str, send: Send) -> None:
        headers = [(b"content-type", b"application/json")]
        try:
            status, body = 200, health(self.dataplane, path)
        except MaasError as exc:  # as errors.install's handler answers it on every other route
            status = status_of(exc)
            errors_log.error("%s: %s", exc.code, exc.message)
            body = rest_codec.dumps({"error": exc.message})
            headers.append((ERROR_CODE_HEADER.encode(), exc.code.value.encode()))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(body)).encode()), *headers]})
        await send({"type": "http.response.body", "body": body})

    async def _run_lifespan(self, receive: Receive, send: Send) -> None:
        """ASGI's lifespan protocol around `lifespan()`, as Starlette's router runs a lifespan."""
        started = False
        await receive()  # lifespan.startup
        try:
            async with self._lifespan():
                await send({"type": "lifespan.startup.complete"})
                started = True
                await receive()  # lifespan.shutdown
        except BaseException:
            text = traceback.format_exc()
            await send({"type": "lifespan.shutdown.failed" if started else "lifespan.startup.failed",
                        "message": text})
            raise
        await send({"type": "lifespan.shutdown.complete"})


def deferred_app_of(app: Any) -> DeferredApp | None:
    """The DeferredApp at the end of an edge's `.app` chain, if any."""
    while app is not None and not isinstance(app, DeferredApp):
        app = getattr(app, "app", None)
    return app
