"""REST's door to the one `Authorizer`: what scope (and model) an HTTP request needs, read from its method and
path, and the ASGI middleware that applies it to every route and audits control-plane changes.

`await RestAuth(method, path, query_string, headers)` is the single callable any ASGI layer calls (async so
that a first or fresh read of the keys waits off the event loop): it returns the caller's `Principal` or raises
Unauthenticated (401), PermissionDenied (403) or RateLimited (429). The path is classified after collapsing
repeated slashes and dropping a trailing one, with case-insensitive route words, and unknown paths need
`admin`: a spelling the router would not serve can never need less than one it would. Only the exact health
paths are open. Credentials in the query string are refused (URLs end up in logs and browser histories).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas.config import Settings
from maas.errors import MaasError, PermissionDenied, RateLimited, Unauthenticated
from maas.security import AuditLog, Authorizer, Principal
from maas.security.authorizer import ANONYMOUS, bearer_token
from maas.security.rates import retry_after_header
from maas.security.scopes import Scope as KeyScope
from maas.server.errors import status_of

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
QUERY_CREDENTIALS = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token", "auth",
                               "authorization", "bearer", "password", "secret"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Need:
    scope: KeyScope
    model: str | None = None
    every_model: bool = False  # the request spans all models (listing, index, metrics)


_I = re.IGNORECASE
_V2_MODEL = re.compile(r"/v2/models/([^/]+)(?:/.*)?", _I)
_V1_MODEL = re.compile(r"/v1/models/([^/:]+)(?:/versions/[^/:]+)?:[a-z]+", _I)
_OPENAI = re.compile(r"(?:/openai)?/v1/(?:chat/completions|completions|embeddings|models(?:/.*)?)", _I)
_REPO_MODEL = re.compile(r"/v2/repository/models/([^/]+)/(?:load|unload)", _I)
_ADMIN_API = re.compile(r"/api/v1/(?:keys|audit|encryption)(?:/.*)?", _I)
_API_MODEL = re.compile(r"/api/v1/models/([^/]+)(?:/.*)?", _I)
_API_VERSION = re.compile(r"/api/v1/versions/([^/:@]+)(?:[:@/].*)?", _I)
_API_UPLOAD = re.compile(r"/api/v1/uploads(?:/.*)?", _I)
_DOCS = frozenset({"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
_SLASHES = re.compile(r"/{2,}")
_CONSOLE_ADMIN = re.compile(r"/console/keys(?:/.*)?", _I)
CONSOLE_STATIC = "/console/static/"
CONSOLE_LOGIN = "/console/login"


def normalise(path: str) -> str:
    """Collapse `//` and drop a trailing `/` (the ASGI path is already percent-decoded once, as the router
    sees it; decoding again would let `%252F` mean something the router never serves)."""
    path = _SLASHES.sub("/", path)
    return path[:-1] if len(path) > 1 and path.endswith("/") else path


def http_need(method: str, path: str) -> Need | None:
    """What `method path` needs; None only for the exact health probes."""
    if path in OPEN_PATHS and method in ("GET", "HEAD"):
        return None
    if (path.startswith(CONSOLE_STATIC) and ".." not in path) or (
            path == CONSOLE_LOGIN and method in ("GET", "HEAD", "POST")):
        return None  # the console's sign-in page and its scripts (exact spellings only, like the probes)
    p = normalise(path)
    low = p.lower()
    if low in OPEN_PATHS or low == "/v2" or low in _DOCS:
        return Need(KeyScope.INFER)  # a health spelling the router does not serve still needs a key
    if m := _V2_MODEL.fullmatch(p):
        return Need(KeyScope.INFER, m.group(1))
    if m := _V1_MODEL.fullmatch(p):
        return Need(KeyScope.INFER, m.group(1))
    if _OPENAI.fullmatch(p):
        return Need(KeyScope.INFER)  # the model is in the body: the route checks it against the principal
    if low == "/v2/repository/index":
        return Need(KeyScope.READ, every_model=True)
    if m := _REPO_MODEL.fullmatch(p):
        return Need(KeyScope.WRITE, m.group(1))
    if low == "/metrics":
        return Need(KeyScope.READ, every_model=True)
    if _ADMIN_API.fullmatch(p) or _CONSOLE_ADMIN.fullmatch(p):
        return Need(KeyScope.ADMIN)
    if low == "/console" or low.startswith("/console/"):
        return Need(KeyScope.READ)  # pages filter what they show by the key's models; changes go to the API
    if low == "/api/v1" or low.startswith("/api/v1/"):
        read = method in READ_METHODS
        if (m := _API_MODEL.fullmatch(p)) is not None:
            sub = p[m.end(1):]
            scope = KeyScope.ADMIN if method == "DELETE" and sub in ("", "/") else (
                KeyScope.READ if read else KeyScope.WRITE)
            return Need(scope, m.group(1))
        if (m := _API_VERSION.fullmatch(p)) is not None:
            return Need(KeyScope.READ if read else KeyScope.WRITE, m.group(1))
        if _API_UPLOAD.fullmatch(p):  # an upload is write work, HEAD included; its import checks the model
            return Need(KeyScope.READ if method == "OPTIONS" else KeyScope.WRITE)
        return Need(KeyScope.READ if read else KeyScope.WRITE, every_model=True)
    return Need(KeyScope.ADMIN)


def is_change(method: str, path: str) -> bool:
    """A control-plane change, recorded in the audit log."""
    if method in READ_METHODS:
        return False
    low = normalise(path).lower()
    return low.startswith("/api/v1/") or low.startswith("/v2/repository/models/")


def is_admin(request: HTTPConnection, settings: Settings) -> bool:
    """Whether the caller authenticated with an admin key. With no key at all everyone is let in as
    `ANONYMOUS`, but that caller may be any web page the operator opens, so it is never an admin here."""
    principal = principal_of(request.scope)
    return principal is not None and principal is not ANONYMOUS and principal.is_admin


def _header_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in headers if k == name]


class RestAuth:
    """(method, path, query string, headers) -> the caller, or an error; one per app."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer

    async def __call__(self, method: str, path: str, query_string: bytes,
                       headers: Iterable[tuple[bytes, bytes]]) -> Principal | None:
        token = bearer_token(_header_values(headers, b"authorization"))
        await self.authorizer.ready_for(token)  # returns at once unless the keys must be read first
        if not self.authorizer.required:  # no key exists (a loopback set-up): everyone is let in
            return self.authorizer.authenticate(None)
        need = http_need(method, path)
        if need is None:
            return None
        if query_string and _has_query_credentials(query_string):
            raise Unauthenticated("credentials in the query string are refused: send 'Authorization: Bearer <key>'")
        return self.authorizer.check(token, need.scope, need.model, every_model=need.every_model)


