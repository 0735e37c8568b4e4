"""What each REST request needs: scopes per route, model from the path, and spellings that must never need
less than the route they resemble."""

from __future__ import annotations

import asyncio

import pytest

from maas.errors import PermissionDenied, Unauthenticated
from maas.security import Authorizer, Scope
from maas.security.authorizer import Principal
from maas.server.auth import Need, RestAuth, check_model, http_need, is_change

INFER, READ, WRITE, ADMIN = Scope.INFER, Scope.READ, Scope.WRITE, Scope.ADMIN


@pytest.mark.parametrize(("method", "path", "need"), [
    ("GET", "/v2/health/live", None),
    ("GET", "/v2/health/ready", None),
    ("GET", "/v2", Need(INFER)),
    ("POST", "/v2/models/digits/infer", Need(INFER, "digits")),
    ("POST", "/v2/models/digits/versions/2/infer", Need(INFER, "digits")),
    ("GET", "/v2/models/digits/ready", Need(INFER, "digits")),
    ("GET", "/v2/models/digits/config", Need(INFER, "digits")),
    ("POST", "/v1/models/digits:predict", Need(INFER, "digits")),
    ("POST", "/v1/chat/completions", Need(INFER)),
    ("POST", "/v2/repository/index", Need(READ, every_model=True)),
    ("POST", "/v2/repository/models/digits/load", Need(WRITE, "digits")),
    ("GET", "/metrics", Need(READ, every_model=True)),
    ("GET", "/api/v1/models", Need(READ, every_model=True)),
    ("GET", "/api/v1/models/digits", Need(READ, "digits")),
    ("GET", "/api/v1/versions/digits@production", Need(READ, "digits")),
    ("GET", "/api/v1/versions/digits:3/artifacts/model.onnx", Need(READ, "digits")),
    ("PUT", "/api/v1/models/digits/aliases/production", Need(WRITE, "digits")),
    ("DELETE", "/api/v1/models/digits/aliases/production", Need(WRITE, "digits")),
    ("POST", "/api/v1/models/digits/versions", Need(WRITE, "digits")),
    ("POST", "/api/v1/versions/digits:3/archive", Need(WRITE, "digits")),
    ("DELETE", "/api/v1/models/digits", Need(ADMIN, "digits")),
    ("POST", "/api/v1/jobs", Need(WRITE, every_model=True)),
    ("POST", "/api/v1/uploads", Need(WRITE)),
    ("HEAD", "/api/v1/uploads/" + "a" * 32, Need(WRITE)),
    ("PATCH", "/api/v1/uploads/" + "a" * 32, Need(WRITE)),
    ("OPTIONS", "/api/v1/uploads", Need(READ)),
    ("GET", "/api/v1/keys", Need(ADMIN)),
    ("POST", "/api/v1/keys", Need(ADMIN)),
    ("GET", "/api/v1/audit", Need(ADMIN)),
    ("GET", "/openapi.json", Need(INFER)),
    ("GET", "/somewhere/else", Need(ADMIN)),
])
def test_route_needs(method: str, path: str, need: Need | None) -> None:
    assert http_need(method, path) == need


@pytest.mark.parametrize(("path", "need"), [
    # only the exact health paths are open; every other spelling needs a key
    ("/V2/health/live", Need(INFER)), ("//v2/health/live", Need(INFER)), ("/v2/health/live/", Need(INFER)),
    ("/v2//health/ready", Need(INFER)),
    # case, doubled and trailing slashes classify as the route they resemble, with the model as written
    ("/V2/MODELS/digits/INFER", Need(INFER, "digits")), ("//v2/models/digits/infer", Need(INFER, "digits")),
    ("/v2/models/digits/infer/", Need(INFER, "digits")), ("/v2/models/Digits/infer", Need(INFER, "Digits")),
    # the ASGI path is decoded once (as the router sees it); a second level of encoding stays literal
    ("/v2/models/dig%69ts/infer", Need(INFER, "dig%69ts")),
    ("/API/V1/KEYS", Need(ADMIN)), ("//api/v1/keys/", Need(ADMIN)), ("/api/v1//audit", Need(ADMIN)),
])
def test_path_tricks_never_need_less(path: str, need: Need) -> None:
    assert http_need("GET" if "infer" not in path.lower() else "POST", path) == need


def test_changes_are_the_mutating_control_routes() -> None:
    assert is_change("PUT", "/api/v1/models/a/aliases/p") and is_change("POST", "//v2/repository/models/a/load")
    assert not is_change("GET", "/api/v1/models") and not is_change("POST", "/v2/models/a/infer")


def test_rest_auth_refuses_query_string_tokens_and_models_out_of_reach(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from maas.registry.store import SqlModelStore
    from maas.security import KeyStore

    keys = KeyStore(SqlModelStore(f"sqlite:///{tmp_path / 'r.db'}"))
    _, token = keys.create("a", "infer", models=["a*"])
    rest = RestAuth(Authorizer(keys))

    def auth(method: str, path: str, qs: bytes, headers: list[tuple[bytes, bytes]]) -> Principal | None:
        return asyncio.run(rest(method, path, qs, headers))

    bearer = [(b"authorization", f"Bearer {token}".encode())]
    assert auth("POST", "/v2/models/alpha/infer", b"", bearer).name == "a"  # type: ignore[union-attr]
    assert auth("GET", "/v2/health/live", b"", []) is None
    for qs in (f"api_key={token}".encode(), b"token=x", b"a=1&ACCESS_TOKEN=x"):
        with pytest.raises(Unauthenticated, match="query string"):
            auth("POST", "/v2/models/alpha/infer", qs, bearer)
    with pytest.raises(PermissionDenied):
        auth("POST", "/v2/models/beta/infer", b"", bearer)
    with pytest.raises(PermissionDenied):
        auth("POST", "/v2/models/Alpha/infer", b"", bearer)
    with pytest.raises(Unauthenticated):
        auth("POST", "/v2/models/alpha/infer", b"", [])
    rest.authorizer.close()


def test_check_model_for_routes_that_name_it_in_the_body() -> None:
    scope = {"state": {"principal": Principal("k1", "chat", Scope.INFER, ("smol*",))}}
    check_model(scope, "smollm2")
    with pytest.raises(PermissionDenied):
        check_model(scope, "gpt")
    check_model({}, "gpt")  # no principal: auth is off (no key exists), nothing to limit
