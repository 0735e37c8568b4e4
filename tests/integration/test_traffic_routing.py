"""Traffic splits on a real server: (e) sticky keys never change arm while weights stay, (f) shadow failures
never reach clients; every answer names its version; explicit versions bypass the split; bad splits are
refused on the API and the SDK with nothing changed; a restart keeps the split."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from typer.testing import CliRunner

from maas import Client
from maas.errors import AlreadyExists, InvalidArgument
from maas.protocol.grpc_gen import inference_pb2 as pb
from maas.registry import Registry
from maas.testing.live_server import live_server

from .conftest import Endpoints, make_settings
from .traffic_models import SDK_HEADERS, SIGNATURE, WIDE_SIGNATURE, Load, classifier, failing, wide_classifier

BODY = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [0.5, -0.2, 0.1, 0.3]}]}
FOLLOW_S = 1.2  # a server follows registry changes within its poll interval (0.5 s)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("traffic-home")


@pytest.fixture(scope="module")
def server(home: Path) -> Iterator[Endpoints]:
    settings = make_settings(home)
    with Registry(settings) as reg:
        for name in ("sticky", "shadow", "pinned", "bad", "swap"):
            reg.publish(name, {"model.onnx": classifier()}, signature=SIGNATURE, aliases=("production",))
            reg.publish(name, {"model.onnx": classifier()}, signature=SIGNATURE)
        reg.publish("shadow", {"model.onnx": failing()}, signature=SIGNATURE)  # shadow:3 fails on many inputs
        reg.publish("bad", {"model.onnx": wide_classifier()}, signature=WIDE_SIGNATURE)  # bad:3
        reg.publish("bad", {"model.onnx": classifier()}, signature=SIGNATURE)  # bad:4, archived
        reg.archive("bad:4")
        reg.publish("swap", {"model.onnx": classifier()}, signature=SIGNATURE)  # swap:3
    with live_server(settings) as srv:
        yield Endpoints(srv.http_target, srv.grpc_target)


@pytest.fixture
def http(server: Endpoints) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, headers=SDK_HEADERS) as c:
        yield c


def test_sticky_keys_never_change_arm(server: Endpoints, home: Path) -> None:
    from maas.cli.main import app  # set by the CLI on the registry, as another process would

    result = CliRunner().invoke(app, ["--home", str(home), "traffic", "set", "sticky", "1=60", "2=40",
                                      "--sticky-header", "X-User-Id"])
    assert result.exit_code == 0, result.stderr
    time.sleep(FOLLOW_S)
    keys = [f"user-{i}" for i in range(40)]
    with Load(server.http, server.grpc, "sticky", keys=keys) as load:
        load.wait_for(400)
    assert load.failures == []
    arms: dict[str, set[str]] = defaultdict(set)
    for a in load.answers:
        arms[a.key].add(a.version)
    assert all(len(v) == 1 for v in arms.values()), {k: v for k, v in arms.items() if len(v) > 1}
    assert {next(iter(v)) for v in arms.values()} == {"1", "2"}
    by_protocol = {(a.protocol, a.key, a.version) for a in load.answers}
    assert {(k, v) for p, k, v in by_protocol if p == "http"} & {(k, v) for p, k, v in by_protocol if p == "grpc"}


def test_shadow_failures_never_reach_clients(server: Endpoints, http: httpx.Client) -> None:
    r = http.put("/api/v1/models/shadow/traffic", json={
        "arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
        "shadow": {"version": 3, "fraction": 1.0}})
    assert r.status_code == 200, r.text
    time.sleep(FOLLOW_S)
    with Load(server.http, server.grpc, "shadow") as load:
        load.wait_for(300)
    assert load.failures == [], load.failures[:3]
    assert {a.version for a in load.answers[-200:]} == {"1", "2"}
    time.sleep(0.3)
    metrics = http.get("/metrics").text
    failed = _sample(metrics, 'maas_traffic_shadow_requests_total{model="shadow",outcome="failed",version="3"}')
    agreed = _sample(metrics, 'maas_traffic_shadow_comparisons_total{model="shadow",result="agree",version="3"}')
    assert failed > 0 and agreed > 0
    assert _sample(metrics, 'maas_traffic_requests_total{model="shadow",outcome="ok",version="2"}') > 0


def _sample(text: str, series: str) -> float:
    for line in text.splitlines():
        if line.startswith(series):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_every_answer_names_its_version_and_explicit_versions_bypass(server: Endpoints, http: httpx.Client) -> None:
    assert http.put("/api/v1/models/pinned/traffic", json={"arms": [{"version": 2, "weight": 100}]}).status_code == 200
    time.sleep(FOLLOW_S)
    r = http.post("/v2/models/pinned/infer", json=BODY)
    assert (r.headers["x-model-version"], r.json()["model_version"]) == ("2", "2")
    r = http.post("/v2/models/pinned/versions/1/infer", json=BODY)
    assert (r.headers["x-model-version"], r.json()["model_version"]) == ("1", "1")
    r = http.post("/v1/models/pinned:predict", json={"instances": [[0.5, -0.2, 0.1, 0.3]]})
    assert r.status_code == 200 and r.headers["x-model-version"] == "2"
    assert http.post("/v1/models/pinned/versions/1:predict",
                     json={"instances": [[0.5, -0.2, 0.1, 0.3]]}).headers["x-model-version"] == "1"
    request = pb.ModelInferRequest(model_name="pinned", inputs=[pb.ModelInferRequest.InferInputTensor(
        name="x", datatype="FP32", shape=[1, 4], contents=pb.InferTensorContents(fp32_contents=[0.5, 0, 0, 0]))])
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer",
                                   request_serializer=pb.ModelInferRequest.SerializeToString,
                                   response_deserializer=pb.ModelInferResponse.FromString)
        for version, expected in (("", "2"), ("1", "1")):
            request.model_version = version
            response, state = call.with_call(request)
            assert response.model_version == expected
            assert dict(state.trailing_metadata())["x-model-version"] == expected


BAD = [
    ({"arms": [{"version": 1, "weight": 90}, {"version": 2, "weight": 20}]}, "weights must sum to 100"),
    ({"arms": [{"version": 1, "weight": 110}, {"version": 2, "weight": -10}]}, "negative"),
    ({"arms": [{"version": 1, "weight": 50}, {"version": 9, "weight": 50}]}, "bad:9 does not exist"),
    ({"arms": [{"version": 1, "weight": 50}, {"version": 4, "weight": 50}]}, "archived"),
    ({"arms": [{"version": 1, "weight": 50}, {"version": 3, "weight": 50}]}, "signature of bad:3 differs"),
    ({"arms": [{"version": 1, "weight": 100}], "shadow": {"version": 2, "fraction": 0}}, "(0, 1]"),
    ({"arms": [{"version": 1, "weight": 100}], "shadow": {"version": 2, "fraction": 1.5}}, "(0, 1]"),
]


@pytest.mark.parametrize(("body", "message"), BAD)
def test_bad_splits_are_refused_and_change_nothing(http: httpx.Client, server: Endpoints, body: dict,
                                                   message: str) -> None:
    before = http.get("/api/v1/models/bad/traffic").json()
    r = http.put("/api/v1/models/bad/traffic", json=body)
    assert r.status_code == 400 and message in r.json()["error"]
    with Client(server.base_url) as sdk, pytest.raises(InvalidArgument, match="."):
        arms = {a["version"]: a["weight"] for a in body["arms"]}
        shadow = (body["shadow"]["version"], body["shadow"]["fraction"]) if body.get("shadow") else None
        sdk.set_traffic("bad", arms, shadow=shadow)
    assert http.get("/api/v1/models/bad/traffic").json() == before


def test_bad_rollouts_are_refused(http: httpx.Client, server: Endpoints) -> None:
    for body, status, message in [
        ({"to": 3}, 400, "signature of bad:3 differs"),
        ({"to": 4}, 400, "archived"),
        ({"to": 2, "steps": [50, 10]}, 400, "increase"),
        ({"to": 2, "interval_s": 0}, 400, "interval_s"),
        ({"to": 2, "min_agreement": 7}, 400, "min_agreement"),
        ({"to": 2, "max_speed": 1}, 400, "unknown threshold"),
        ({"steps": [10]}, 400, '"to"'),
    ]:
        r = http.post("/api/v1/models/bad/rollout", json=body)
        assert (r.status_code, message in r.json()["error"]) == (status, True), r.text
    assert http.get("/api/v1/models/bad/rollout").status_code == 404
    assert http.post("/api/v1/models/bad/rollout", json={"to": 2, "interval_s": 3600}).status_code == 201
    r = http.post("/api/v1/models/bad/rollout", json={"to": 2})
    assert r.status_code == 409 and "already has a running rollout" in r.json()["error"]
    with Client(server.base_url) as sdk:
        with pytest.raises(AlreadyExists):  # a 409 whose maas-error-code says ALREADY_EXISTS
            sdk.start_rollout("bad", 2)
        assert sdk.pause_rollout("bad")["state"] == "paused"
        assert sdk.resume_rollout("bad")["state"] == "running"
        assert sdk.abort_rollout("bad")["state"] == "aborted"
        assert sdk.rollout_status("bad")["decisions"][-1]["kind"] == "aborted"
    assert http.post("/api/v1/models/bad/rollout/promote").status_code == 409
    assert http.get("/api/v1/models/bad/traffic").json()["default"] is True


def test_alias_moves_and_splits_under_load_fail_no_request(server: Endpoints, home: Path,
                                                          http: httpx.Client) -> None:
    with Load(server.http, server.grpc, "swap") as load, Registry(make_settings(home)) as reg:
        load.wait_for(50)
        reg.set_alias("swap", "production", 2)  # a new version is loaded and warmed up before it serves
        time.sleep(FOLLOW_S)
        load.wait_for(50)
        assert http.put("/api/v1/models/swap/traffic", json={
            "arms": [{"version": 1, "weight": 50}, {"version": 3, "weight": 50}]}).status_code == 200
        time.sleep(FOLLOW_S)
        load.wait_for(50)
        assert http.delete("/api/v1/models/swap/traffic").status_code == 200  # 1 and 3 drain, then unload
        time.sleep(FOLLOW_S)
        load.wait_for(50)
    assert load.failures == [], load.failures[:3]
    served = [a.version for a in load.answers]
    assert {"1", "2", "3"} <= set(served) and set(served[-20:]) == {"2"}


def test_restart_keeps_the_split(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    with Registry(settings) as reg:
        for _ in range(2):
            reg.publish("m", {"model.onnx": classifier()}, signature=SIGNATURE)
    with live_server(settings) as srv, Client(srv.http_url) as sdk:
        sdk.set_traffic("m", {1: 100})
    with live_server(settings) as srv, httpx.Client(base_url=srv.http_url, headers=SDK_HEADERS) as http:
        assert http.get("/api/v1/models/m/traffic").json()["arms"] == [{"version": 1, "weight": 100}]
        assert {http.post("/v2/models/m/infer", json=BODY).headers["x-model-version"] for _ in range(10)} == {"1"}
        assert http.delete("/api/v1/models/m/traffic").json()["default"] is True


def test_every_server_on_the_registry_applies_the_same_split(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "home")
    with Registry(settings) as reg:
        for _ in range(3):
            reg.publish("m", {"model.onnx": classifier()}, signature=SIGNATURE)
    with live_server(settings) as a, live_server(settings) as b, httpx.Client() as http:
        r = http.put(f"{a.http_url}/api/v1/models/m/traffic", json={
            "arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]})
        assert r.status_code == 200
        time.sleep(FOLLOW_S)
        for srv in (a, b):
            served = {http.post(f"{srv.http_url}/v2/models/m/infer", json=BODY).headers["x-model-version"]
                      for _ in range(40)}
            assert served == {"1", "2"}
