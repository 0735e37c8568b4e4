"""The server's periodic write of key last-used times (batched: one write per key a minute at most)."""

from __future__ import annotations

import asyncio

from maas.security.authorizer import LAST_USED_EVERY_S, Authorizer


async def flush_last_used(authorizer: Authorizer, every_s: float = LAST_USED_EVERY_S / 4) -> None:
    while True:
        await asyncio.sleep(every_s)
        await asyncio.to_thread(authorizer.flush_last_used)
