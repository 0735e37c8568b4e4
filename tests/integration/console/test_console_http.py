"""The console's sign-in and session rules over plain HTTP (no browser): the cookie's flags, CSRF on every
state-changing request a session makes, the cross-site guard on sign-in, the key's scope deciding writes,
revocation ending the session, the keyless loopback default, and the cookie's Secure flag under TLS."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.testing.live_server import LiveServer, live_server

from ..auth_certs import make_pki
from ..models import linear_model

CSRF_META = '<meta name="csrf-token" content="'
_OPEN: list[httpx.Client] = []


def new_client(base_url: str, **kwargs: object) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30, **kwargs)  # type: ignore[arg-type]
    _OPEN.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveServer, dict[str, str], Settings]]:
    settings = Settings(home=tmp_path_factory.mktemp("console-http"))
    with Registry(settings) as reg:
        reg.publish("lin", {"model.onnx": linear_model()})
        reg.publish("lin", {"model.onnx": linear_model()})
        keys = reg.key_store()
        tokens = {scope: keys.create(f"k-{scope}", scope)[1] for scope in ("infer", "read", "write", "admin")}
    with live_server(settings) as server:
        yield server, tokens, settings


def sign_in(server: LiveServer, token: str) -> tuple[httpx.Client, str]:
    client = new_client(server.http_url)
    r = client.post("/console/login", json={"token": token}, headers={"X-Requested-With": "t"})
    assert r.status_code == 200, r.text
    page = client.get("/console/")
    assert page.status_code == 200
    csrf = page.text.split(CSRF_META, 1)[1].split('"', 1)[0]
    assert len(csrf) > 20
    return client, csrf


def test_pages_redirect_to_sign_in_and_the_cookie_is_httponly_and_strict(keyed) -> None:  # type: ignore[no-untyped-def]
    server, tokens, _ = keyed
    anonymous = new_client(server.http_url)
    assert anonymous.get("/").headers["location"] == "/console/"
    r = anonymous.get("/console/models/lin")
    assert r.status_code == 303 and r.headers["location"] == "/console/login?next=/console/models/lin"
    assert anonymous.get("/console/login").status_code == 200
    assert anonymous.get("/console/static/vendor/htmx.min.js").status_code == 200
    assert anonymous.get("/api/v1/models").status_code == 401
    r = anonymous.post("/console/login", json={"token": tokens["read"]}, headers={"X-Requested-With": "t"})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith("maas_session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain HTTP; see the TLS test
    assert tokens["read"] not in cookie


def test_sign_in_refuses_bad_keys_infer_keys_and_cross_site_posts(keyed) -> None:  # type: ignore[no-untyped-def]
    server, tokens, _ = keyed
    c = new_client(server.http_url)
    ours = {"X-Requested-With": "t"}
    assert c.post("/console/login", json={"token": "maas_nope_nope"}, headers=ours).status_code == 401
    assert c.post("/console/login", json={"token": tokens["infer"]}, headers=ours).status_code == 403
    evil = {"Origin": "http://evil.example", "X-Requested-With": "t"}
    assert c.post("/console/login", json={"token": tokens["admin"]}, headers=evil).status_code == 403
    form = c.post("/console/login", data={"token": tokens["admin"]})  # a plain HTML form from anywhere
    assert form.status_code == 403 and "set-cookie" not in form.headers


def test_a_session_needs_its_csrf_token_for_every_change(keyed) -> None:  # type: ignore[no-untyped-def]
    server, tokens, _ = keyed
    client, csrf = sign_in(server, tokens["write"])
    body = {"version": 1}
    url = "/api/v1/models/lin/aliases/staging"
    base = {"X-Requested-With": "t"}
    assert client.put(url, json=body, headers=base).status_code == 403
    assert client.put(url, json=body, headers={**base, "X-CSRF-Token": "wrong"}).status_code == 403
    infer = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    assert client.post("/v2/models/lin/infer", json=infer).status_code == 403  # the cookie reaches infer too
    assert client.post("/v2/models/lin/infer", json=infer, headers={"X-CSRF-Token": csrf}).status_code == 200
    r = client.put(url, json=body, headers={**base, "X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert client.get("/api/v1/versions/lin@staging").json()["version"] == 1  # reads need no token
    audit = httpx.get(f"{server.http_url}/api/v1/audit", headers={"Authorization": f"Bearer {tokens['admin']}"})
    assert any(e["actor"].startswith("k-write") and "aliases/staging" in e["action"] for e in audit.json())


def test_a_read_session_is_refused_writes_and_the_keys_page(keyed) -> None:  # type: ignore[no-untyped-def]
    server, tokens, _ = keyed
    client, csrf = sign_in(server, tokens["read"])
    headers = {"X-Requested-With": "t", "X-CSRF-Token": csrf}
    assert client.put("/api/v1/models/lin/aliases/production", json={"version": 1}, headers=headers).status_code == 403
    assert client.post("/api/v1/jobs", json={"kind": "evaluate", "params": {}}, headers=headers).status_code == 403
    assert client.get("/console/keys").status_code == 403
    page = client.get("/console/models/lin/versions/1").text
    assert 'id="alias-form"' not in page and 'id="tag-form"' not in page


def test_revoking_the_key_ends_the_session_and_sign_out_forgets_it(keyed) -> None:  # type: ignore[no-untyped-def]
    server, _, settings = keyed
    with Registry(settings) as reg:
        key, token = reg.key_store().create("short-lived", "read")
    client, csrf = sign_in(server, token)
    admin = {"Authorization": f"Bearer {_admin(keyed)}"}
    assert httpx.delete(f"{server.http_url}/api/v1/keys/{key.id}", headers=admin).status_code == 200
    r = client.get("/console/")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    assert "Max-Age=0" in r.headers["set-cookie"]

    client, csrf = sign_in(server, _admin(keyed))
    out = client.post("/console/logout", json={}, headers={"X-Requested-With": "t", "X-CSRF-Token": csrf})
    assert out.status_code == 200
    assert client.get("/console/").status_code == 303


def _admin(keyed) -> str:  # type: ignore[no-untyped-def]
    return keyed[1]["admin"]  # type: ignore[no-any-return]


def test_an_authorization_header_wins_over_the_cookie_and_static_paths_stay_inside(keyed) -> None:  # type: ignore[no-untyped-def]
    server, tokens, _ = keyed
    client, _ = sign_in(server, tokens["admin"])
    r = client.get("/console/keys", headers={"Authorization": f"Bearer {tokens['read']}"})
    assert r.status_code == 403  # the read key decides, not the admin session
    for path in ("/console/static/../pages.py", "/console/static/%2e%2e/pages.py", "/console/static/vendor/nope.js"):
        assert httpx.get(server.http_url + path).status_code in (303, 401, 404), path  # never the file


def test_a_keyless_loopback_server_needs_no_sign_in(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    with Registry(settings) as reg:
        reg.publish("lin", {"model.onnx": linear_model()})
    with live_server(settings) as server:
        c = new_client(server.http_url)
        page = c.get("/console/")
        assert page.status_code == 200 and "anonymous" in page.text and 'href="/console/keys"' in page.text
        assert c.get("/console/login").headers["location"] == "/console/"
        # no session, so no CSRF token: the cross-site guard is what stands, as for the API
        evil = c.put("/api/v1/models/lin/aliases/x", json={"version": 1}, headers={"Origin": "http://evil.example"})
        assert evil.status_code == 403


def test_the_cookie_is_secure_under_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    settings = Settings(home=tmp_path / "home", api_key="console-tls-key", tls_cert=pki.server_cert,
                        tls_key=pki.server_key)
    with live_server(settings) as server:
        url = server.http_url.replace("http://", "https://")
        with httpx.Client(base_url=url, verify=ssl.create_default_context(cafile=str(pki.ca))) as c:
            r = c.post("/console/login", json={"token": "console-tls-key"}, headers={"X-Requested-With": "t"})
            assert r.status_code == 200, r.text
            assert "; Secure" in r.headers["set-cookie"] and "SameSite=Strict" in r.headers["set-cookie"]


def test_a_refused_page_is_a_page(keyed) -> None:  # type: ignore[no-untyped-def]
    server, tokens, _ = keyed
    client, _ = sign_in(server, tokens["read"])
    for path, status in (("/console/models/nope", 404), ("/console/models/lin/versions/9", 404),
                         ("/console/models/bad%20name", 400), ("/console/traffic?model=nope", 404)):
        r = client.get(path)
        assert r.status_code == status and r.headers["content-type"].startswith("text/html"), (path, r.text[:200])
        assert 'id="error-message"' in r.text and "Traceback" not in r.text
