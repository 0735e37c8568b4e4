"""Progressive rollouts against a real server under continuous load from tritonclient HTTP and gRPC:
(a) a good candidate is promoted with zero failed requests; (b) one that answers other classes, (c) one that
fails on part of its inputs and (d) a slow one are each rolled back within two intervals, with the reason."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from maas import Client
from maas.registry import Registry
from maas.testing.live_server import live_server

from .conftest import Endpoints, make_settings
from .traffic_models import SDK_HEADERS, SIGNATURE, Load, classifier, failing, flipped, slow

INTERVAL = 1.0
CANDIDATES = {"good": classifier, "flip": flipped, "fail": failing, "slow": slow}
# Few requests per interval on a busy 2-core machine make p99s noisy: only a gap of 40 ms counts as slow here.
THRESHOLDS = {"min_requests": 5, "mirror_fraction": 0.5, "min_p99_delta_ms": 40}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    settings = make_settings(tmp_path_factory.mktemp("rollout-home"))
    with Registry(settings) as reg:
        for name, candidate in CANDIDATES.items():
            reg.publish(name, {"model.onnx": classifier()}, signature=SIGNATURE, aliases=("production",),
                        config={"max_batch_size": 8})
            # one single-threaded session, as the stable arm: the adaptive layout would speed the slow one up
            config = {"max_batch_size": 8, "batching": {"instances": 1, "intra_op_threads": 1}}
            reg.publish(name, {"model.onnx": candidate()}, signature=SIGNATURE, config=config)
        reg.publish("quiet", {"model.onnx": classifier()}, signature=SIGNATURE, aliases=("production",))
        reg.publish("quiet", {"model.onnx": classifier()}, signature=SIGNATURE)
        reg.publish("broken", {"model.onnx": classifier()}, signature=SIGNATURE, aliases=("production",))
        reg.publish("broken", {"model.onnx": b"not an onnx model"}, signature=SIGNATURE)
    with live_server(settings) as srv:
        yield Endpoints(srv.http_target, srv.grpc_target)


def finished(http: httpx.Client, name: str, timeout_s: float = 40.0) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        doc = http.get(f"/api/v1/models/{name}/rollout").json()
        if doc["state"] not in ("running",):
            return doc
        time.sleep(0.1)
    raise AssertionError(f"the rollout of {name} did not finish: {doc}")


def at(event: dict) -> float:
    return datetime.fromisoformat(event["at"]).timestamp()


def test_good_candidate_is_promoted_through_every_step_with_zero_failures(server: Endpoints) -> None:
    with Load(server.http, server.grpc, "good") as load, Client(server.base_url) as sdk, \
            httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as http:
        load.wait_for(50)
        started = sdk.start_rollout("good", 2, steps=[10, 50, 100], interval_s=INTERVAL, **THRESHOLDS)
        assert started["state"] == "running" and started["weights"] == {"stable": 90, "candidate": 10}
        doc = finished(http, "good")
        load.wait_for(200)  # the old version leaves while clients keep calling
    assert doc["state"] == "succeeded", doc["reason"]
    assert load.failures == [], load.failures[:3]
    verdicts = [d["verdict"] for d in doc["decisions"] if d["kind"] in ("step", "succeeded")]
    assert verdicts == ["successful", "successful"]
    passed = [d for d in doc["decisions"] if d["verdict"] == "successful"]
    assert passed[0]["figures"]["agreement"] == 1.0 and passed[0]["figures"]["candidate"]["requests"] >= 5
    assert {a.version for a in load.answers} == {"1", "2"}
    assert {a.version for a in load.answers[-50:]} == {"2"}
    with httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as http:
        assert http.get("/api/v1/models/good/traffic").json()["default"] is True
        assert http.get("/api/v1/versions/good@production").json()["version"] == 2


@pytest.mark.parametrize(("name", "why"), [
    ("flip", "agreement"), ("fail", "failure rate"), ("slow", "p99 latency"),
])
def test_bad_candidate_is_rolled_back_within_two_intervals(server: Endpoints, name: str, why: str) -> None:
    with Load(server.http, server.grpc, name) as load, \
            httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as http:
        load.wait_for(50)
        r = http.post(f"/api/v1/models/{name}/rollout",
                      json={"to": 2, "steps": [10, 50, 100], "interval_s": INTERVAL, **THRESHOLDS})
        assert r.status_code == 201, r.text
        doc = finished(http, name)
        time.sleep(1.0)  # every server has followed the rollback by now (poll interval 0.5 s)
        after = len(load.answers)
        load.wait_for(100)
    assert doc["state"] == "rolled_back", doc
    assert why in doc["reason"]
    back = doc["decisions"][-1]
    assert (back["kind"], back["verdict"], back["step"]) == ("rolled_back", "failed", 0), doc["decisions"]
    # The bad step began when the candidate first answered (it is loaded and warmed up first).
    first_bad = min(a.at for a in load.answers if a.version == "2" or not a.ok)
    assert at(back) - first_bad <= 2 * INTERVAL + 0.5, [(d["kind"], d["reason"]) for d in doc["decisions"]]
    figures = back["figures"]
    assert figures["stable"]["requests"] >= 10 and figures["candidate"]["requests"] >= 5
    assert doc["weights"] == {"stable": 100, "candidate": 0}
    late = load.answers[after:]
    assert late and all(a.ok and a.version == "1" for a in late)
    with httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as http:
        assert http.get(f"/api/v1/models/{name}/traffic").json()["arms"] == [{"version": 1, "weight": 100}]


def test_candidate_that_cannot_load_is_rolled_back_and_stable_keeps_serving(server: Endpoints) -> None:
    with Load(server.http, server.grpc, "broken") as load, \
            httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as http:
        load.wait_for(20)
        assert http.post("/api/v1/models/broken/rollout", json={"to": 2, "interval_s": INTERVAL}).status_code == 201
        doc = finished(http, "broken")
        load.wait_for(20)
    assert doc["state"] == "rolled_back" and "version 2 cannot be served" in doc["reason"]
    assert load.failures == [] and {a.version for a in load.answers} == {"1"}


def test_too_little_traffic_holds_then_pauses_for_a_person(server: Endpoints) -> None:
    with httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as http:
        r = http.post("/api/v1/models/quiet/rollout", json={
            "to": 2, "interval_s": INTERVAL, "min_requests": 1000, "max_inconclusive": 2})
        assert r.status_code == 201
        doc = finished(http, "quiet")
        assert doc["state"] == "paused" and "2 inconclusive measurements in a row" in doc["reason"]
        assert [d["kind"] for d in doc["decisions"]] == ["started", "held", "paused"]
        assert all(d["verdict"] == "inconclusive" for d in doc["decisions"][1:])
        assert doc["weights"] == {"stable": 90, "candidate": 10}  # held where it was
        assert http.post("/api/v1/models/quiet/rollout/abort").json()["state"] == "aborted"


def test_rollout_metrics_are_exposed(server: Endpoints) -> None:
    with httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as http:
        text = http.get("/metrics").text
    assert 'maas_rollout_state{model="good",state="succeeded"} 1.0' in text
    assert 'maas_rollout_state{model="flip",state="rolled_back"} 1.0' in text
    assert 'maas_rollout_agreement{model="good"} 1.0' in text
    assert "maas_rollout_psi{" in text
    assert 'maas_traffic_requests_total{model="fail",outcome="internal",version="2"}' in text
    assert 'maas_traffic_request_seconds_count{model="good",version="2"}' in text


def test_restart_mid_rollout_keeps_its_state_and_split(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    with Registry(settings) as reg:
        reg.publish("m", {"model.onnx": classifier()}, signature=SIGNATURE, aliases=("production",))
        reg.publish("m", {"model.onnx": classifier()}, signature=SIGNATURE)
    with live_server(settings) as srv, httpx.Client(base_url=srv.http_url, headers=SDK_HEADERS) as http:
        r = http.post("/api/v1/models/m/rollout", json={"to": 2, "steps": [30, 100], "interval_s": 3600})
        assert r.status_code == 201, r.text
    with live_server(settings) as srv, httpx.Client(base_url=srv.http_url, headers=SDK_HEADERS) as http:
        doc = http.get("/api/v1/models/m/rollout").json()
        assert (doc["state"], doc["weights"]) == ("running", {"stable": 70, "candidate": 30})
        assert http.get("/api/v1/models/m/traffic").json()["arms"] == [
            {"version": 1, "weight": 70}, {"version": 2, "weight": 30}]
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
        served = {http.post("/v2/models/m/infer", json=body).headers["x-model-version"] for _ in range(60)}
        assert served == {"1", "2"}
        assert http.post("/api/v1/models/m/rollout/abort").json()["state"] == "aborted"
