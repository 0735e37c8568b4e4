"""Prometheus /metrics on the live server: request, latency and batch metrics appear once requests ran."""

import json

import httpx
import pytest


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        yield client


def infer(http, model="linear"):
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2, 4], "data": [1, 2, 3, 4, 5, 6, 7, 8]}]}
    return http.post(f"/v2/models/{model}/infer", content=json.dumps(doc).encode())


def samples(text):
    """metric line -> value, for the sample lines of the exposition format."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_metrics_report_requests_latency_and_batches(http):
    assert infer(http).status_code == 200
    assert infer(http, "no-such-model").status_code == 404
    resp = http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    values = samples(resp.text)
    ok = 'maas_inference_requests_total{model="linear",outcome="ok",protocol="rest",version="1"}'
    assert values[ok] >= 1
    assert any(k.startswith("maas_inference_requests_total{") and 'outcome="not_found"' in k for k in values)
    assert values['maas_inference_request_seconds_count{model="linear",protocol="rest",version="1"}'] >= 1
    assert values['maas_inference_batch_size_count{model="linear",version="1"}'] >= 1
    assert values['maas_inference_batch_size_sum{model="linear",version="1"}'] >= 2  # rows, not requests
    assert values['maas_inference_compute_seconds_count{model="linear",version="1"}'] >= 1
    assert values['maas_inference_queue_seconds_count{model="linear",version="1"}'] >= 1
    assert 'maas_inference_queue_depth{model="linear",version="1"}' in values
    assert values["maas_models_loaded"] >= 1
