"""Refuses request paths holding control or separator characters (`%0A`, `%00`, U+2028…) before routing:
Starlette's `{name:path}` pattern ends in `$`, which matches before a trailing newline, so
`/api/v1/models/mlp%0A` was served as `mlp`."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send


class PathGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].isprintable():
            body = json.dumps({"error": "the request path contains control or separator characters"}).encode()
            await send({"type": "http.response.start", "status": 400, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
            return await send({"type": "http.response.body", "body": body})
        await self.app(scope, receive, send)
