"""The SDK raises what the server raised: 409 ALREADY_EXISTS and 409 FAILED_PRECONDITION stay apart (the
server's error-code header), and the sync `maas.Client` has typed methods, not `__getattr__` forwarding."""

from __future__ import annotations

import asyncio
import inspect

import httpx
import pytest
from fastapi import FastAPI

from maas.client import AsyncClient, Client
from maas.errors import AlreadyExists, FailedPrecondition
from maas.server import errors


def app() -> FastAPI:
    a = FastAPI()
    errors.install(a)

    @a.get("/api/v1/models/{name}")
    async def model(name: str) -> None:
        raise (AlreadyExists if name == "dup" else FailedPrecondition)(f"{name}: refused")

    return a


def test_409_is_already_exists_or_failed_precondition_by_the_servers_code() -> None:
    async def main() -> None:
        async with AsyncClient("http://test", transport=httpx.ASGITransport(app())) as c:
            with pytest.raises(AlreadyExists, match="dup: refused"):
                await c.get_model("dup")
            with pytest.raises(FailedPrecondition) as caught:
                await c.get_model("busy")
            assert not isinstance(caught.value, AlreadyExists)

    asyncio.run(main())


def test_the_sync_client_spells_out_every_async_verb_with_types() -> None:
    assert "__getattr__" not in vars(Client)
    verbs = {n for n, f in vars(AsyncClient).items() if inspect.iscoroutinefunction(f) and not n.startswith("_")}
    verbs -= {"aclose", "__aenter__", "__aexit__"}
    for name in verbs:
        sync, async_ = inspect.signature(getattr(Client, name)), inspect.signature(getattr(AsyncClient, name))
        assert list(sync.parameters) == list(async_.parameters), name
        assert sync.return_annotation == async_.return_annotation, name
