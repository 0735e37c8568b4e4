"""Limits applied where uvicorn reads the wire, before any ASGI code runs: the size and number of request
headers (431), and the number of requests in flight on the process (429 from maas, replacing uvicorn's own
plain-text 503 "Exceeded concurrency limit", which had no request id and no access-log line).

Header bytes are counted as they arrive: httptools buffers a header until its end, so a 200 MiB header
grew the server by 277 MB before any callback could see it. Memory per connection stays within
`max_header_bytes` plus one read chunk.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httptools
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from maas.server.access import log_access, request_id


class _TooManyHeaders(Exception):
    pass


def refusal_response(status: int, message: str, rid: str, close: bool = True) -> bytes:
    """A complete HTTP/1.1 response with maas's JSON error body and the request id."""
    body = json.dumps({"error": message}).encode()
    head = [STATUS_LINE[status], b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n", b"x-request-id: " + rid.encode() + b"\r\n"]
    if close:
        head.append(b"connection: close\r\n")
    return b"".join([*head, b"\r\n", body])


def limited_protocol(max_header_bytes: int, max_headers: int, max_in_flight: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with these limits (passed to `uvicorn.Config(http=...)`)."""

    class LimitedHttpToolsProtocol(HttpToolsProtocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._head_open = True  # between requests and until a request's headers are complete
            self._head_bytes = 0
            self._header_count = 0
            self._started = 0.0

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
            if len(self.tasks) >= max_in_flight:
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
            super().on_message_complete()

    return LimitedHttpToolsProtocol


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
