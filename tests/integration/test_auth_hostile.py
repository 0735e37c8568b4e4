"""Hostile callers against the real server on REST and gRPC alike: missing, malformed, expired, revoked and
out-of-scope keys, a key for one model used on another, tokens in the query string, case and path tricks;
rate limits; the keys API and the audit log; and no token or tensor value in any log line."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from maas.client import Client
from maas.errors import PermissionDenied, Unauthenticated
from maas.registry import Registry
from maas.security import KeyStore

from .conftest import Endpoints, make_settings, serving

# A value that must never show up in a log line (tensor data stays out of logs).
MARK = 4242.125
X = np.array([[MARK, 2, 3, 4]], dtype=np.float32)
ENV_KEY = "env-admin-key-0123456789"


class Tokens(dict[str, str]):
    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self[name]}"}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in ("maas", "uvicorn", "grpc"):
            self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def logs() -> Iterator[Capture]:
    handler = Capture()
    maas_log = logging.getLogger("maas")
    old = maas_log.level
    maas_log.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)
    maas_log.setLevel(old)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, logs: Capture) -> Iterator[tuple[Endpoints, Tokens]]:
    settings = make_settings(tmp_path_factory.mktemp("auth"), api_key=ENV_KEY)
    tokens = Tokens()
    with Registry(settings) as reg:
        keys = KeyStore(reg.store)
        for name, scope, kwargs in (
            ("admin", "admin", {}), ("linear_only", "infer", {"models": ["lin*"]}), ("reader", "read", {}),
            ("writer", "write", {}), ("slow_rest", "infer", {"rate": "1/h"}), ("slow_grpc", "infer", {"rate": "1/h"}),
            ("slow_raw", "infer", {"rate": "1/h"}),
            ("expired", "admin", {"expires": datetime.now(UTC) - timedelta(seconds=1)}), ("revoked", "admin", {}),
        ):
            key, tokens[name] = keys.create(name, scope, **kwargs)
            tokens[name + ".id"] = key.id
        keys.revoke(tokens["revoked.id"])
    with serving(settings) as endpoints:
        yield endpoints, tokens


def raw(target: str, method: str, path: str, headers: dict[str, str] | None = None,
        body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request with the path sent exactly as written (no client-side normalising)."""
    host, port = target.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        sent = {**({"Content-Type": "application/json"} if body else {}), **(headers or {})}
        conn.request(method, path, body=body, headers=sent)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def infer_body() -> bytes:
    return json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4],
                                   "data": X.ravel().tolist()}]}).encode()


def bad_credentials(tokens: Tokens) -> list[dict[str, str]]:
    return [
        {}, {"Authorization": "Basic YWRtaW46YWRtaW4="}, {"Authorization": "Bearer"},
        {"Authorization": "Bearer maas_nonsense"}, {"Authorization": tokens["admin"]},
        {"Authorization": "Bearer " + tokens["admin"][:-2] + "zz"}, {"Authorization": "Bearer " + ENV_KEY + "x"},
        tokens.auth("expired"), tokens.auth("revoked"),
    ]


# --- REST ---------------------------------------------------------------------------------------------------
def test_rest_health_is_open_and_everything_else_needs_a_valid_key(site: tuple[Endpoints, Tokens]) -> None:
    ep, tokens = site
    for path in ("/v2/health/live", "/v2/health/ready"):
        assert raw(ep.http, "GET", path)[0] == 200
    for headers in bad_credentials(tokens):
        for method, path, body in (("GET", "/v2/models/linear", None), ("POST", "/v2/models/linear/infer",
                                   infer_body()), ("GET", "/api/v1/models", None), ("GET", "/metrics", None)):
            status, resp_headers, content = raw(ep.http, method, path, headers, body)
            assert status == 401, (headers, path, content)
            assert resp_headers.get("www-authenticate") == "Bearer"
            assert tokens["admin"].encode() not in content


def test_rest_scopes_and_models(site: tuple[Endpoints, Tokens]) -> None:
    ep, tokens = site
    lin, reader, writer = tokens.auth("linear_only"), tokens.auth("reader"), tokens.auth("writer")
    assert raw(ep.http, "POST", "/v2/models/linear/infer", lin, infer_body())[0] == 200
    assert raw(ep.http, "GET", "/v2/models/linear/ready", lin)[0] == 200
    for method, path in (("GET", "/v2/models/echo"), ("POST", "/v2/models/echo/infer"),
                         ("GET", "/api/v1/models"), ("POST", "/v2/repository/index")):
        status, _, content = raw(ep.http, method, path, lin, b"{}" if method == "POST" else None)
        assert status == 403, (path, content)
    assert raw(ep.http, "GET", "/api/v1/models", reader)[0] == 200
    assert raw(ep.http, "PUT", "/api/v1/models/linear/aliases/prod", reader, b'{"version": 1}')[0] == 403
    assert raw(ep.http, "PUT", "/api/v1/models/linear/aliases/prod", writer, b'{"version": 1}')[0] == 200
    assert raw(ep.http, "DELETE", "/api/v1/models/echo", writer)[0] == 403
    assert raw(ep.http, "GET", "/api/v1/keys", writer)[0] == 403
    assert raw(ep.http, "GET", "/api/v1/keys", {"Authorization": f"Bearer {ENV_KEY}"})[0] == 200  # MAAS_API_KEY


