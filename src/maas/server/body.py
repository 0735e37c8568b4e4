"""Reads a request body as a stream with a hard size cap, so an oversized body is refused, never buffered.

One reader for both the FastAPI routes (`read_body`) and the raw ASGI infer route (`read_asgi_body`).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import Receive

from maas.errors import InvalidArgument, PayloadTooLarge
from maas.numbers import is_ascii_int


class ClientGone(Exception):
    """The client disconnected before its body arrived; nothing is sent back."""


async def read_asgi_body(
    receive: Receive, content_length: bytes | None, limit: int, setting: str = "MAAS_MAX_REQUEST_BYTES"
) -> bytes:
    """The whole body, or PayloadTooLarge (413) as soon as it is known to exceed `limit` bytes; the message
    names the `setting` that raises the limit (empty for a fixed one)."""
    set_by = f" set by {setting}" if setting else ""
    if content_length is not None:
        if not is_ascii_int(content_length):
            raise InvalidArgument("Content-Length must be a non-negative integer")
        if int(content_length) > limit:
            raise PayloadTooLarge(
                f"request body of {content_length.decode()} bytes exceeds the limit of {limit} bytes{set_by}"
            )
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes{set_by}")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def read_body(request: Request, limit: int, setting: str = "MAAS_MAX_REQUEST_BYTES") -> bytes:
    declared = request.headers.get("content-length")
    content_length = declared.encode() if declared is not None else None
    return await read_asgi_body(request.receive, content_length, limit, setting)
