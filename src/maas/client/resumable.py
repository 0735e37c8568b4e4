"""The SDK's tus 1.0.0 client: a file goes up in pieces to /api/v1/uploads, and after a broken connection
(or a 5xx, or a busy upload) the client asks the server where the upload stands (HEAD) and goes on from there.

A retry is counted only while no progress is made, so a long upload over a flaky link finishes as long as
each attempt moves it forward.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from maas.errors import MaasError, Unavailable

TUS = {"Tus-Resumable": "1.0.0"}
OFFSET_STREAM = "application/offset+octet-stream"
CHUNK_BYTES = 32 * 1024 * 1024
RETRYABLE = frozenset({409, 423, 500, 502, 503, 504})  # 409: our offset was stale; HEAD tells the real one


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in metadata.items())


class ResumableUpload:
    """One upload of one file. `url` is known after `create`, so a caller may keep it and resume later."""

    def __init__(self, http: httpx.AsyncClient, fail: Callable[[httpx.Response], MaasError], *,
                 chunk_bytes: int = CHUNK_BYTES, retries: int = 8, backoff_s: float = 0.25) -> None:
        self.http = http
        self.fail = fail  # a response -> the maas error it means
        self.chunk_bytes = chunk_bytes
        self.retries = retries
        self.backoff_s = backoff_s
        self.url: str | None = None

    async def create(self, size: int, metadata: dict[str, str]) -> str:
        resp = await self._retrying(lambda: self.http.post("/api/v1/uploads", headers={
            **TUS, "Upload-Length": str(size), "Upload-Metadata": encode_metadata(metadata)}))
        if resp.status_code != 201:
            raise self.fail(resp)
        self.url = resp.headers["location"]
        return self.url

    async def offset(self) -> int:
        assert self.url is not None
        resp = await self._retrying(lambda: self.http.head(self.url or "", headers=TUS))
        if resp.status_code != 200:
            raise self.fail(resp)
        return int(resp.headers["upload-offset"])

    async def send(self, path: str | os.PathLike[str], size: int) -> None:
        """PATCH the file from where the server stands until all of it is there."""
        assert self.url is not None
        offset, stalled = await self.offset(), 0
        with open(path, "rb") as f:
            while offset < size:
                f.seek(offset)
                piece = f.read(min(self.chunk_bytes, size - offset))
                try:
                    resp = await self.http.patch(self.url, content=piece, headers={
                        **TUS, "Upload-Offset": str(offset), "Content-Type": OFFSET_STREAM})
                except httpx.TransportError:
                    resp = None  # the connection broke mid-piece: the server kept what arrived
                if resp is not None and resp.status_code == 204:
                    offset, stalled = int(resp.headers["upload-offset"]), 0
                    continue
                if resp is not None and resp.status_code not in RETRYABLE:
                    raise self.fail(resp)
                before = offset
                await asyncio.sleep(self.backoff_s * (2 ** min(stalled, 5)))
                offset = await self.offset()
                stalled = 0 if offset > before else stalled + 1
                if stalled > self.retries:
                    raise Unavailable(f"the upload made no progress in {self.retries} attempts (at byte {offset})")

    async def import_(self, fields: dict[str, Any], background: bool = False) -> Any:
        assert self.url is not None
        resp = await self.http.post(f"{self.url}/import", json={**fields, "background": background})
        if resp.status_code not in (201, 202):
            raise self.fail(resp)
        return resp.json()

    async def _retrying(self, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                resp = await call()
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise Unavailable(f"cannot reach the maas server: {exc}") from None
            else:
                if resp.status_code not in RETRYABLE - {409} or attempt == self.retries:
                    return resp
            await asyncio.sleep(self.backoff_s * (2 ** min(attempt, 5)))
        raise AssertionError("unreachable")
