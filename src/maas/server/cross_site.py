"""The cross-site guard: a page in the operator's browser must not change server state. A state-changing
request is refused (403) when `Sec-Fetch-Site` or `Origin` names another site, and a POST must carry what no
plain HTML form can send (a non-form content type or an `X-Requested-With` header).

Browsers send `Origin` on every cross-origin POST and `Sec-Fetch-Site` on every request, so either reveals a
foreign page; scripts and CLIs send neither. Methods other than GET/HEAD/POST are never "simple" in CORS, so a
page cannot send them without a preflight, which maas never grants; the content-type rule is for POST.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Content types an HTML form (or a no-preflight fetch) can send; anything else needs a CORS preflight.
SIMPLE_CONTENT_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data", "text/plain", ""})
CUSTOM_HEADER = b"x-requested-with"
# tus clients send this on every request; like any non-safelisted header it forces a CORS preflight.
TUS_HEADER = b"tus-resumable"
SAME_SITE_FETCH = frozenset({b"same-origin", b"none"})  # none: typed in the address bar, a bookmark


def refusal(method: str, headers: Iterable[tuple[bytes, bytes]], require_custom: bool = True) -> str | None:
    """Why this request looks cross-site (a message for the 403), or None when it may proceed."""
    if method not in STATE_CHANGING:
        return None
    found: dict[bytes, bytes] = {}
    for key, value in headers:
        if key in (b"origin", b"sec-fetch-site", b"host", b"content-type", CUSTOM_HEADER, TUS_HEADER):
            found.setdefault(key, value)
    fetch_site = found.get(b"sec-fetch-site")
    if fetch_site is not None and fetch_site.strip().lower() not in SAME_SITE_FETCH:
        return f"cross-site request refused (Sec-Fetch-Site: {fetch_site.decode('latin-1')[:40]})"
    origin = found.get(b"origin")
    if origin is not None and not _same_origin(origin, found.get(b"host", b"")):
        return f"cross-site request refused (Origin: {origin.decode('latin-1')[:80]})"
    if require_custom and method == "POST" and CUSTOM_HEADER not in found and TUS_HEADER not in found:
        ctype = found.get(b"content-type", b"").split(b";", 1)[0].strip().lower().decode("latin-1")
        if ctype in SIMPLE_CONTENT_TYPES:
            return ("a form-style POST needs an X-Requested-With header (the maas SDK sends one) or a JSON "
                    "body, so that a web page cannot send it")
    return None


def _same_origin(origin: bytes, host: bytes) -> bool:
    """`Origin: scheme://host[:port]` names the server itself (`null` and opaque origins never do)."""
    scheme, sep, rest = origin.strip().lower().partition(b"://")
    return bool(sep) and scheme in (b"http", b"https") and bool(host) and rest == host.strip().lower()


class CrossSiteGuard:
    """ASGI middleware applying `refusal` to paths under `prefixes`; under `origin_only` only the
    Origin/Sec-Fetch-Site part applies (Triton's repository API, whose clients send bare POSTs)."""

    def __init__(self, app: ASGIApp, prefixes: tuple[str, ...] = ("/api/", "/console/"),
                 origin_only: tuple[str, ...] = ("/v2/repository/",)) -> None:
        self.app = app
        self.prefixes = prefixes
        self.origin_only = origin_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in STATE_CHANGING:
            path: str = scope["path"]
            strict = path.startswith(self.prefixes)
            if strict or path.startswith(self.origin_only):
                why = refusal(scope["method"], scope["headers"], require_custom=strict)
                if why is not None:
                    return await _forbidden(send, why)
        await self.app(scope, receive, send)


async def _forbidden(send: Send, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start", "status": 403,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