def _has_query_credentials(query_string: bytes) -> bool:
    try:
        pairs = parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)
    except ValueError:
        return False
    return any(k.strip().lower() in QUERY_CREDENTIALS for k, _ in pairs)


def error_messages(exc: MaasError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """(status, extra headers, body) of an authorisation error."""
    status = status_of(exc)
    extra: list[tuple[bytes, bytes]] = []
    if status == 401:
        extra.append((b"www-authenticate", b"Bearer"))
    if isinstance(exc, RateLimited):
        extra.append((b"retry-after", retry_after_header(exc.retry_after_s).encode()))
    return status, extra, json.dumps({"error": exc.message}).encode()


async def send_error(send: Send, exc: MaasError, more: list[tuple[bytes, bytes]] | None = None) -> int:
    status, extra, body = error_messages(exc)
    await send({
        "type": "http.response.start", "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *extra, *(more or [])],
    })
    await send({"type": "http.response.body", "body": body})
    return status


def principal_of(scope: Scope) -> Principal | None:
    """The caller the middleware let in (None on open paths, or where no middleware ran)."""
    state = scope.get("state")
    return state.get("principal") if isinstance(state, dict) else None


def check_model(scope: Scope, model: str) -> None:
    """For routes that name the model in the body (the OpenAI routes): raise PermissionDenied when the
    caller's key does not cover it. Paths that name the model are checked by `RestAuth` already."""
    principal = principal_of(scope)
    if principal is not None and not principal.allows_model(model):
        raise PermissionDenied(f"API key {principal.key_id} may not use model {str(model)[:64]!r}", principal.actor)


def client_address(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else ""


class AuthMiddleware:
    """Applies `RestAuth` to every HTTP route and records control-plane changes in the audit log."""

    def __init__(self, app: ASGIApp, auth: RestAuth, audit: AuditLog | None = None) -> None:
        self.app = app
        self.auth = auth
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # none today; one added later must not skip the check
            try:
                await self.auth("GET", scope["path"], scope.get("query_string", b""), scope["headers"])
            except MaasError:
                return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        audited = self.audit is not None and is_change(method, path)
        try:
            principal = await self.auth(method, path, scope.get("query_string", b""), scope["headers"])
        except MaasError as exc:
            status = await send_error(send, exc)
            if audited and status != 401:  # unauthenticated floods must not become database writes
                await self._record(scope, getattr(exc, "actor", "") or "unknown", status)
            return
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
        if not audited:
            return await self.app(scope, receive, send)
        recorded = False
        actor = principal.actor if principal is not None else "unknown"

        async def watch(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True  # written before the client hears the outcome, so a read after it sees it
                await self._record(scope, actor, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            if not recorded:
                await self._record(scope, actor, 500)

    async def _record(self, scope: Scope, actor: str, status: int) -> None:
        assert self.audit is not None
        need = http_need(scope["method"], scope["path"])
        try:
            await asyncio.to_thread(self.audit.record, actor, f"{scope['method']} {scope['path']}",
                                    target=(need.model if need is not None else None) or "",
                                    source=client_address(scope), outcome=str(status))
        except Exception:  # the change itself is done; a failed audit write is logged, not turned into a 500
            log.error("could not write the audit record of %s %s", scope["method"], scope["path"], exc_info=True)
