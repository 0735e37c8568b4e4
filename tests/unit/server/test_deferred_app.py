"""DeferredApp: the lifespan and the health probes without the FastAPI app, which is built once, on demand or
when asked, and then answers everything else."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from maas.server.deferred_app import DeferredApp, deferred_app_of


class Plane:
    def __init__(self) -> None:
        self.is_ready = False

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.is_ready


class Recorder:
    """A stand-in for the FastAPI app: answers 200 with its path, and counts how often it was built."""

    builds = 0

    def __init__(self) -> None:
        Recorder.builds += 1
        self.state: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})


def make(events: list[str], fail: bool = False) -> tuple[DeferredApp, Plane]:
    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        events.append("start")
        if fail:
            raise RuntimeError("no models")
        yield
        events.append("stop")

    plane = Plane()
    Recorder.builds = 0
    return DeferredApp(Recorder, lifespan, plane), plane


async def get(app: DeferredApp, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path, "headers": []}, receive, send)
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, sent[1]["body"]


def test_health_is_answered_without_building_the_app() -> None:
    events: list[str] = []
    app, plane = make(events)

    async def run() -> None:
        status, headers, body = await get(app, "/v2/health/ready")
        assert (status, json.loads(body), headers["maas-error-code"]) == (503, {"error": "server is not ready"},
                                                                          "UNAVAILABLE")
        plane.is_ready = True
        status, headers, body = await get(app, "/v2/health/ready")
        assert (status, json.loads(body), headers["content-type"]) == (200, {"ready": True}, "application/json")
        assert int(headers["content-length"]) == len(body)
        assert json.loads((await get(app, "/v2/health/live"))[2]) == {"live": True}

    asyncio.run(run())
    assert Recorder.builds == 0 and app.app is None


def test_other_requests_wait_for_one_build_then_go_straight_to_it() -> None:
    app, _ = make([])

    async def run() -> None:
        answers = await asyncio.gather(*(get(app, f"/v2/models/m{i}") for i in range(5)))
        assert [a[2] for a in answers] == [f"/v2/models/m{i}".encode() for i in range(5)]
        assert (await get(app, "/v2/health/ready", method="POST"))[2] == b"/v2/health/ready"  # not GET: the app's
        app.build_soon()  # built already: nothing more
        await app.settle()

    asyncio.run(run())
    assert Recorder.builds == 1
    assert isinstance(app.app, Recorder) and app.app.state is app.state


def test_build_soon_builds_in_the_background() -> None:
    app, _ = make([])

    async def run() -> None:
        app.build_soon()
        await app.settle()

    asyncio.run(run())
    assert Recorder.builds == 1 and app.app is not None
    assert deferred_app_of(type("Layer", (), {"app": app})()) is app


def lifespan_messages(app: DeferredApp) -> list[dict[str, Any]]:
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await app({"type": "lifespan"}, receive, send)

    with suppress(RuntimeError):
        asyncio.run(run())
    return sent


def test_lifespan_protocol() -> None:
    events: list[str] = []
    app, _ = make(events)
    assert [m["type"] for m in lifespan_messages(app)] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert events == ["start", "stop"]


def test_a_failed_start_is_reported_to_the_server() -> None:
    app, _ = make([], fail=True)
    sent = lifespan_messages(app)
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"] and "no models" in sent[0]["message"]
