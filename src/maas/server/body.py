"""Reads a request body as a stream with a hard size cap, so an oversized body is refused, never buffered."""

from __future__ import annotations

from starlette.requests import Request

from maas.errors import InvalidArgument, PayloadTooLarge


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or PayloadTooLarge (413) as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidArgument("Content-Length must be a non-negative integer")
        if int(declared) > limit:
            raise PayloadTooLarge(f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
