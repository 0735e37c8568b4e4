"""Control-API bodies read under a small cap of their own while they stream (413 past it, chunked bodies
included), and JSON checked for depth, before FastAPI parses them: a 256 MiB body to `PATCH /api/v1/models/x`
was buffered whole before, and 30,000 `[` reached the stdlib parser's recursion.

Uploads (multipart, and the pieces of resumable uploads) have their own streamed caps (`upload.py`,
`uploads_api.py`), inference bodies theirs (`body.py`)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas import json_limits
from maas.errors import InvalidArgument, PayloadTooLarge
from maas.server.body import ClientGone, read_asgi_body

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def is_upload(method: str, path: str) -> bool:
    """`POST /api/v1/models/{name}/versions`: the one route whose multipart body streams under its own cap."""
    parts = path.split("/")
    return method == "POST" and len(parts) == 6 and parts[:4] == ["", "api", "v1", "models"] and parts[5] == "versions"


def is_upload_piece(method: str, path: str) -> bool:
    """A piece of a resumable upload (tus `PATCH /api/v1/uploads/{id}`, or the creation POST carrying the
    first piece): streamed into the store under the upload's declared length (`uploads_api.py`)."""
    parts = path.split("/")
    if parts[:4] != ["", "api", "v1", "uploads"]:
        return False
    return (method == "PATCH" and len(parts) == 5) or (method == "POST" and len(parts) == 4)


class ControlBodyLimit:
    """ASGI middleware: bodies of requests under `prefixes` (the upload's multipart body aside) are read here,
    capped at `limit` bytes and depth-checked, then replayed to the app. Any other route given a multipart or
    form body would have it buffered whole by FastAPI, so those are capped here too."""

    def __init__(self, app: ASGIApp, limit: int, prefixes: tuple[str, ...] = ("/api/",)) -> None:
        self.app = app
        self.limit = limit
        self.prefixes = prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in BODY_METHODS
                or not scope["path"].startswith(self.prefixes)):
            return await self.app(scope, receive, send)
        content_length = None
        multipart = piece = False
        for key, value in scope["headers"]:
            if key == b"content-length":
                content_length = value
            elif key == b"content-type":
                multipart = value.lower().startswith(b"multipart/")
                piece = value.split(b";", 1)[0].strip().lower() == b"application/offset+octet-stream"
        if (multipart and is_upload(scope["method"], scope["path"])) or (
                piece and is_upload_piece(scope["method"], scope["path"])):
            return await self.app(scope, receive, send)
        try:
            body = await read_asgi_body(receive, content_length, self.limit)
            if body:
                json_limits.check_depth(body, "request body")
        except ClientGone:
            return None
        except InvalidArgument as exc:
            return await _error(send, 413 if isinstance(exc, PayloadTooLarge) else 400, exc.message)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()  # after the body: only a disconnect is left to hear
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _error(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close")],
    })
    await send({"type": "http.response.body", "body": body})
