"""The v2 infer route as a plain ASGI endpoint: the hot path skips FastAPI's routing, dependency and
middleware layers (a third of the CPU per request in the profile), keeping the same wire behaviour.

`POST /v2/models/{name}[/versions/{version}]/infer` is matched here before FastAPI sees the request; the
FastAPI route of the same path stays registered so it is listed in the OpenAPI docs (and serves when this
app is mounted some other way). Errors are `{"error": message}` with the status from `errors.status_of`.
Every request carries an id (the client's `X-Request-ID`, else a generated one), echoed in the response and
logged with model, version, outcome and latency in one INFO line on the `maas.access` logger.
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
from maas.protocol import rest_codec
from maas.server.access import log_access, request_id
from maas.server.auth import OPEN_PATHS, RestAuth, error_messages
from maas.server.body import ClientGone, read_asgi_body
from maas.server.errors import status_of
from maas.serving.inference import DataPlane

log = logging.getLogger(__name__)

INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
# Bodies at least this large are decoded off the event loop; below it the thread hop costs more than it saves.
OFFLOAD_BYTES = 256 * 1024

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

    def __init__(self, dataplane: DataPlane, max_request_bytes: int, auth: RestAuth | None = None) -> None:
        self.dataplane = dataplane
        self.limit = max_request_bytes
        self.auth = auth
        self.tracer = getattr(dataplane, "tracer", None)  # OpenTelemetry, when on (maas.monitor.tracing)

    def match(self, scope: Scope) -> re.Match[str] | None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] in OPEN_PATHS:
            return None
        return INFER_PATH.fullmatch(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send, match: re.Match[str]) -> None:
        started = time.perf_counter()
        name, version = match.group(1), match.group(2)
        content_length = header_len = None
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        for key, value in headers:
            if key == b"content-length":
                content_length = value
            elif key == b"inference-header-content-length":
                header_len = value.decode("latin-1")
        rid = request_id(headers)
        trace = self.tracer.begin(rid, "rest") if self.tracer is not None else None
        extra: list[tuple[bytes, bytes]] = []
        outcome, served_version = "ok", version or ""
        try:
            denied = self._denied(scope)
            if denied is not None:
                status, more, content = error_messages(denied)
                extra.extend(more)
                outcome = denied.code.value.lower()
            else:
                why = self._shed(name, version)
                if why is not None:  # refused before the body is read: shedding must stay cheap
                    raise ResourceExhausted(why)
                body = await read_asgi_body(receive, content_length, self.limit)
                if trace is not None:
                    trace.read = time.monotonic()
                content, binary_len, served_version = await self._infer(
                    body, name, version, header_len, rid, headers
                )
                status = 200
                extra.append((b"x-model-version", served_version.encode()))
                if binary_len is not None:
                    extra.append((b"inference-header-content-length", str(binary_len).encode()))
        except ClientGone:
            log_access("rest", rid, name, served_version, "client_gone", 499, started)
            return
        except MaasError as exc:
            status = status_of(exc)
            outcome = exc.code.value.lower()
            if status >= 500:
                log.error("%s: %s", exc.code, exc.message)
            content = rest_codec.dumps({"error": exc.message})
        except Exception:
            log.exception("unhandled error in infer")
            status, outcome, content = 500, "internal", rest_codec.dumps({"error": "internal error"})
        if trace is not None:
            trace.error = "" if outcome == "ok" else outcome
            self.tracer.finish(trace)  # type: ignore[union-attr]
        binary = any(k == b"inference-header-content-length" for k, _ in extra)
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/octet-stream" if binary else b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (b"x-request-id", rid.encode()),
                *extra,
            ],
        })
        await send({"type": "http.response.body", "body": content})
        log_access("rest", rid, name, served_version, outcome, status, started)

    def _shed(self, name: str, version: str | None) -> str | None:
        shed = getattr(self.dataplane, "shed", None)
        return shed(name, version) if shed is not None else None

    def _denied(self, scope: Scope) -> MaasError | None:
        if self.auth is None:
            return None
        try:
            principal = self.auth("POST", scope["path"], scope.get("query_string", b""), scope["headers"])
        except MaasError as exc:
            return exc
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
        return None

    async def _infer(
        self, body: bytes, name: str, version: str | None, header_len: str | None, rid: str,
        headers: list[tuple[bytes, bytes]],
    ) -> tuple[bytes, int | None, str]:
        big = len(body) >= OFFLOAD_BYTES
        if big:
            req = await asyncio.to_thread(rest_codec.decode_request, body, name, version, header_len)
        else:
            req = rest_codec.decode_request(body, name, version, header_len)
        req.request_id = rid
        req.headers = RawHeaders(headers)  # a split's sticky header
        trace = self.tracer and tracing_current()
        if trace:
            trace.decoded = time.monotonic()
        resp = await self.dataplane.infer(req)
        if big or sum(t.data.nbytes for t in resp.outputs) >= OFFLOAD_BYTES:
            content, binary_len = await asyncio.to_thread(rest_codec.encode_response, resp, req)
        else:
            content, binary_len = rest_codec.encode_response(resp, req)
        if trace:
            trace.encoded = time.monotonic()
        return content, binary_len, resp.model_version
