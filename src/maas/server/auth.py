"""API-key check for REST: when a key is configured, every route but the health probes needs
`Authorization: Bearer <key>`. (gRPC has its own interceptor in grpc_server.py.)"""

from __future__ import annotations

import hmac
import json

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from maas.config import Settings

OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})


def key_matches(header_value: str | None, api_key: str) -> bool:
    if not header_value:
        return False
    scheme, _, token = header_value.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), api_key.encode())


def is_admin(request: HTTPConnection, settings: Settings) -> bool:
    """Whether the caller holds an admin key. Today the one key (`MAAS_API_KEY`) is the admin key; with no key
    configured nobody is an admin, since an unauthenticated caller may be any web page the operator opens."""
    return bool(settings.api_key) and key_matches(request.headers.get("authorization"), settings.api_key)


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        auth = None
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                auth = value.decode("latin-1")
                break
        if key_matches(auth, self.api_key):
            return await self.app(scope, receive, send)
        body = json.dumps({"error": "missing or invalid API key"}).encode()
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer"),
                        (b"content-length", str(len(body)).encode())],
        })
        await send({"type": "http.response.body", "body": body})
