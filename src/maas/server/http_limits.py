"""Limits applied where uvicorn reads the wire, before any ASGI code runs: the size and number of request
headers (431), the number of requests in flight on the process (429 from maas, replacing uvicorn's own
plain-text 503 "Exceeded concurrency limit", which had no request id and no access-log line), and overload
shedding of infer requests as soon as their headers are parsed (`early`, the edge's `shed_early`).

A refusal decided here is written to the socket at once, with maas's JSON body, the request id and an
access-log line, and no ASGI task, scope walk or layer runs for it; the body that follows is discarded as it
arrives and the connection stays usable (keep-alive). Under a 4,352-client burst that task-less path is what
keeps each refusal from costing the event loop as much as an answer (bench/README.md, "Overload").

Header bytes are counted as they arrive: httptools buffers a header until its end, so a 200 MiB header
grew the server by 277 MB before any callback could see it. Memory per connection stays within
`max_header_bytes` plus one read chunk.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import httptools
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from maas.server.access import ARRIVED, UNREAD, log_access, request_id

# (method, path, headers, seconds unread) -> (model, version, why) when the request is to be refused now.
EarlyShed = Callable[[str, str, list[tuple[bytes, bytes]], float], "tuple[str, str, str] | None"]
# Linux's struct tcp_info: the u32 tcpi_last_data_recv (ms since the last data segment arrived) at byte 52.
_TCP_INFO = getattr(socket, "TCP_INFO", None) if sys.platform == "linux" else None
_LAST_DATA_RECV = struct.Struct("=I")
_TICK_MS = 10  # the coarsest kernel tick (HZ=100)


def unread_s(sock: Any) -> float:
    """Seconds since the connection's latest data reached the kernel, read while that data is being parsed:
    how long the request waited in the socket buffer for the event loop (0 where the kernel cannot tell)."""
    if _TCP_INFO is None or sock is None:
        return 0.0
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, 104)
    except (OSError, AttributeError):
        return 0.0
    if len(info) < 56:
        return 0.0
    # The kernel counts in ticks (4 ms at HZ=250, 10 at HZ=100): data read at once can show a tick. The lower
    # bound of the true age is what may count against a request, so one 10 ms tick comes off.
    return max(0.0, (_LAST_DATA_RECV.unpack_from(info, 52)[0] - _TICK_MS) / 1e3)


class _TooManyHeaders(Exception):
    pass


def refusal_response(status: int, message: str, rid: str, close: bool = True,
                     extra: list[tuple[bytes, bytes]] | None = None) -> bytes:
    """A complete HTTP/1.1 response with maas's JSON error body and the request id."""
    body = json.dumps({"error": message}).encode()
    head = [STATUS_LINE[status], b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n", b"x-request-id: " + rid.encode() + b"\r\n"]
    head.extend(b"%s: %s\r\n" % (k, v) for k, v in extra or ())
    if close:
        head.append(b"connection: close\r\n")
    return b"".join([*head, b"\r\n", body])


class PassBudget:
    """How many refusals the protocol may still answer in this pass of the event loop over its sockets.

    libuv reads every ready socket (up to 48 × 1,024 events) before the loop runs its ready callbacks, where
    admitted requests move on (batch cut, result, answer). Refusals answered in the protocol run in that pass,
    so with no budget one pass took a whole burst's refusals (seconds) and admitted requests waited behind it
    in their batch queue (bench/README.md, "Overload"). Past the budget, refusals take the ASGI way (a task,
    run with the ready callbacks in turn); the budget refills when the loop next runs its callbacks."""

    def __init__(self, per_pass: int) -> None:
        self.per_pass = per_pass
        self.left = per_pass
        self._armed = False

    def open(self, loop: Any) -> bool:
        if not self._armed:
            self._armed = True
            loop.call_soon(self._refill)  # runs once this pass over the sockets is over
        return self.left > 0

    def spend(self) -> None:
        self.left -= 1

    def _refill(self) -> None:
        self.left, self._armed = self.per_pass, False


class _NoEvent:
    def set(self) -> None:
        pass


class _Answered:
    """Stands for uvicorn's request-response cycle of a request answered from the protocol: its response is
    complete, so uvicorn drops the body's bytes as they arrive and starts the next request normally."""

    response_complete = True
    disconnected = False
    message_event = _NoEvent()

    def __init__(self, keep_alive: bool) -> None:
        self.keep_alive = keep_alive


def limited_protocol(max_header_bytes: int, max_headers: int, max_in_flight: int,
                     early: EarlyShed | None = None, per_pass: int = 32) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with these limits (passed to `uvicorn.Config(http=...)`); `early` decides
    overload refusals from the method, path and headers alone, `per_pass` of them at most answered from the
    protocol per pass of the loop over its sockets (`PassBudget`)."""
    budget = PassBudget(per_pass)

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_open = True  # between requests and until a request's headers are complete
            self._head_bytes = 0
            self._header_count = 0
            self._started = 0.0
            self._sock: Any = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._sock = transport.get_extra_info("socket")

        def data_received(self, data: bytes) -> None:
            if self._head_open:
                self._head_bytes += len(data)
                if self._started == 0.0:
                    self._started = time.perf_counter()
            self._feed(data)

        def _feed(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            except httptools.HttpParserError as exc:
                if isinstance(exc.__context__, _TooManyHeaders):
                    return self._refuse_headers(f"more than {max_headers} request header fields")
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
                return
            if self._head_open and self._head_bytes > max_header_bytes:
                self._refuse_headers(f"request headers exceed {max_header_bytes} bytes")

        def _refuse_headers(self, message: str) -> None:
            rid = request_id(getattr(self, "headers", []))
            self.transport.write(refusal_response(431, message, rid))
            self.transport.close()
            log_access("rest", rid, "", "", "header_too_large", 431, self._started or time.perf_counter())

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._header_count = 0

        def on_header(self, name: bytes, value: bytes) -> None:
            self._header_count += 1
            if self._header_count > max_headers:
                raise _TooManyHeaders()
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._head_open = False
            self._head_bytes = 0
            started, self._started = self._started, 0.0
            started = started or time.perf_counter()
            self.scope[ARRIVED] = started  # type: ignore[literal-required]  # the access log's latency from here
            infer = self.parser.get_method() == b"POST" and self.url.startswith(b"/v2/models/")
            unread = unread_s(self._sock) if infer else 0.0
            if unread:
                self.scope[UNREAD] = unread  # type: ignore[literal-required]  # the infer route's check counts it
            idle = self.cycle is None or self.cycle.response_complete  # no earlier request still answering
            if idle and not (self.parser.should_upgrade() and self._should_upgrade()) and budget.open(self.loop):
                if len(self.tasks) >= max_in_flight:
                    budget.spend()
                    rid = request_id(self.headers)
                    message = f"server busy: {max_in_flight} requests in flight; retry later"
                    return self._answer(429, message, rid, "", "", started, [(b"retry-after", b"1")])
                if early is not None and infer:
                    shed = early("POST", _path_of(self.url), self.headers, unread)
                    if shed is not None:
                        budget.spend()
                        return self._answer(429, shed[2], request_id(self.headers), shed[0], shed[1], started)
            if len(self.tasks) >= max_in_flight:  # pipelined behind a request still answering: in its turn
                app = self.app
                self.app = _busy(max_in_flight, started)
                try:
                    super().on_headers_complete()
                finally:
                    self.app = app
                return
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._head_open = True
            if isinstance(self.cycle, _Answered):  # the refused request's body is gone: wait for the next one
                if not self.transport.is_closing():
                    self._unset_keepalive_if_required()
                    self.timeout_keep_alive_task = self.loop.call_later(
                        self.timeout_keep_alive, self.timeout_keep_alive_handler)
                return
            super().on_message_complete()

        def _answer(self, status: int, message: str, rid: str, model: str, version: str, started: float,
                    extra: list[tuple[bytes, bytes]] | None = None) -> None:
            """Refuse the request whose headers were just parsed: the response now, its body dropped as it
            comes, the connection kept when the client keeps it (closed after an `Expect: 100-continue`,
            whose body the client would otherwise never send)."""
            keep_alive = (self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
                          and not self.expect_100_continue)
            self.cycle = _Answered(keep_alive)  # type: ignore[assignment]
            response = refusal_response(status, message, rid, close=not keep_alive,
                                        extra=[*self.server_state.default_headers, *(extra or ())])
            self.transport.write(response)
            self.server_state.total_requests += 1
            if not keep_alive:
                self.transport.close()
            log_access("rest", rid, model, version, "resource_exhausted", status, started,
                       response_bytes=len(response) - response.index(b"\r\n\r\n") - 4)

    return LimitedHttpToolsProtocol


def _path_of(url: bytes) -> str:
    """The ASGI path of a request target, as uvicorn builds it."""
    path = httptools.parse_url(url).path.decode("ascii")
    return urllib.parse.unquote(path) if "%" in path else path


def _busy(limit: int, started: float) -> Any:
    async def refuse(scope: Scope, receive: Receive, send: Send) -> None:
        rid = request_id(scope["headers"])
        body = json.dumps({"error": f"server busy: {limit} requests in flight; retry later"}).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"x-request-id", rid.encode()), (b"retry-after", b"1")]})
        await send({"type": "http.response.body", "body": body})
        log_access("rest", rid, "", "", "resource_exhausted", 429, started or time.perf_counter())

    return refuse
