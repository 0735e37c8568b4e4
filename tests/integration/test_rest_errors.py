"""Raw HTTP against the v2 routes: every client error is a 4xx with an `{"error": ...}` body."""

import json

import httpx
import pytest

from .conftest import MAX_REQUEST_BYTES


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def infer_body(**overrides):
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}], **overrides}
    return json.dumps(doc).encode()


def assert_error(resp, status, fragment):
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert set(body) == {"error"}
    assert fragment in body["error"]


def test_plain_json_infer_works(http):
    resp = http.post("/v2/models/linear/infer", content=infer_body(id="abc"))
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["id"] == "abc" and doc["model_name"] == "linear"
    assert [o["name"] for o in doc["outputs"]] == ["y", "label"]


def test_malformed_json(http):
    assert_error(http.post("/v2/models/linear/infer", content=b'{"inputs": ['), 400, "not valid JSON")


def test_pathological_nesting(http):
    assert_error(http.post("/v2/models/linear/infer", content=b"[" * 200_000), 400, "nests")


def test_header_length_beyond_body(http):
    resp = http.post(
        "/v2/models/linear/infer", content=infer_body(), headers={"Inference-Header-Content-Length": "999999"}
    )
    assert_error(resp, 400, "Inference-Header-Content-Length")


def test_binary_size_beyond_body(http):
    header = json.dumps(
        {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [1, 4], "parameters": {"binary_data_size": 64}}
            ]
        }
    ).encode()
    resp = http.post(
        "/v2/models/linear/infer",
        content=header + b"\0" * 16,
        headers={
            "Inference-Header-Content-Length": str(len(header)),
            "Content-Type": "application/octet-stream",
        },
    )
    assert_error(resp, 400, "past the end")


def test_over_the_limit_by_content_length(http):
    resp = http.post("/v2/models/linear/infer", content=b" " * (MAX_REQUEST_BYTES + 1))
    assert_error(resp, 413, "exceeds the limit of 1048576 bytes set by MAAS_MAX_REQUEST_BYTES")


def test_over_the_limit_while_streaming(http):
    def chunks():
        for _ in range(40):
            yield b" " * 65536  # no Content-Length: chunked transfer encoding

    assert_error(http.post("/v2/models/linear/infer", content=chunks()), 413, "exceeds the limit")


def test_unknown_model_is_404(http):
    assert_error(http.get("/v2/models/nope"), 404, "nope")
    assert_error(http.post("/v2/models/nope/infer", content=infer_body()), 404, "nope")
    assert_error(http.get("/v2/models/linear/versions/7/config"), 404, "linear")


def test_wrong_input_name_and_shape(http):
    bad = {"inputs": [{"name": "q", "datatype": "FP32", "shape": [1], "data": [1]}]}
    assert_error(http.post("/v2/models/linear/infer", json=bad), 400, "unknown input")
    bad = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1]}]}
    assert_error(http.post("/v2/models/linear/infer", json=bad), 400, "does not match")


def test_load_with_config_override_is_refused(http):
    assert_error(
        http.post("/v2/repository/models/linear/load", json={"parameters": {"config": "{}"}}),
        400,
        "not supported",
    )


def test_health_and_metadata(http):
    assert http.get("/v2/health/live").status_code == 200
    assert http.get("/v2/health/ready").status_code == 200
    md = http.get("/v2").json()
    assert "binary_tensor_data" in md["extensions"]
    assert http.get("/v2/models/linear/versions/1/ready").json() == {"name": "linear", "ready": True}


def test_stats_of_unknown_models_are_404(http):
    assert http.get("/v2/models/linear/stats").json()["model_stats"][0]["name"] == "linear"
    assert_error(http.get("/v2/models/nosuch/stats"), 404, "not found")
    assert_error(http.get("/v2/models/linear/versions/x/stats"), 400, "version")
