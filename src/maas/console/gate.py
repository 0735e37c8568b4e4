"""The console's door in the HTTP edge, just outside the auth layer: a request that carries the session
cookie (and no `Authorization` header of its own) is given its session's key as a bearer token, so the auth
layer decides it exactly as it decides the CLI's; a state-changing one must also carry the session's CSRF
token in `X-CSRF-Token`, on any path (the cookie is sent to the API and the infer routes too).

Console pages that the auth layer would answer with 401 (no session, or its key was revoked or expired) get
a redirect to the sign-in page instead; a session whose key is refused with 401 on any path is ended (its row
deleted: other processes stop trusting their cached copy within `sessions.CACHE_S`)."""

from __future__ import annotations

import json
from http.cookies import CookieError, SimpleCookie
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas.console.sessions import COOKIE, CSRF_HEADER, SessionStore, csrf_matches
from maas.server.cross_site import STATE_CHANGING

PREFIX = "/console"
LOGIN = f"{PREFIX}/login"
STATIC = f"{PREFIX}/static/"


def session_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session cookie's value, if the request has one."""
    for key, value in headers:
        if key == b"cookie":
            try:
                jar = SimpleCookie(value.decode("latin-1"))
            except CookieError:
                continue
            if COOKIE in jar:
                return jar[COOKIE].value
    return None


def is_page(path: str) -> bool:
    return (path == PREFIX or path.startswith(PREFIX + "/")) and not path.startswith(STATIC) and path != LOGIN


def clear_cookie(secure: bool) -> bytes:
    return (f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")).encode()


def set_cookie(value: str, secure: bool) -> str:
    return f"{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


class ConsoleGate:
    def __init__(self, app: ASGIApp, sessions: SessionStore) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/" and method in ("GET", "HEAD"):
            return await _redirect(send, PREFIX + "/")
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        secure = scope.get("scheme") == "https"
        sid = session_id(headers)
        session = None
        if sid is not None and not any(k == b"authorization" for k, _ in headers):
            session = self.sessions.cached(sid) or await run_in_threadpool(self.sessions.get, sid)
        if session is not None:
            if method in STATE_CHANGING:
                sent = next((v.decode("latin-1") for k, v in headers if k == CSRF_HEADER.encode()), None)
                if not csrf_matches(session, sent):
                    return await _forbidden(send, "the console's CSRF token is missing or wrong: reload the page")
            scope = {**scope, "headers": [*headers, (b"authorization", f"Bearer {session.token}".encode())]}
            scope.setdefault("state", {})["console_session"] = session
        page = is_page(path)
        if not page and session is None:
            return await self.app(scope, receive, send)

        swallowing = False

        async def to_login(message: Message) -> None:
            nonlocal swallowing
            if message["type"] == "http.response.start" and message["status"] == 401:
                if session is not None and sid is not None:  # its key was revoked or expired: the session ends
                    await run_in_threadpool(self.sessions.drop, sid)
                if page:
                    swallowing = True
                    return await _redirect(send, f"{LOGIN}?next={quote(path)}",
                                           clear_cookie(secure) if sid else None)
            if not swallowing:
                await send(message)

        await self.app(scope, receive, to_login)


async def _redirect(send: Send, location: str, cookie: bytes | None = None) -> None:
    headers = [(b"location", location.encode()), (b"content-length", b"0")]
    if cookie is not None:
        headers.append((b"set-cookie", cookie))
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


async def _forbidden(send: Send, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": 403,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
