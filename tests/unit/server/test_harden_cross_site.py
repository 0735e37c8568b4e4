"""The cross-site guard and the remote-trust rule, through the control API over an in-memory ASGI transport:
the attack is a multipart upload of a pickle whose payload writes a file, with the form field trust=true."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from maas.client import AsyncClient
from maas.config import Settings
from maas.errors import PermissionDenied
from maas.jobs import JobRunner
from maas.registry import Registry
from maas.security import Authorizer
from maas.server import control, errors, jobs_api
from maas.server.auth import AuthMiddleware, RestAuth
from maas.server.cross_site import CrossSiteGuard, refusal

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class WritesAFile:
    """Unpickling this runs `exec`, which writes `marker`: the ShellTorch class of payload."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


def evil_pickle(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned.txt"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(WritesAFile(marker)))
    return path, marker


def make_app(registry: Registry, settings: Settings) -> FastAPI:
    app = FastAPI()
    errors.install(app)
    app.include_router(control.router(registry, settings))
    app.include_router(jobs_api.router(JobRunner(registry.job_store(), {}), settings))
    app.add_middleware(CrossSiteGuard)
    app.add_middleware(AuthMiddleware, auth=RestAuth(Authorizer(None, settings.api_key)))
    return app


@pytest.fixture
def reg(home: Path) -> Registry:
    return Registry.open(home)


@pytest.fixture
async def http(reg: Registry) -> AsyncIterator[httpx.AsyncClient]:
    app = make_app(reg, reg.settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as h:
        yield h


def _upload(h: httpx.AsyncClient, pkl: Path, headers: dict[str, str], name: str = "x") -> object:
    return h.post(f"/api/v1/models/{name}/versions", data={"trust": "true"},
                  files={"file": ("model.pkl", pkl.read_bytes(), "application/octet-stream")}, headers=headers)


@pytest.mark.parametrize("headers", [
    {},  # a plain HTML form: no custom header, a form content type
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "X-Requested-With": "x"},  # another port of localhost is another origin
    {"Origin": "http://127.0.0.1:9999", "X-Requested-With": "x"},
])
async def test_cross_site_upload_is_refused_before_anything_runs(
    http: httpx.AsyncClient, reg: Registry, tmp_path: Path, headers: dict[str, str]
) -> None:
    pkl, marker = evil_pickle(tmp_path)
    r = await _upload(http, pkl, headers)  # type: ignore[misc]
    assert r.status_code == 403 and "error" in r.json()
    assert not marker.exists()
    assert reg.list_models() == []


async def test_trust_is_not_granted_to_an_unauthenticated_caller(
    http: httpx.AsyncClient, reg: Registry, tmp_path: Path
) -> None:
    pkl, marker = evil_pickle(tmp_path)
    r = await _upload(http, pkl, {"X-Requested-With": "x", "Origin": "http://127.0.0.1:8000"})  # type: ignore[misc]
    assert r.status_code == 403 and "not granted to remote requests" in r.json()["error"]
    assert not marker.exists()
    for spelling in ("TRUE", " yes", "1", "on"):
        r = await http.post("/api/v1/models/x/versions", data={"trust": spelling}, headers={"X-Requested-With": "x"},
                            files={"file": ("model.pkl", pkl.read_bytes())})
        assert r.status_code == 403, spelling
    assert not marker.exists()


async def test_jobs_api_does_not_grant_trust(http: httpx.AsyncClient) -> None:
    for trust in (True, "true", 1):
        r = await http.post("/api/v1/jobs", json={"kind": "import", "params": {"blob": "0" * 64, "name": "x",
                                                                                "trust": trust}})
        assert r.status_code == 403, trust
    r = await http.post("/api/v1/jobs", content=b'{"kind": "import", "params": {}}',
                        headers={"content-type": "text/plain"})
    assert r.status_code == 403  # a no-preflight fetch() body


async def test_sdk_upload_with_trust_is_permission_denied(reg: Registry, tmp_path: Path) -> None:
    pkl, marker = evil_pickle(tmp_path)
    app = make_app(reg, reg.settings)
    async with AsyncClient("http://t", transport=httpx.ASGITransport(app=app)) as c:
        with pytest.raises(PermissionDenied):
            await c.import_file(pkl, name="x", trust=True)
    assert not marker.exists()


@pytest.mark.parametrize(("allow", "key", "status", "runs"), [
    (False, "adm", 403, False),  # admin key, but the server was not started allowing remote trust
    (True, "", 401, False),  # allowed, but no key
    (True, "wrong", 401, False),
    (True, "adm", 400, True),  # both: the pickle is loaded (and, not being a model, refused afterwards)
])
async def test_trust_needs_an_admin_key_and_the_server_setting(
    home: Path, reg: Registry, tmp_path: Path, allow: bool, key: str, status: int, runs: bool
) -> None:
    settings = Settings(home=home, api_key="adm", allow_remote_trust=allow)
    pkl, marker = evil_pickle(tmp_path)
    app = make_app(reg, settings)
    headers = {"X-Requested-With": "x", **({"Authorization": f"Bearer {key}"} if key else {})}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as h:
        r = await _upload(h, pkl, headers)  # type: ignore[misc]
    assert r.status_code == status, r.text
    assert marker.exists() is runs


async def test_sdk_and_json_requests_pass_the_guard(http: httpx.AsyncClient, reg: Registry, tmp_path: Path) -> None:
    reg.publish("iris", {"model.onnx": b"one"})
    r = await http.put("/api/v1/models/iris/aliases/production", json={"version": 1},
                       headers={"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200, r.text
    r = await http.delete("/api/v1/models/iris/aliases/production", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert (await http.get("/api/v1/models", headers={"Origin": "https://evil.example"})).status_code == 200


def test_refusal_rules() -> None:
    host = [(b"host", b"127.0.0.1:8000")]
    assert refusal("GET", [(b"sec-fetch-site", b"cross-site")]) is None
    assert refusal("POST", [*host, (b"content-type", b"application/json")]) is None
    assert refusal("POST", [*host, (b"content-type", b"application/json; charset=utf-8")]) is None
    assert refusal("POST", [*host, (b"content-type", b"Multipart/Form-Data; boundary=x")]) is not None
    assert refusal("POST", [*host]) is not None  # no body at all is also what a form or fetch() can send
    assert refusal("POST", [*host, (b"x-requested-with", b"x")]) is None
    assert refusal("POST", [*host, (b"tus-resumable", b"1.0.0")]) is None  # a custom header: preflighted too
    assert refusal("POST", [*host, (b"tus-resumable", b"1.0.0"), (b"origin", b"http://evil.example")]) is not None
    assert refusal("POST", [*host], require_custom=False) is None
    assert refusal("PATCH", [*host, (b"origin", b"http://127.0.0.1:8000")]) is None
    assert refusal("PATCH", [*host, (b"origin", b"http://127.0.0.1:8000.evil.example")]) is not None
    assert refusal("PATCH", [*host, (b"origin", b"file://")]) is not None
    assert refusal("DELETE", [*host, (b"sec-fetch-site", b"none")]) is None
