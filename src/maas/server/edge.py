"""The REST edge: one thin ASGI layer in front of every HTTP route, the fast infer path included. It owns the
request id (the client's `X-Request-ID`, else a generated one, echoed on every response), the declared-size
limit and the access log; the cross-cutting layers (auth and rate limits, the path and cross-site guards,
control-body limits) are handed to `build_edge`, so no route can skip them.

`POST /v2/models/{name}[/versions/{version}]/infer` is dispatched here to `InferEndpoint`, the one
implementation of that route: it skips FastAPI's routing, dependency and middleware layers (a third of the CPU
per request in the profile). Everything else goes to the FastAPI app.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas.protocol import rest_codec
from maas.server.access import EXCHANGE, Exchange, log_access, request_id
from maas.server.auth import OPEN_PATHS, principal_of
from maas.server.infer_route import InferEndpoint

# Not logged: probes and scrapes arrive every few seconds and say nothing about traffic.
UNLOGGED_PATHS = OPEN_PATHS | {"/metrics"}


class Edge:
    """Request id, size limit and access log around `app` (the other layers and the dispatch below it)."""

    def __init__(self, app: ASGIApp, max_request_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        content_length = None
        for key, value in headers:
            if key == b"content-length":
                content_length = value
                break
        exchange = Exchange(request_id(headers), started, content_length)
        scope[EXCHANGE] = exchange
        rid = exchange.request_id.encode()
        status = received = sent = 0  # no response started, no body byte read or written

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []), (b"x-request-id", rid)]}
            else:
                sent += len(message.get("body", b""))
            await send(message)

        path: str = scope["path"]
        refusal = self._over_limit(path, content_length)
        if refusal is not None:
            await _send_json(send_with_id, 413, refusal)
            exchange.outcome = "invalid_argument"
        else:
            await self.app(scope, receive_counted, send_with_id)
        if path not in UNLOGGED_PATHS:
            if not status:
                status = 499 if exchange.outcome == "client_gone" else 500
            outcome = exchange.outcome or _outcome_of(status)
            principal = principal_of(scope)
            log_access("rest", exchange.request_id, exchange.model, exchange.version, outcome, status, started,
                       key=principal.key_id if principal is not None else "", request_bytes=received,
                       response_bytes=sent)

    def _over_limit(self, path: str, content_length: bytes | None) -> str | None:
        """A body declared larger than the route may take is refused before a byte of it is read."""
        if content_length is None or not content_length.isdigit():
            return None  # absent (chunked) or malformed: the body reader counts and refuses
        upload = path.startswith("/api/v1/")
        limit = self.max_upload_bytes if upload else self.max_request_bytes
        if int(content_length) <= limit:
            return None
        setting = "MAAS_MAX_UPLOAD_BYTES" if upload else "MAAS_MAX_REQUEST_BYTES"
        return (f"request body of {content_length.decode()} bytes exceeds the limit of {limit} bytes "
                f"set by {setting}")


class Dispatch:
    """The v2 infer route to `InferEndpoint`, every other request to the FastAPI app."""

    def __init__(self, app: ASGIApp, infer: InferEndpoint) -> None:
        self.app = app
        self.infer = infer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = self.infer.match(scope)
            if match is not None:
                return await self.infer(scope, receive, send, match)
        await self.app(scope, receive, send)


def build_edge(app: ASGIApp, infer: InferEndpoint, *, layers: Sequence[Callable[[ASGIApp], ASGIApp]] = (),
               max_request_bytes: int, max_upload_bytes: int) -> Edge:
    """The layers every HTTP request passes, outermost first: edge (id, limit, log), then `layers` in order
    (auth, guards, limits), then the dispatch to the infer route or the FastAPI app."""
    inner: ASGIApp = Dispatch(app, infer)
    for layer in reversed(layers):
        inner = layer(inner)
    return Edge(inner, max_request_bytes, max_upload_bytes)


def _outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    return {401: "unauthenticated", 403: "permission_denied", 404: "not_found", 409: "failed_precondition",
            413: "invalid_argument", 429: "resource_exhausted", 503: "unavailable", 504: "deadline_exceeded"}.get(
        status, "invalid_argument" if status < 500 else "internal")


async def _send_json(send: Send, status: int, message: str) -> None:
    body = rest_codec.dumps({"error": message})
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
