"""The REST edge: one ASGI layer in front of every HTTP route. It owns the request id (the client's
`X-Request-ID`, else a generated one, echoed on every response), the declared-size limit and the access log,
and builds the cross-cutting layers behind it itself (console sessions, auth and rate limits, the path and
cross-site guards, control-body limits), in one fixed order, so no route can skip them.

`POST /v2/models/{name}[/versions/{version}]/infer` is decided here once and, unless it carries a cookie,
sent straight to `InferEndpoint` (the one implementation of that route) after the checks that apply to it,
made inline: the size limit, auth and the path guard. The others cannot apply to that path: the console gate
acts only on a request with its cookie (such a request takes the layered way), and the cross-site guard and
control-body limit cover `/api/`, `/console/` and `/v2/repository/` (checked when the edge is built). Six
nested layers with a wrapper around every message had cost 130 µs of CPU per tiny-model request; the route
sends the request id and counts its bytes itself. Everything else goes through the layers to FastAPI.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas.errors import MaasError
from maas.protocol import rest_codec
from maas.security import AuditLog
from maas.server.access import ARRIVED, EXCHANGE, REQUEST_ID, Exchange, log_access, request_id
from maas.server.auth import OPEN_PATHS, AuthMiddleware, RestAuth, error_messages, principal_of
from maas.server.body_limits import ControlBodyLimit
from maas.server.cross_site import CrossSiteGuard
from maas.server.infer_route import InferEndpoint
from maas.server.path_guard import PathGuard

# Not logged: probes and scrapes arrive every few seconds and say nothing about traffic.
UNLOGGED_PATHS = OPEN_PATHS | {"/metrics"}
INFER_PREFIX = "/v2/models/"  # every path `InferEndpoint.match` accepts starts so


class Edge:
    """Request id, size limit and access log around `app` (the layers and the dispatch below it); the infer
    route's own checks for its direct way (see the module's docstring)."""

    def __init__(self, app: ASGIApp, infer: InferEndpoint, auth: RestAuth, max_request_bytes: int,
                 max_upload_bytes: int) -> None:
        self.app = app
        self.infer = infer
        self.auth = auth
        self.max_request_bytes = max_request_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = scope.get(ARRIVED) or time.perf_counter()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        content_length = None
        cookie = False
        for key, value in headers:
            if key == b"content-length":
                if content_length is None:
                    content_length = value
            elif key == b"cookie":
                cookie = True
        exchange = Exchange(request_id(headers), started, content_length)
        scope[EXCHANGE] = exchange
        path: str = scope["path"]
        match = None if cookie else self.infer.match(scope)
        if match is not None and path.isprintable():  # else the path guard's 400, on the layered way
            await self._infer(scope, receive, send, match, exchange)
        else:
            await self._layered(scope, receive, send, exchange)
        if path not in UNLOGGED_PATHS:
            status = exchange.status or (499 if exchange.outcome == "client_gone" else 500)
            principal = principal_of(scope)
            log_access("rest", exchange.request_id, exchange.model, exchange.version,
                       exchange.outcome or _outcome_of(status), status, started,
                       key=principal.key_id if principal is not None else "",
                       request_bytes=exchange.request_bytes, response_bytes=exchange.response_bytes)

    async def _infer(self, scope: Scope, receive: Receive, send: Send, match: object,
                     exchange: Exchange) -> None:
        """The infer route's checks, in the layers' order, then the route itself (no wrappers: it sends the
        request id and records its status and sizes on `exchange`)."""
        rid = (REQUEST_ID, exchange.request_id.encode())
        refusal = self._over_limit(scope["path"], exchange.content_length)
        if refusal is not None:
            exchange.status, exchange.outcome = 413, "invalid_argument"
            exchange.response_bytes = await _send_json(send, 413, refusal, rid)
            return
        try:
            principal = await self.auth(scope["method"], scope["path"], scope.get("query_string", b""),
                                        scope["headers"])
        except MaasError as exc:  # AuthMiddleware's answer; no audit: an infer request changes no control plane
            status, extra, body = error_messages(exc)
            exchange.status, exchange.response_bytes = status, len(body)
            await send({"type": "http.response.start", "status": status, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra, rid]})
            await send({"type": "http.response.body", "body": body})
            return
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
        await self.infer(scope, receive, send, match)  # type: ignore[arg-type]

    async def _layered(self, scope: Scope, receive: Receive, send: Send, exchange: Exchange) -> None:
        rid = exchange.request_id.encode()

        async def receive_counted() -> Message:
            message = await receive()
            exchange.request_bytes += len(message.get("body", b""))
            return message

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                if not exchange.status:  # set already: the infer route sent the id itself
                    exchange.status = message["status"]
                    message = {**message, "headers": [*message.get("headers", []), (REQUEST_ID, rid)]}
            else:
                exchange.response_bytes += len(message.get("body", b""))
            await send(message)

        refusal = self._over_limit(scope["path"], exchange.content_length)
        if refusal is not None:
            await _send_json(send_with_id, 413, refusal)
            exchange.outcome = "invalid_argument"
        else:
            await self.app(scope, receive_counted, send_with_id)

    def shed_early(self, method: str, path: str, headers: list[tuple[bytes, bytes]],
                   unread_s: float = 0.0) -> tuple[str, str, str] | None:
        """For the HTTP protocol, as soon as a request's headers are parsed (http_limits.py): (model, version,
        why) when it is an infer request that its route would refuse for overload (`InferEndpoint.shed`, with
        `unread_s`, the time it waited unread in the socket buffer) and nothing on its way would answer first:
        no cookie (the console gate), a body within the size limit (the 413), and a server that needs no key
        (with keys, auth answers first: a caller without one learns nothing of the queues). None otherwise:
        the request then takes its usual way."""
        if method != "POST" or not path.startswith(INFER_PREFIX) or not self.auth.authorizer.open_now:
            return None
        content_length = None
        for key, value in headers:
            if key == b"cookie":
                return None
            if key == b"content-length" and content_length is None:
                content_length = value
        match = self.infer.match({"type": "http", "method": method, "path": path})
        if match is None or not path.isprintable() or self._over_limit(path, content_length) is not None:
            return None
        name, version = match.group(1), match.group(2)
        why = self.infer.shed(name, version, unread_s)
        return (name, version or "", why) if why is not None else None

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
    """The v2 infer route to `InferEndpoint`, every other request to the FastAPI app (the layered way's end)."""

    def __init__(self, app: ASGIApp, infer: InferEndpoint) -> None:
        self.app = app
        self.infer = infer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            match = self.infer.match(scope)
            if match is not None:
                return await self.infer(scope, receive, send, match)
        await self.app(scope, receive, send)


def build_edge(app: ASGIApp, infer: InferEndpoint, *, console: Callable[[ASGIApp], ASGIApp], auth: RestAuth,
               audit: AuditLog | None, max_control_body_bytes: int, max_request_bytes: int,
               max_upload_bytes: int) -> Edge:
    """Every HTTP request passes, outermost first: the edge (id, limit, log), the console gate (a session's
    cookie -> its key, and its CSRF check), auth (and the audit of changes), the path guard, the cross-site
    guard, the control-body limit, then the dispatch to the infer route or the FastAPI app."""
    limit = ControlBodyLimit(Dispatch(app, infer), limit=max_control_body_bytes)
    guard = CrossSiteGuard(limit)
    covered = (*guard.prefixes, *guard.origin_only, *limit.prefixes)
    if any(p.startswith(INFER_PREFIX) or INFER_PREFIX.startswith(p) for p in covered):
        raise ValueError(f"the infer route's direct way skips layers that would cover it: {covered}")
    layered = console(AuthMiddleware(PathGuard(guard), auth=auth, audit=audit))
    return Edge(layered, infer, auth, max_request_bytes, max_upload_bytes)


def _outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    return {401: "unauthenticated", 403: "permission_denied", 404: "not_found", 409: "failed_precondition",
            413: "invalid_argument", 429: "resource_exhausted", 503: "unavailable", 504: "deadline_exceeded"}.get(
        status, "invalid_argument" if status < 500 else "internal")


async def _send_json(send: Send, status: int, message: str, *extra: tuple[bytes, bytes]) -> int:
    """Sends a JSON error; returns the body's size."""
    body = rest_codec.dumps({"error": message})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return len(body)
