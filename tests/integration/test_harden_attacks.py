"""A hostile client against the real server (REST on a socket, gRPC, control API): each class of attack the
hardening issue found, answered with a 4xx JSON error (or a gRPC status) from maas, never a 500 or a hang."""

from __future__ import annotations

import pickle
from pathlib import Path

import httpx
import pytest


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


class WritesAFile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",)


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},  # what a browser sends for a page's form
    {},  # the same form, as a script without browser headers would send it
    {"X-Requested-With": "x"},  # not cross-site, but trust is still never granted without an admin key
])
def test_cross_site_pickle_upload_runs_nothing(http, tmp_path: Path, headers: dict[str, str]) -> None:
    marker = tmp_path / "pwned.txt"
    r = http.post("/api/v1/models/x/versions", data={"trust": "true"}, headers=headers,
                  files={"file": ("model.pkl", pickle.dumps(WritesAFile(marker)), "application/octet-stream")})
    assert r.status_code == 403 and r.json()["error"], r.text
    assert r.headers["x-request-id"]
    assert not marker.exists()
    assert http.get("/api/v1/models/x").status_code == 404


def test_cross_site_state_changes_are_refused(http) -> None:
    evil = {"Origin": "http://evil.example"}
    assert http.post("/v2/repository/models/linear/unload", headers=evil).status_code == 403
    assert http.post("/api/v1/versions/linear:1/archive", headers=evil).status_code == 403
    assert http.post("/api/v1/versions/linear:1/archive").status_code == 403  # no custom header
    assert http.post("/api/v1/jobs", json={"kind": "evaluate", "params": {}}, headers=evil).status_code == 403
    assert http.get("/v2/models/linear/ready").status_code == 200


# --- 500s that are 400s: digits that are not ASCII, NaN parameters, broken archives, deep JSON ------------