@pytest.mark.parametrize("path", [
    "/V2/models/echo/infer", "//v2/models/echo/infer", "/v2/models/echo/infer/", "/v2//models/echo/infer",
    "/v2/models/%65cho/infer", "/v2/models/ech%6f/versions/1/infer", "/v2/models/%2565cho/infer",
    "/v2/health/live/../../models/echo/infer", "/v2/health/ready/../../v2/models/echo/infer",
    "/v2/models/echo/infer?x=/v2/health/live", "/v2/models/echo/infer#/v2/health/live",
])
def test_rest_path_tricks_never_bypass(site: tuple[Endpoints, Tokens], path: str) -> None:
    ep, tokens = site
    status, _, content = raw(ep.http, "POST", path, {}, infer_body())
    assert status == 401, content
    status, _, content = raw(ep.http, "POST", path, tokens.auth("linear_only"), infer_body())
    assert status in (403, 404, 400, 307), content  # never served: the key covers lin* only
    assert status != 200


def test_rest_tokens_in_the_query_string_are_refused(site: tuple[Endpoints, Tokens]) -> None:
    ep, tokens = site
    for query in (f"api_key={tokens['admin']}", f"token={tokens['admin']}", f"access_token={ENV_KEY}"):
        status, _, content = raw(ep.http, "GET", f"/api/v1/models?{query}")
        assert status == 401 and b"query string" in content
        status, _, _ = raw(ep.http, "POST", f"/v2/models/linear/infer?{query}", tokens.auth("admin"), infer_body())
        assert status == 401


def test_rest_rate_limit_answers_429_with_retry_after(site: tuple[Endpoints, Tokens]) -> None:
    ep, tokens = site
    slow = tokens.auth("slow_rest")
    assert raw(ep.http, "GET", "/v2/models/linear", slow)[0] == 200
    status, headers, _ = raw(ep.http, "POST", "/v2/models/linear/infer", slow, infer_body())
    assert status == 429 and int(headers["retry-after"]) > 60


def test_tritonclient_http_with_and_without_a_key(site: tuple[Endpoints, Tokens]) -> None:
    ep, tokens = site
    c = httpclient.InferenceServerClient(ep.http)
    try:
        assert c.is_server_live()
        inp = httpclient.InferInput("x", [1, 4], "FP32")
        inp.set_data_from_numpy(X, binary_data=True)
        with pytest.raises(InferenceServerException) as info:
            c.infer("linear", [inp])
        assert "401" in str(info.value.status())
        out = c.infer("linear", [inp], headers=tokens.auth("linear_only"))
        assert out.as_numpy("y").shape == (1, 3)
    finally:
        c.close()


# --- gRPC ---------------------------------------------------------------------------------------------------
def grpc_status(call: Any) -> str:
    with pytest.raises(InferenceServerException) as info:
        call()
    return str(info.value.status())


def grpc_inputs() -> list[grpcclient.InferInput]:
    inp = grpcclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(X)
    return [inp]


