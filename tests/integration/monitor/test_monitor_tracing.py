"""OpenTelemetry spans of real requests (REST and gRPC), caught by the SDK's in-memory exporter."""

import socket
import time

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from maas.monitor.tracing import wanted

from ..conftest import make_settings, serving

STAGES = {"receive", "decode", "queue wait", "batch", "infer", "encode"}


@pytest.fixture(scope="module")
def spans(tmp_path_factory):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the server uses an SDK provider already set, as an app's would be
    with serving(make_settings(tmp_path_factory.mktemp("trace"), tracing=True)) as endpoints:
        yield endpoints, exporter


def _by_trace(exporter, request_id):
    roots = [s for s in exporter.get_finished_spans()
             if s.name == "inference" and s.attributes["maas.request_id"] == request_id]
    assert len(roots) == 1
    root = roots[0]
    children = [s for s in exporter.get_finished_spans()
                if s.parent is not None and s.parent.span_id == root.context.span_id]
    return root, {s.name: s for s in children}


def test_rest_request_spans(spans):
    endpoints, exporter = spans
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": list(range(8))}]}
    r = httpx.post(f"{endpoints.base_url}/v2/models/linear/infer", json=body, headers={"x-request-id": "t-rest"})
    assert r.status_code == 200
    root, children = _by_trace(exporter, "t-rest")
    assert set(children) == STAGES
    assert root.attributes["maas.model"] == "linear" and root.attributes["maas.version"] == "1"
    assert root.attributes["maas.protocol"] == "rest"
    assert children["batch"].attributes["maas.batch_size"] == 2
    for child in children.values():
        assert root.start_time <= child.start_time <= child.end_time <= root.end_time, child.name
        assert child.attributes["maas.request_id"] == "t-rest"
    assert children["infer"].start_time >= children["batch"].start_time
    assert children["queue wait"].end_time <= children["batch"].start_time + 1


def test_grpc_request_spans_and_errors(spans):
    endpoints, exporter = spans
    client = grpcclient.InferenceServerClient(endpoints.grpc)
    try:
        inp = grpcclient.InferInput("x", [1, 4], "FP32")
        inp.set_data_from_numpy(np.ones((1, 4), dtype=np.float32))
        client.infer("linear", [inp], headers={"x-request-id": "t-grpc"})
    finally:
        client.close()
    root, children = _by_trace(exporter, "t-grpc")
    assert root.attributes["maas.protocol"] == "grpc" and {"decode", "queue wait", "batch", "infer"} <= set(children)
    r = httpx.post(f"{endpoints.base_url}/v2/models/nosuch/infer", json={"inputs": []},
                   headers={"x-request-id": "t-bad"})
    assert r.status_code in (400, 404)
    bad, _ = _by_trace(exporter, "t-bad")
    assert bad.status.status_code == trace.StatusCode.ERROR


def _wait_root(exporter, request_id, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        roots = [s for s in exporter.get_finished_spans()
                 if s.name == "inference" and s.attributes["maas.request_id"] == request_id]
        if roots:
            return roots
        time.sleep(0.05)
    raise AssertionError(f"no span for {request_id}")


def test_a_client_gone_before_its_body_arrived_still_leaves_an_error_span(spans):
    endpoints, exporter = spans
    host, port = endpoints.http.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(b"POST /v2/models/linear/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"X-Request-ID: t-gone\r\nContent-Length: 1000\r\n\r\n{\"inputs\": [")
        time.sleep(0.2)
    [root] = _wait_root(exporter, "t-gone")
    assert root.status.status_code == trace.StatusCode.ERROR and root.status.description == "client_gone"
    assert root.attributes["maas.model"] == "linear"


def test_off_unless_asked():
    assert not wanted({}, False)
    assert wanted({}, True)
    assert wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, False)
    assert wanted({"OTEL_TRACES_EXPORTER": "otlp"}, False)
    assert not wanted({"OTEL_TRACES_EXPORTER": "none"}, True)
    assert not wanted({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, True)