SUPERSCRIPT_TWO = "%C2%B2"  # '²': str.isdigit() says yes, int() says no
ROW = {"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}


def assert_400(resp, fragment: str = "") -> None:
    assert resp.status_code == 400, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    assert fragment in resp.json()["error"]


@pytest.mark.parametrize("method,path", [
    ("GET", f"/v2/models/linear/versions/{SUPERSCRIPT_TWO}"),
    ("GET", f"/v2/models/linear/versions/{SUPERSCRIPT_TWO}/ready"),
    ("GET", f"/v2/models/linear/versions/{SUPERSCRIPT_TWO}/config"),
    ("POST", f"/v2/models/linear/versions/{SUPERSCRIPT_TWO}/infer"),
    ("POST", f"/v1/models/linear/versions/{SUPERSCRIPT_TWO}:predict"),
    ("GET", f"/api/v1/versions/linear:{SUPERSCRIPT_TWO}"),
    ("GET", "/api/v1/versions/linear:%D9%A3"),  # Arabic-Indic three
    ("GET", f"/api/v1/versions/linear:1{SUPERSCRIPT_TWO}/artifacts/model.onnx"),
])
def test_versions_in_digits_that_are_not_ascii(http, method: str, path: str) -> None:
    body = {"inputs": [ROW]} if "infer" in path else {"instances": [[1, 2, 3, 4]]}
    resp = http.request(method, path, json=body if method == "POST" else None)
    assert_400(resp)


def test_other_numbers_from_the_wire(http, tmp_path: Path) -> None:
    doc = {"inputs": [ROW]}
    raw = httpx.Request("POST", "/", json=doc).content
    two = {"Inference-Header-Content-Length": "²".encode()}
    assert_400(http.post("/v2/models/linear/infer", content=raw, headers=two), "Inference-Header-Content-Length")
    out = {"inputs": [ROW], "outputs": [{"name": "y", "parameters": {"classification": "²"}}]}
    assert_400(http.post("/v2/models/linear/infer", json=out), "classification")
    for bad in ("NaN", "Infinity", "-Infinity", "1e300", "0", "-5"):
        resp = http.post("/v2/models/linear/infer", content=b'{"parameters": {"timeout": %s}, "inputs": [%s]}'
                         % (bad.encode(), httpx.Request("POST", "/", json=ROW).content))
        assert_400(resp, "timeout")
    assert http.post("/v2/models/linear/infer", json={"parameters": {"timeout": 5_000_000}, **doc}).status_code == 200
    resp = http.post("/api/v1/models/up/versions", headers={"X-Requested-With": "x"},
                     data={"max_batch_size": "²"}, files={"file": ("m.onnx", b"x")})
    assert_400(resp, "invalid version")


def test_deep_json_in_upload_fields_and_control_bodies(http) -> None:
    resp = http.post("/api/v1/models/up/versions", headers={"X-Requested-With": "x"},
                     data={"labels": "[" * 30_000}, files={"file": ("m.onnx", b"x")})
    assert_400(resp, "nests deeper")
    for method, path in (("PATCH", "/api/v1/models/linear"), ("PUT", "/api/v1/models/linear/aliases/prod"),
                         ("PATCH", "/api/v1/versions/linear:1/tags"), ("POST", "/api/v1/jobs")):
        resp = http.request(method, path, content=b"[ " * 30_000, headers={"content-type": "application/json"})
        assert_400(resp, "nests deeper")


def test_broken_archives_over_the_control_api(server, tmp_path: Path) -> None:
    from maas import Client
    from maas.errors import InvalidArgument
    from maas.testing import hostile_archives

    with Client(server.base_url) as client:
        for filename, (data, fragment) in hostile_archives.cases().items():
            path = tmp_path / filename
            path.write_bytes(data)
            with pytest.raises(InvalidArgument, match=fragment):
                client.import_file(path, name="broken")
        nested: list = []
        for _ in range(100):
            nested = [nested]
        with pytest.raises(InvalidArgument, match="nests deeper"):
            client.import_file(tmp_path / "bad-crc.zip", name="broken", labels=nested)


def test_grpc_numbers(server) -> None:
    import grpc

    from maas.protocol.grpc_gen import inference_pb2 as pb

    with grpc.insecure_channel(server.grpc) as channel:
        def call(method: str, message, response_type):
            return channel.unary_unary(f"/inference.GRPCInferenceService/{method}",
                                       request_serializer=lambda m: m.SerializeToString(),
                                       response_deserializer=response_type.FromString)(message)

        for method, message, reply in (
            ("ModelReady", pb.ModelReadyRequest(name="linear", version="²"), pb.ModelReadyResponse),
            ("ModelMetadata", pb.ModelMetadataRequest(name="linear", version="²"), pb.ModelMetadataResponse),
            ("ModelConfig", pb.ModelConfigRequest(name="linear", version="²"), pb.ModelConfigResponse),
        ):
            with pytest.raises(grpc.RpcError) as err:
                call(method, message, reply)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method

        def infer(**kw) -> pb.ModelInferRequest:
            req = pb.ModelInferRequest(model_name="linear", **kw)
            t = req.inputs.add(name="x", datatype="FP32", shape=[1, 4])
            t.contents.fp32_contents.extend([1, 2, 3, 4])
            return req

        bad = [infer(model_version="²")]
        for value in (float("nan"), float("inf"), -1.0, 0.0):
            req = infer()
            req.parameters["timeout"].double_param = value
            bad.append(req)
        req = infer()
        req.outputs.add(name="y").parameters["classification"].string_param = "²"
        bad.append(req)
        for req in bad:
            with pytest.raises(grpc.RpcError) as err:
                call("ModelInfer", req, pb.ModelInferResponse)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (req, err.value.details())
        req = infer()
        req.parameters["timeout"].double_param = 5e6
        assert call("ModelInfer", req, pb.ModelInferResponse).model_name == "linear"


# --- names: a trailing newline (or any control character) is never part of a valid name ------------------

BAD_ENDINGS = ["%0A", "%0D", "%0D%0A", "%09", "%00", "%0B", "%C2%85", "%E2%80%A8"]


@pytest.mark.parametrize("end", BAD_ENDINGS)
def test_names_with_control_characters_on_rest(http, end: str) -> None:
    doc = {"inputs": [ROW]}
    for method, path, body in (
        ("GET", f"/v2/models/linear{end}", None),
        ("GET", f"/v2/models/linear{end}/ready", None),
        ("POST", f"/v2/models/linear{end}/infer", doc),
        ("GET", f"/v2/models/linear/versions/prod{end}", None),
        ("POST", f"/v1/models/linear{end}:predict", {"instances": [[1, 2, 3, 4]]}),
        ("GET", f"/api/v1/models/linear{end}", None),
        ("GET", f"/api/v1/versions/linear{end}", None),
        ("GET", f"/api/v1/versions/linear@prod{end}", None),
        ("GET", f"/api/v1/versions/linear:1{end}", None),
        ("PUT", f"/api/v1/models/linear/aliases/prod{end}", {"version": 1}),
        ("PUT", f"/api/v1/models/linear{end}/aliases/prod", {"version": 1}),
        ("PATCH", f"/api/v1/models/linear{end}", {"description": "d"}),
        ("DELETE", f"/api/v1/models/linear{end}", None),
    ):
        resp = http.request(method, path, json=body)
        assert resp.status_code == 400, (method, path, resp.status_code, resp.text)
    resp = http.post(f"/api/v1/models/mlp{end}/versions", headers={"X-Requested-With": "x"},
                     files={"file": ("m.onnx", b"x")})
    assert resp.status_code == 400, resp.text
    from urllib.parse import unquote

    key = f"k{unquote(end)}"
    for method, path, body in (("PATCH", "/api/v1/versions/linear:1/tags", {"tags": {key: "v"}}),
                               ("PATCH", "/api/v1/models/linear", {"tags": {key: "v"}})):
        assert http.request(method, path, json=body).status_code == 400
    assert "k" not in http.get("/api/v1/versions/linear:1").json()["tags"]
    assert [m["name"] for m in http.get("/api/v1/models").json()] == ["echo", "linear"]


def test_names_with_control_characters_over_grpc_and_the_sdk(server) -> None:
    import grpc

    from maas import Client
    from maas.errors import InvalidArgument
    from maas.protocol.grpc_gen import inference_pb2 as pb

    with grpc.insecure_channel(server.grpc) as channel:
        ready = channel.unary_unary("/inference.GRPCInferenceService/ModelReady",
                                    request_serializer=pb.ModelReadyRequest.SerializeToString,
                                    response_deserializer=pb.ModelReadyResponse.FromString)
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=pb.ModelInferRequest.SerializeToString,
                                    response_deserializer=pb.ModelInferResponse.FromString)
        for end in ("\n", "\r\n", "\x00", "\u2028"):
            with pytest.raises(grpc.RpcError) as err:
                ready(pb.ModelReadyRequest(name=f"linear{end}"))
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            req = pb.ModelInferRequest(model_name=f"linear{end}")
            req.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend([1, 2, 3, 4])
            with pytest.raises(grpc.RpcError) as err:
                infer(req)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            req.model_name, req.model_version = "linear", f"prod{end}"
            with pytest.raises(grpc.RpcError) as err:
                infer(req)
            assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with Client(server.base_url) as client:
        for call in (lambda: client.get("linear\n"), lambda: client.set_alias("linear", "prod\n", 1),
                     lambda: client.tag("linear:1", {"k\n": "v"}), lambda: client.get_model("linear\n")):
            with pytest.raises(InvalidArgument):
                call()


