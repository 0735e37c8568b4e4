"""Request ids: X-Request-ID is echoed (or generated) on every response, and each inference is logged once,
at INFO on `maas.access`, with its id, model, version, outcome and latency."""

import json
import logging
import re

import httpx
import pytest

BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def access_lines(caplog, rid):
    return [r for r in caplog.records if r.name == "maas.access" and f"request_id={rid} " in r.getMessage()]


def test_client_request_id_is_echoed_and_logged(http, caplog):
    caplog.set_level(logging.INFO, logger="maas.access")
    resp = http.post("/v2/models/linear/infer", content=BODY, headers={"X-Request-ID": "trace-42"})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "trace-42"
    [record] = access_lines(caplog, "trace-42")
    assert record.levelno == logging.INFO
    message = record.getMessage()
    assert "model=linear" in message and "version=1" in message and "outcome=ok" in message
    assert re.search(r"latency_ms=\d+\.\d+", message)


def test_request_id_is_generated_when_absent(http, caplog):
    caplog.set_level(logging.INFO, logger="maas.access")
    first = http.post("/v2/models/linear/infer", content=BODY)
    second = http.post("/v2/models/linear/infer", content=BODY)
    ids = {first.headers["x-request-id"], second.headers["x-request-id"]}
    assert len(ids) == 2 and all(ids)
    for rid in ids:
        assert len(access_lines(caplog, rid)) == 1


def test_failed_inference_logs_its_outcome(http, caplog):
    caplog.set_level(logging.INFO, logger="maas.access")
    resp = http.post("/v2/models/no-such-model/infer", content=BODY, headers={"X-Request-ID": "missing-1"})
    assert resp.status_code == 404 and set(resp.json()) == {"error"}
    assert resp.headers["x-request-id"] == "missing-1"
    [record] = access_lines(caplog, "missing-1")
    assert "outcome=not_found" in record.getMessage() and "status=404" in record.getMessage()


def test_unprintable_request_id_is_replaced(http):
    resp = http.post("/v2/models/linear/infer", content=BODY, headers={"X-Request-ID": "x" * 500})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] != "x" * 500


def test_other_routes_echo_the_request_id(http):
    resp = http.get("/v2/health/ready", headers={"X-Request-ID": "probe-7"})
    assert resp.status_code == 200 and resp.headers["x-request-id"] == "probe-7"
    assert http.get("/v2/models/linear").headers["x-request-id"]


def test_grpc_inference_gets_a_request_id_and_one_log_line(server, caplog):
    import grpc
    import numpy as np

    from maas.protocol.grpc_gen import inference_pb2 as pb

    caplog.set_level(logging.INFO, logger="maas.access")
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    req = pb.ModelInferRequest(model_name="linear", inputs=[
        pb.ModelInferRequest.InferInputTensor(name="x", datatype="FP32", shape=[1, 4])
    ], raw_input_contents=[x.tobytes()])
    with grpc.insecure_channel(server.grpc) as channel:
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                    request_serializer=pb.ModelInferRequest.SerializeToString,
                                    response_deserializer=pb.ModelInferResponse.FromString)
        _, call = infer.with_call(req, metadata=(("x-request-id", "grpc-7"),))
        assert ("x-request-id", "grpc-7") in tuple(call.trailing_metadata())
        with pytest.raises(grpc.RpcError) as info:
            ghost = pb.ModelInferRequest()
            ghost.CopyFrom(req)
            ghost.model_name = "ghost"
            infer(ghost, metadata=(("x-request-id", "grpc-8"),))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND
    [ok] = access_lines(caplog, "grpc-7")
    assert "protocol=grpc" in ok.getMessage() and "version=1" in ok.getMessage() and "outcome=ok" in ok.getMessage()
    [missing] = access_lines(caplog, "grpc-8")
    assert "outcome=not_found" in missing.getMessage() and "status=NOT_FOUND" in missing.getMessage()


def test_a_failed_inference_is_logged_with_the_version_metrics_label(http, caplog):
    caplog.set_level(logging.INFO, logger="maas.access")
    bad = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]}]})
    resp = http.post("/v2/models/linear/infer", content=bad, headers={"X-Request-ID": "bad-shape-1"})
    assert resp.status_code == 400
    [record] = access_lines(caplog, "bad-shape-1")
    assert "version=1 " in record.getMessage() and "outcome=invalid_argument" in record.getMessage()
    metrics = http.get("/metrics").text
    assert 'model="linear",outcome="invalid_argument",protocol="rest",version="1"' in metrics


def test_v1_predict_requests_are_logged_even_when_they_fail(http, caplog):
    caplog.set_level(logging.INFO, logger="maas.access")
    ok = http.post("/v1/models/linear:predict", json={"instances": [[1, 2, 3, 4]]}, headers={"X-Request-ID": "v1-ok"})
    bad = http.post("/v1/models/linear:predict", json={"instances": [[1, 2]]}, headers={"X-Request-ID": "v1-bad"})
    assert (ok.status_code, bad.status_code) == (200, 400)
    [good] = access_lines(caplog, "v1-ok")
    assert "model=linear version=1 outcome=ok status=200" in good.getMessage()
    [failed] = access_lines(caplog, "v1-bad")
    assert "model=linear version=1 outcome=invalid_argument status=400" in failed.getMessage()


def test_every_route_passes_the_edge_but_probes_are_not_logged(http, caplog):
    caplog.set_level(logging.INFO, logger="maas.access")
    assert http.get("/api/v1/models", headers={"X-Request-ID": "ctl-1"}).headers["x-request-id"] == "ctl-1"
    http.get("/v2/health/live", headers={"X-Request-ID": "probe-1"})
    [control] = access_lines(caplog, "ctl-1")
    assert "outcome=ok status=200" in control.getMessage()
    assert access_lines(caplog, "probe-1") == []


@pytest.mark.parametrize("cookie", [None, "theme=dark"], ids=["direct", "layered"])
def test_the_infer_route_answers_alike_with_and_without_a_cookie(http, caplog, cookie):
    """A request with a cookie takes the layered way (the console gate may act on it), any other the edge's
    direct way to the infer route: one request id each, and the same log line."""
    caplog.set_level(logging.INFO, logger="maas.access")
    headers = {"Cookie": cookie} if cookie else {}
    cases = [("ok", BODY, 200, "outcome=ok"), ("ghost", BODY, 404, "outcome=not_found"),
             ("big", b"0" * (1024 * 1024 + 1), 413, "outcome=invalid_argument")]
    for name, body, status, outcome in cases:
        rid = f"way-{name}-{bool(cookie)}"
        model = "ghost" if name == "ghost" else "linear"
        resp = http.post(f"/v2/models/{model}/infer", content=body, headers={**headers, "X-Request-ID": rid})
        assert resp.status_code == status
        assert resp.headers.get_list("x-request-id") == [rid]
        [record] = access_lines(caplog, rid)
        read = 0 if status == 413 else len(body)  # refused on its declared size, before a byte is read
        assert f"{outcome} status={status} " in record.getMessage()
        assert f"request_bytes={read} response_bytes={len(resp.content)}" in record.getMessage()