def grpc_headers(tokens: Tokens, name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {tokens[name]}"}


def test_grpc_same_rules(site: tuple[Endpoints, Tokens]) -> None:
    ep, tokens = site
    c = grpcclient.InferenceServerClient(ep.grpc)
    try:
        assert c.is_server_live() and c.is_server_ready()
        for headers in bad_credentials(tokens):
            h = {k.lower(): v for k, v in headers.items()}
            assert grpc_status(lambda h=h: c.get_model_metadata("linear", headers=h)) == "StatusCode.UNAUTHENTICATED"
            assert grpc_status(lambda h=h: c.infer("linear", grpc_inputs(), headers=h)) == "StatusCode.UNAUTHENTICATED"
        lin = grpc_headers(tokens, "linear_only")
        assert c.infer("linear", grpc_inputs(), headers=lin).as_numpy("y").shape == (1, 3)
        assert c.is_model_ready("linear", headers=lin)
        denied = "StatusCode.PERMISSION_DENIED"
        assert grpc_status(lambda: c.get_model_metadata("echo", headers=lin)) == denied
        assert grpc_status(lambda: c.infer("echo", grpc_inputs(), headers=lin)) == denied
        assert grpc_status(lambda: c.get_model_repository_index(headers=lin)) == denied
        assert grpc_status(lambda: c.load_model("linear", headers=grpc_headers(tokens, "reader"))) == denied
        c.load_model("linear", headers=grpc_headers(tokens, "writer"))
        assert c.get_model_repository_index(headers=grpc_headers(tokens, "reader")) is not None
        slow = grpc_headers(tokens, "slow_grpc")
        assert c.get_model_metadata("linear", headers=slow)
        assert grpc_status(lambda: c.get_model_metadata("linear", headers=slow)) == "StatusCode.RESOURCE_EXHAUSTED"
    finally:
        c.close()


def test_grpc_rate_limit_says_when_to_retry(site: tuple[Endpoints, Tokens]) -> None:
    import grpc

    from maas.protocol.grpc_gen import inference_pb2 as pb

    ep, tokens = site
    metadata = (("authorization", f"Bearer {tokens['slow_raw']}"),)
    with grpc.insecure_channel(ep.grpc) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelMetadata")
        request = pb.ModelMetadataRequest(name="linear").SerializeToString()
        call(request, metadata=metadata, timeout=10)
        with pytest.raises(grpc.RpcError) as info:
            call(request, metadata=metadata, timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert int(dict(info.value.trailing_metadata())["retry-after"]) > 60


# --- keys API, SDK, audit -----------------------------------------------------------------------------------
def test_keys_api_through_the_sdk_and_the_audit_log(site: tuple[Endpoints, Tokens]) -> None:
    ep, tokens = site
    with Client(ep.base_url, api_key=tokens["admin"]) as admin:
        made = admin.create_key("ci", "infer", models=["linear"], expires="1d", rate="100/s")
        assert made["token"].startswith("maas_") and made["scope"] == "infer" and made["models"] == ["linear"]
        assert raw(ep.http, "GET", "/v2/models/linear", {"Authorization": f"Bearer {made['token']}"})[0] == 200
        listed = {k["id"]: k for k in admin.list_keys()}
        assert "token" not in listed[made["id"]] and listed[tokens["revoked.id"]]["state"] == "revoked"
        admin.revoke_key(made["id"])
        assert raw(ep.http, "GET", "/v2/models/linear", {"Authorization": f"Bearer {made['token']}"})[0] == 401
        entries = admin.audit(limit=1000)
    with Client(ep.base_url, api_key=tokens["writer"]) as writer, pytest.raises(PermissionDenied):
        writer.list_keys()
    with Client(ep.base_url, api_key="nope") as nobody, pytest.raises(Unauthenticated):
        nobody.audit()
    actions = {(e["actor"], e["action"], e["outcome"]) for e in entries}
    writer_actor = f"writer ({tokens['writer.id']})"
    assert (writer_actor, "PUT /api/v1/models/linear/aliases/prod", "200") in actions
    assert (f"reader ({tokens['reader.id']})", "PUT /api/v1/models/linear/aliases/prod", "403") in actions
    assert (writer_actor, "grpc RepositoryModelLoad", "OK") in actions
    assert (f"admin ({tokens['admin.id']})", f"DELETE /api/v1/keys/{made['id']}", "200") in actions
    assert all(e["source"].startswith(("127.0.0.1", "ipv4:127.0.0.1")) for e in entries if e["actor"] != "unknown")


def test_logs_never_hold_tokens_keys_or_tensor_values(site: tuple[Endpoints, Tokens], logs: Capture) -> None:
    ep, tokens = site
    raw(ep.http, "POST", "/v2/models/linear/infer", tokens.auth("admin"), infer_body())
    raw(ep.http, "POST", f"/v2/models/linear/infer?api_key={tokens['admin']}", {}, infer_body())
    raw(ep.http, "POST", "/v2/models/linear/infer", {"Authorization": "Bearer " + tokens["admin"] + "x"}, b"{bad")
    text = "\n".join(logs.lines)
    assert "access" in text or logs.lines  # the server did log these requests
    secrets = [v for k, v in tokens.items() if not k.endswith(".id")] + [ENV_KEY]
    for secret in secrets:
        assert secret not in text
        if secret.startswith("maas_"):
            assert secret[18:] not in text  # nor the random part alone
    assert str(MARK) not in text and "4242" not in text


def _access_line(logs: Capture, rid: str) -> str:
    [line] = [ln for ln in logs.lines if f"request_id={rid} " in ln]
    return line


def test_access_lines_carry_the_key_id_and_both_sizes_never_the_token(
    site: tuple[Endpoints, Tokens], logs: Capture
) -> None:
    ep, tokens = site
    body = infer_body()
    status, _, answer = raw(ep.http, "POST", "/v2/models/linear/infer",
                            {**tokens.auth("linear_only"), "X-Request-ID": "sized-rest"}, body)
    assert status == 200
    line = _access_line(logs, "sized-rest")
    assert f"key={tokens['linear_only.id']} " in line and tokens["linear_only"] not in line
    assert f"request_bytes={len(body)} response_bytes={len(answer)}" in line
    status, _, _ = raw(ep.http, "POST", "/v2/models/linear/infer", {"X-Request-ID": "sized-nokey"}, body)
    assert status == 401
    assert "key=- " in _access_line(logs, "sized-nokey")

    client = grpcclient.InferenceServerClient(ep.grpc)
    inp = grpcclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(X)
    client.infer("linear", [inp], headers={"authorization": f"Bearer {tokens['admin']}", "x-request-id": "sized-grpc"})
    line = _access_line(logs, "sized-grpc")
    assert f"key={tokens['admin.id']} " in line and tokens["admin"] not in line
    sizes = dict(part.split("=") for part in line.split() if part.endswith(tuple("0123456789")) and "bytes=" in part)
    assert int(sizes["request_bytes"]) > 16 and int(sizes["response_bytes"]) > 3 * 4  # the messages, not 0
