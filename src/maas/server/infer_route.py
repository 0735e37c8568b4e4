"""The v2 infer route, the only implementation of `POST /v2/models/{name}[/versions/{version}]/infer`: a plain
ASGI endpoint that the edge (edge.py) dispatches to after its id, limit and auth layers, skipping FastAPI.

Errors are `{"error": message}` with the status from `errors.status_of`; the model, the version actually served
(or resolved, when the request failed) and the outcome go on the request's `Exchange` for the access log.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from starlette.types import Receive, Scope, Send

from maas.errors import MaasError
from maas.protocol import rest_codec
from maas.server.access import Exchange, exchange_of, request_id
from maas.server.auth import OPEN_PATHS
from maas.server.body import ClientGone, read_asgi_body
from maas.server.errors import status_of
from maas.serving.inference import DataPlane, InferenceRequest

log = logging.getLogger(__name__)

INFER_PATH = re.compile(r"/v2/models/([^/]+)(?:/versions/([^/]+))?/infer")
# Bodies at least this large are decoded off the event loop; below it the thread hop costs more than it saves.
OFFLOAD_BYTES = 256 * 1024


class InferEndpoint:
    """Serves the infer route for `ASGI scope` already matched by `INFER_PATH`."""

    def __init__(self, dataplane: DataPlane, max_request_bytes: int) -> None:
        self.dataplane = dataplane
        self.limit = max_request_bytes

    def match(self, scope: Scope) -> re.Match[str] | None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] in OPEN_PATHS:
            return None
        return INFER_PATH.fullmatch(scope["path"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send, match: re.Match[str]) -> None:
        name, version = match.group(1), match.group(2)
        exchange = exchange_of(scope) or Exchange(request_id(scope["headers"]), time.perf_counter())
        header_len = None
        for key, value in scope["headers"]:
            if key == b"inference-header-content-length":
                header_len = value.decode("latin-1")
                break
        exchange.model, exchange.version = name, version or ""
        extra: list[tuple[bytes, bytes]] = []
        req: InferenceRequest | None = None
        try:
            body = await read_asgi_body(receive, exchange.content_length, self.limit)
            req = self._decode(body, name, version, header_len) if len(body) < OFFLOAD_BYTES else (
                await asyncio.to_thread(self._decode, body, name, version, header_len))
            req.request_id = exchange.request_id
            content, binary_len, exchange.version = await self._infer(req, len(body) >= OFFLOAD_BYTES)
            status, exchange.outcome = 200, "ok"
            if binary_len is not None:
                extra.append((b"inference-header-content-length", str(binary_len).encode()))
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
        await send({
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/octet-stream" if extra else b"application/json"),
                (b"content-length", str(len(content)).encode()),
                *extra,
            ],
        })
        await send({"type": "http.response.body", "body": content})

    @staticmethod
    def _decode(body: bytes, name: str, version: str | None, header_len: str | None) -> InferenceRequest:
        return rest_codec.decode_request(body, name, version, header_len)

    async def _infer(self, req: InferenceRequest, big: bool) -> tuple[bytes, int | None, str]:
        resp = await self.dataplane.infer(req)
        if big or sum(t.data.nbytes for t in resp.outputs) >= OFFLOAD_BYTES:
            content, binary_len = await asyncio.to_thread(rest_codec.encode_response, resp, req)
        else:
            content, binary_len = rest_codec.encode_response(resp, req)
        return content, binary_len, resp.model_version