# --- unbounded reads: headers (431) and bodies capped while they stream (413), chunked included -----------


def _exchange(target: str, head: bytes, chunks=(), timeout: float = 20.0) -> bytes:
    """Send `head` then `chunks` over a raw socket until the server answers; the first response's bytes."""
    import select
    import socket

    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        answer = b""

        def readable() -> bool:
            return bool(select.select([sock], [], [], 0)[0])

        try:
            for piece in (head, *chunks):
                for i in range(0, len(piece), 1 << 16):
                    sock.sendall(piece[i:i + (1 << 16)])
                    if readable():
                        raise StopIteration
        except (StopIteration, BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(timeout)
        try:
            while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
                data = sock.recv(1 << 16)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
        return answer


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return int(value)
    return 0


def _status(answer: bytes) -> int:
    assert answer.startswith(b"HTTP/1.1 "), answer[:200]
    return int(answer[9:12])


def _json_body(answer: bytes) -> dict:
    import json

    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("headers", [
    b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4096) for i in range(500)),  # 500 headers of 4 KiB
    b"X-Big: " + b"v" * (1 << 20) + b"\r\n",  # one 1 MiB header
    b"".join(b"X-N%d: 1\r\n" % i for i in range(150)),  # many small ones
])
def test_oversized_request_heads_are_431(server, headers: bytes) -> None:
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Request-ID: big-head\r\n" + headers + b"\r\n"
    answer = _exchange(server.http, head)
    assert _status(answer) == 431
    assert "header" in _json_body(answer)["error"]


def test_a_header_that_never_ends_is_cut_short(server) -> None:
    head = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Endless: "
    answer = _exchange(server.http, head, [b"v" * (1 << 20)] * 64)  # 64 MiB offered, refused at 64 KiB
    assert _status(answer) == 431


def test_normal_heads_still_pass(http) -> None:
    assert http.get("/v2/health/live", headers={f"X-H{i}": "v" * 100 for i in range(50)}).status_code == 200


@pytest.mark.parametrize("method,path", [
    ("PATCH", "/api/v1/models/linear"), ("PUT", "/api/v1/models/linear/aliases/prod"),
    ("PATCH", "/api/v1/versions/linear:1/tags"), ("POST", "/api/v1/jobs"),
    ("POST", "/v2/models/linear/infer"), ("POST", "/v1/models/linear:predict"),
    ("POST", "/v2/repository/models/linear/load"),
])
def test_chunked_bodies_are_capped_while_they_stream(server, method: str, path: str) -> None:
    head = (f"{method} {path} HTTP/1.1\r\nHost: {server.http}\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    answer = _exchange(server.http, head, [piece] * 256)  # 256 MiB offered
    assert _status(answer) == 413, answer[:300]
    assert "limit" in _json_body(answer)["error"]


def test_declared_control_bodies_over_the_limit_are_413_before_reading(server) -> None:
    head = (f"PATCH /api/v1/models/linear HTTP/1.1\r\nHost: {server.http}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {256 << 20}\r\n\r\n").encode()
    assert _status(_exchange(server.http, head)) == 413


def test_a_multipart_body_to_a_json_route_is_capped_too(server) -> None:
    head = (f"PATCH /api/v1/models/linear HTTP/1.1\r\nHost: {server.http}\r\n"
            "Content-Type: multipart/form-data; boundary=x\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    piece = b"%x\r\n%s\r\n" % (1 << 20, b" " * (1 << 20))
    assert _status(_exchange(server.http, head, [piece] * 64)) == 413
