"""Control API (/api/v1) through the SDK's AsyncClient over an in-memory ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from maas.client import AsyncClient
from maas.config import Settings
from maas.errors import FailedPrecondition, InvalidArgument, NotFound, PayloadTooLarge, Unauthenticated
from maas.registry import Registry
from maas.security import Authorizer
from maas.server import control, errors
from maas.server.auth import AuthMiddleware, RestAuth


def make_app(registry: Registry, settings: Settings) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(control.router(registry, settings))
    if settings.api_key:
        app.add_middleware(AuthMiddleware, auth=RestAuth(Authorizer(None, settings.api_key)))
    return app


@pytest.fixture
def reg(home: Path) -> Registry:
    r = Registry.open(home)
    r.publish("iris", {"model.onnx": b"one"}, description="first")
    r.publish("iris", {"model.onnx": b"two"})
    return r


@pytest.fixture
async def client(reg: Registry) -> AsyncIterator[AsyncClient]:
    app = make_app(reg, reg.settings)
    async with AsyncClient("http://test", transport=httpx.ASGITransport(app=app)) as c:
        yield c


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_same_verbs_as_the_registry(client: AsyncClient, reg: Registry) -> None:
    assert [m.name for m in await client.list_models()] == ["iris"]
    assert [v.version for v in await client.list_versions("iris")] == [1, 2]
    assert await client.get("iris:1") == reg.get("iris:1")
    await client.set_alias("iris", "production", 1)
    assert (await client.get("iris")).version == 1
    assert (await client.get("iris@production")).aliases == ("production",)
    assert (await client.tag("iris:2", {"k": "v"})).tags == {"k": "v"}
    with pytest.raises(FailedPrecondition):
        await client.archive("iris:1")
    await client.remove_alias("iris", "production")
    assert (await client.archive("iris:1")).state == "archived"
    assert (await client.update_model("iris", description="d")).description == "d"
    await client.delete_model("iris")
    assert await client.list_models() == []


async def test_download_is_verified_content(client: AsyncClient, tmp_path: Path) -> None:
    out = await client.download("iris:2", tmp_path / "m.onnx")
    assert out.read_bytes() == b"two"


@pytest.mark.parametrize("ref", ["../x", "a%2Fb", "x" * 300, "iris:0", "iris@", "iris:1:2"])
async def test_bad_references_are_400(client: AsyncClient, ref: str) -> None:
    with pytest.raises(InvalidArgument):
        await client.get(ref)


async def test_unknown_things_are_404(client: AsyncClient) -> None:
    for ref in ("ghost", "iris:9", "iris@nope"):
        with pytest.raises(NotFound):
            await client.get(ref)
    with pytest.raises(NotFound):
        await client.set_alias("iris", "production", 9)


async def test_error_bodies_are_json(reg: Registry) -> None:
    app = make_app(reg, reg.settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as h:
        r = await h.get("/api/v1/versions/..%2Fx")
        assert r.status_code == 400 and "invalid model name" in r.json()["error"]
        r = await h.put("/api/v1/models/iris/aliases/production", json={"version": "x"})
        assert r.status_code == 400 and "error" in r.json()
        r = await h.post("/api/v1/models/iris/versions", content=b"not multipart",
                         headers={"content-type": "text/plain"})
        assert r.status_code == 400 and "multipart" in r.json()["error"]


async def test_upload_over_the_limit_is_413(home: Path, reg: Registry, tmp_path: Path) -> None:
    settings = Settings(home=home, max_upload_bytes=1024)
    app = make_app(reg, settings)
    big = tmp_path / "big.onnx"
    big.write_bytes(b"\0" * 4096)
    async with AsyncClient("http://t", transport=httpx.ASGITransport(app=app)) as c:
        with pytest.raises(PayloadTooLarge):
            await c.import_file(big, name="big")
    assert [m.name for m in reg.list_models()] == ["iris"]


async def test_api_key_required_when_configured(home: Path, reg: Registry) -> None:
    settings = Settings(home=home, api_key="s3cret")
    app = make_app(reg, settings)
    async with AsyncClient("http://t", transport=httpx.ASGITransport(app=app), api_key="") as c:
        with pytest.raises(Unauthenticated):
            await c.list_models()
    async with AsyncClient("http://t", transport=httpx.ASGITransport(app=app), api_key="wrong") as c:
        with pytest.raises(Unauthenticated):
            await c.list_models()
    async with AsyncClient("http://t", transport=httpx.ASGITransport(app=app), api_key="s3cret") as c:
        assert len(await c.list_models()) == 1
