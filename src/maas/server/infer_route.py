"""The v2 infer route, the only implementation of `POST /v2/models/{name}[/versions/{version}]/infer`: a plain
ASGI endpoint that the edge (edge.py) calls after the checks that apply to it, skipping FastAPI.

Errors are `{"error": message}` with the status from `errors.status_of`; the model, the version actually served
(or resolved, when the request failed), the outcome, the status and both body sizes go on the request's
`Exchange` for the access log, and the answer carries its request id (sent here, so that the edge needs no
wrapper around the messages). Every answer names the version that served it (`x-model-version`: a traffic
split may have chosen it).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Iterator, Mapping

from starlette.types import Receive, Scope, Send

from maas.errors import MaasError, ResourceExhausted
from maas.monitor.tracing import current as tracing_current
from maas.numbers import is_ascii_int
from maas.protocol import rest_codec
from maas.server.access import REQUEST_ID, UNREAD, Exchange, exchange_of, request_id
from maas.server.auth import OPEN_PATHS
from maas.server.body import ClientGone, read_asgi_body
from maas.server.errors import status_of
from maas.serving.contract import DataPlane, InferenceRequest

log = logging.getLogger(__name__)

INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
# JSON at least this large is parsed (or written) off the event loop; below it the thread hop costs more than it
# saves. Binary tensors are never the reason: they are read in place and written with one copy.
OFFLOAD_BYTES = 256 * 1024
BINARY_HEADER = b"inference-header-content-length"


class RawHeaders(Mapping[str, str]):
    """The request's headers as a mapping read only when asked (a sticky split): nothing built per request."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def __getitem__(self, name: str) -> str:
        key = name.encode("latin-1")
        for k, v in self._raw:
            if k == key:
                return v.decode("latin-1")
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return (k.decode("latin-1") for k, _ in self._raw)

    def __len__(self) -> int:
        return len(self._raw)


class InferEndpoint:
    """Serves the infer route for `ASGI scope` already matched by `INFER_PATH`."""

    def __init__(self, dataplane: DataPlane, max_request_bytes: int) -> None:
        self.dataplane = dataplane
        self.limit = max_request_bytes
        self.tracer = getattr(dataplane, "tracer", None)  # OpenTelemetry, when on (maas.monitor.tracing)

    def match(self, scope: Scope) -> re.Match[str] | None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] in OPEN_PATHS:
            return None
        return INFER_PATH.fullmatch(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send, match: re.Match[str]) -> None:
        name, version = match.group(1), match.group(2)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        exchange = exchange_of(scope) or Exchange(request_id(headers), time.perf_counter())
        header_len = None
        for key, value in headers:
            if key == BINARY_HEADER:
                header_len = value.decode("latin-1")
                break
        exchange.model, exchange.version = name, version or ""
        trace = self.tracer.begin(exchange.request_id, "rest") if self.tracer is not None else None
        if trace is not None:  # the path's model: a request that ends before the core saw it is still named
            trace.model, trace.version = name, version or ""
        extra: list[tuple[bytes, bytes]] = []
        req: InferenceRequest | None = None
        try:
            why = self.shed(name, version, scope.get(UNREAD, 0.0))
            if why is not None:  # refused before the body is read: shedding must stay cheap
                raise ResourceExhausted(why)
            body = await read_asgi_body(receive, exchange.content_length, self.limit)
            exchange.request_bytes = len(body)
            if trace is not None:
                trace.read = time.monotonic()
            req = await asyncio.to_thread(self._decode, body, name, version, header_len) if (
                _costly_decode(body, header_len)) else self._decode(body, name, version, header_len)
            req.request_id = exchange.request_id
            req.headers = RawHeaders(headers)  # a split's sticky header
            content, binary_len, exchange.version = await self._infer(req)
            status, exchange.outcome = 200, "ok"
            extra.append((b"x-model-version", exchange.version.encode()))
            if binary_len is not None:
                extra.append((BINARY_HEADER, str(binary_len).encode()))
        except ClientGone:
            exchange.outcome = "client_gone"
            return
        except MaasError as exc:
            status = status_of(exc)
            exchange.outcome = exc.code.value.lower()
            if status >= 500:
                log.error("%s: %s", exc.code, exc.message)
            content = rest_codec.dumps({"error": exc.message})
        except Exception:
            log.exception("unhandled error in infer")
            status, exchange.outcome, content = 500, "internal", rest_codec.dumps({"error": "internal error"})
        finally:
            if req is not None and req.served_version and exchange.outcome != "ok":
                exchange.version = req.served_version  # resolved before it failed: log what /metrics labels
            if trace is not None:
                trace.error = "" if exchange.outcome == "ok" else (exchange.outcome or "")
                self.tracer.finish(trace)  # type: ignore[union-attr]
        binary = any(k == BINARY_HEADER for k, _ in extra)
        exchange.status = status  # before the response starts: the edge then adds no second id
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/octet-stream" if binary else b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *extra,
                (REQUEST_ID, exchange.request_id.encode()),
            ],
        })
        await send({"type": "http.response.body", "body": content})
        exchange.response_bytes = len(content)  # what a counting wrapper found too, when one was on the way

    def shed(self, name: str, version: str | None, unread_s: float = 0.0) -> str | None:
        """Why a request for (name, version) would be refused for overload now (before its body is read);
        `unread_s`: how long it waited unread in the socket buffer, when the protocol knows."""
        shed = getattr(self.dataplane, "shed", None)
        if shed is None:
            return None
        return shed(name, version, unread_s) if unread_s else shed(name, version)

    @staticmethod
    def _decode(body: bytes, name: str, version: str | None, header_len: str | None) -> InferenceRequest:
        return rest_codec.decode_request(body, name, version, header_len)

    async def _infer(self, req: InferenceRequest) -> tuple[bytes, int | None, str]:
        trace = self.tracer and tracing_current()
        if trace:
            trace.decoded = time.monotonic()
        resp = await self.dataplane.infer(req)
        if rest_codec.json_output_bytes(resp, req) >= OFFLOAD_BYTES:
            content, binary_len = await asyncio.to_thread(rest_codec.encode_response, resp, req)
        else:
            content, binary_len = rest_codec.encode_response(resp, req)
        if trace:
            trace.encoded = time.monotonic()
        return content, binary_len, resp.model_version


def _costly_decode(body: bytes, header_len: str | None) -> bool:
    """Whether decoding `body` is worth a thread hop: a large JSON body, or a binary body whose JSON header is
    large or declares BYTES tensors (split element by element). A ResNet-sized binary tensor (600 KB) is read in
    place: two hops for it (decode and encode) had been the whole of that request's work on the loop."""
    if len(body) < OFFLOAD_BYTES:
        return False
    if header_len is None or not is_ascii_int(header_len.strip()):
        return True  # all JSON (a malformed length fails in the decoder, wherever it runs)
    n = int(header_len.strip())
    return n >= OFFLOAD_BYTES or body.find(b'"BYTES"', 0, n) >= 0
