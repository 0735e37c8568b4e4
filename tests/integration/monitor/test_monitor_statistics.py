"""Triton's statistics extension through tritonclient (HTTP and gRPC) against the real server."""

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from ..conftest import make_settings, serving
from ..models import LINEAR_X as X


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory):
    with serving(make_settings(tmp_path_factory.mktemp("stats"))) as e:
        yield e


def _infer_http(client, n):
    for _ in range(n):
        inp = httpclient.InferInput("x", list(X.shape), "FP32")
        inp.set_data_from_numpy(X)
        client.infer("linear", [inp])


def test_http_statistics_count_requests(endpoints):
    with httpclient.InferenceServerClient(endpoints.http) as client:
        before = client.get_inference_statistics("linear")["model_stats"][0]
        _infer_http(client, 3)
        stats = client.get_inference_statistics("linear", "1")["model_stats"]
    assert len(stats) == 1
    s = stats[0]
    assert (s["name"], s["version"]) == ("linear", "1")
    assert s["inference_stats"]["success"]["count"] - before["inference_stats"]["success"]["count"] == 3
    assert s["inference_count"] - before["inference_count"] == 3 * len(X)  # rows, as Triton counts
    assert s["execution_count"] >= 1
    for stage in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
        assert s["inference_stats"][stage]["count"] >= 3
        assert s["inference_stats"][stage]["ns"] > 0
    assert s["inference_stats"]["fail"]["count"] == 0
    assert s["last_inference"] > 1_600_000_000_000  # milliseconds since the epoch
    sizes = {b["batch_size"]: b for b in s["batch_stats"]}
    assert sum(b["compute_infer"]["count"] for b in sizes.values()) == s["execution_count"]
    assert all(size % len(X) == 0 for size in sizes)


def test_all_models_and_failures(endpoints):
    with httpclient.InferenceServerClient(endpoints.http) as client:
        bad = httpclient.InferInput("x", [2, 4], "FP32")
        bad.set_data_from_numpy(np.full((2, 4), np.nan, dtype=np.float32))
        client.infer("linear", [bad])  # NaN is a valid float: still a success
        everything = client.get_inference_statistics()["model_stats"]
        assert {(m["name"], m["version"]) for m in everything} >= {("linear", "1"), ("echo", "1")}
        with pytest.raises(InferenceServerException, match="not found"):
            client.get_inference_statistics("nosuchmodel")
        with pytest.raises(InferenceServerException, match="not loaded"):
            client.get_inference_statistics("linear", "7")


def test_grpc_statistics_match_http(endpoints):
    with httpclient.InferenceServerClient(endpoints.http) as client:
        _infer_http(client, 2)
        over_http = client.get_inference_statistics("linear")["model_stats"][0]
    client = grpcclient.InferenceServerClient(endpoints.grpc)
    try:
        over_grpc = client.get_inference_statistics("linear", as_json=True)["model_stats"][0]
        with pytest.raises(InferenceServerException, match="not found"):
            client.get_inference_statistics("nosuchmodel")
        every = client.get_inference_statistics("")
        assert {m.name for m in every.model_stats} >= {"linear", "echo"}
    finally:
        client.close()
    # protobuf's JSON writes uint64 as strings
    assert int(over_grpc["inference_count"]) == over_http["inference_count"]
    assert int(over_grpc["inference_stats"]["success"]["count"]) == over_http["inference_stats"]["success"]["count"]
    assert int(over_grpc["inference_stats"]["queue"]["ns"]) == over_http["inference_stats"]["queue"]["ns"]
    assert len(over_grpc["batch_stats"]) == len(over_http["batch_stats"])
