"""`maas serve --ray` on a real three-node Ray cluster on this machine (a head and two worker nodes, 2 logical
CPUs in all, to fit the two cores), the registry on PostgreSQL plus one artifact folder every node reads.

One cluster for the module (Ray starts in ~12 s here); the tests run in order, the node kill last. Every Ray
process the module started (the nodes' daemons and their workers) is stopped by process id at the end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from ...integration.models import LINEAR_X, linear_model, linear_reference
from ..test_serve_process import free_port

pytest.importorskip("ray.serve")
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(600)]

# During a node kill the client may see this many failed requests at most (the ingress retries a lost replica
# on another one, so in practice it sees none; the bound leaves room for a request in flight on the node).
MAX_FAILURES_DURING_KILL = 3


@dataclass
class Served:
    http: str  # host:port, the form tritonclient.http wants
    grpc: str
    cluster: Any
    workers: list[Any]
    home: Path
    database_url: str
    log: Path


def _pids_of(node: Any) -> set[int]:
    """The node's daemons and everything they started (its workers: the replicas)."""
    import psutil

    pids: set[int] = set()
    for infos in node.all_processes.values():
        for info in infos:
            pid = info.process.pid
            pids.add(pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                pids |= {p.pid for p in psutil.Process(pid).children(recursive=True)}
    return pids


def _kill(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _linear_v2() -> bytes:
    """The linear model with its weights negated: another version with the same signature."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load_from_string(linear_model())
    for init in model.graph.initializer:
        init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    return model.SerializeToString()


def _slow_model() -> bytes:
    """y = x + 1 (FP32 [-1, 4]); the serve-time batching delay (--set) makes each request dwell in its replica."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, pg_admin: Any) -> Iterator[Served]:
    import ray
    import sqlalchemy as sa
    from ray.cluster_utils import Cluster

    from maas.registry import Registry

    from ...conftest import PG_ADMIN_URL

    root = tmp_path_factory.mktemp("ray")
    db = f"maas_ray_{uuid.uuid4().hex[:10]}"
    with pg_admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{db}"'))
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}"
    home, artifacts = root / "home", root / "shared-artifacts"  # the folder every node reads
    with Registry.open(home, database_url=database_url, artifacts_url=str(artifacts)) as reg:
        reg.publish("lin", {"model.onnx": linear_model()}, source_format="onnx")
        reg.publish("slow", {"model.onnx": _slow_model()}, source_format="onnx", config={"scaling": {
            "min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 2,
            "upscale_delay_s": 1, "downscale_delay_s": 2, "num_cpus": 0.25}})
    env = {"MAAS_HOME": str(home), "MAAS_DATABASE_URL": database_url, "MAAS_ARTIFACTS_URL": str(artifacts),
           "MAAS_POLL_INTERVAL_S": "0.2", "MAAS_RAY_INGRESS_CPUS": "0", "PYTHONPATH": os.pathsep.join(sys.path),
           "RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S": "2",
           "RAY_worker_niceness": "0"}  # the replicas compete with the machine's other work as equals (run.py)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the nodes (and so every replica) inherit the worktree's code and the registry
    pids: set[int] = set()
    cluster = proc = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="WARNING")  # this process reads serve.status()
        http, grpc = free_port(), free_port()
        log = root / "serve.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "maas.cli", "serve", "--ray", cluster.address, "--http-port", str(http),
                 "--grpc-port", str(grpc), "--set", "lin.num_replicas=2", "--set", "lin.num_cpus=0.25",
                 "--set", "slow.max_queue_delay_us=100000", "--set", "slow.max_batch_size=64"],
                env=os.environ.copy(), stdout=out, stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 240
        while "maas ready:" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        yield Served(f"127.0.0.1:{http}", f"127.0.0.1:{grpc}", cluster, workers, home, database_url, log)
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            for node in [cluster.head_node, *cluster.worker_nodes]:
                if node is not None:
                    pids |= _pids_of(node)
            cluster.shutdown()
            _kill(pids)  # workers that outlived their raylet, by the ids recorded above
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        with pg_admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))


def _http_infer(client: Any, model: str = "lin", x: np.ndarray = LINEAR_X) -> Any:
    import tritonclient.http as httpclient

    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x)
    return client.infer(model, [inp])


def _node_of(tag: str) -> str:
    return tag.rsplit("@", 1)[1]


def _running(deployment: str) -> list[str]:
    """The running replicas of a model's deployment (each model is its own application, named as it)."""
    from ray import serve

    app = serve.status().applications.get(deployment)
    if app is None or deployment not in app.deployments:
        return []
    return [r for r, n in app.deployments[deployment].replica_states.items() for _ in range(n) if r == "RUNNING"]


def test_replicas_on_two_nodes_answer_http_and_grpc(served: Served) -> None:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    want = linear_reference(LINEAR_X)
    http = httpclient.InferenceServerClient(served.http, concurrency=4)
    futures = [http.async_infer("lin", [_input(httpclient)]) for _ in range(24)]
    http_tags = set()
    for fut in futures:
        result = fut.get_result()
        np.testing.assert_allclose(result.as_numpy("y"), want[0], rtol=1e-6)
        http_tags.add(result.get_response()["parameters"]["maas_replica"])
    grpc = grpcclient.InferenceServerClient(served.grpc)
    grpc_tags: set[str] = set()
    done = threading.Event()

    def answered(result: Any, error: Any) -> None:
        assert error is None, error
        grpc_tags.add(result.get_response(as_json=True)["parameters"]["maas_replica"]["string_param"])
        if len(grpc_tags) >= 2:
            done.set()

    for _ in range(24):
        grpc.async_infer("lin", [_input(grpcclient)], answered)
    done.wait(30)
    assert len({_node_of(t) for t in http_tags}) == 2, http_tags  # two replicas, one on each worker node
    assert len({_node_of(t) for t in grpc_tags}) == 2, grpc_tags
    head = served.cluster.head_node.node_id[:12]
    assert head not in {_node_of(t) for t in http_tags | grpc_tags}  # the head runs only the ingress
    assert http.is_model_ready("lin") and grpc.is_model_ready("lin")
    assert grpc.get_model_metadata("lin", as_json=True)["inputs"][0]["shape"] == ["-1", "4"]
    http.close()
    grpc.close()


def _input(module: Any) -> Any:
    inp = module.InferInput("x", list(LINEAR_X.shape), "FP32")
    inp.set_data_from_numpy(LINEAR_X)
    return inp


def test_errors_from_replicas_are_maas_errors(served: Served) -> None:
    import grpc as grpc_lib
    import tritonclient.grpc as grpcclient

    bad = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 5], "data": [1, 2, 3, 4, 5]}]}
    r = httpx.post(f"http://{served.http}/v2/models/lin/infer", json=bad, timeout=30)
    assert r.status_code == 400 and r.json() == {"error": "input 'x': shape [1, 5] does not match the model's [-1, 4]"}
    r = httpx.post(f"http://{served.http}/v2/models/lin/versions/9/infer", json=bad, timeout=30)
    assert r.status_code == 404 and "Traceback" not in r.text and "ray" not in r.text.lower(), r.text
    client = grpcclient.InferenceServerClient(served.grpc)
    inp = grpcclient.InferInput("x", [1, 5], "FP32")
    inp.set_data_from_numpy(np.ones((1, 5), np.float32))
    with pytest.raises(Exception) as caught:
        client.infer("lin", [inp])
    assert caught.value.status() == str(grpc_lib.StatusCode.INVALID_ARGUMENT)  # type: ignore[attr-defined]
    assert "does not match" in str(caught.value) and "Traceback" not in str(caught.value)
    client.close()


def test_alias_move_and_split_reach_every_replica(served: Served) -> None:
    import tritonclient.http as httpclient

    from maas.registry import Registry

    artifacts = os.environ["MAAS_ARTIFACTS_URL"]
    with Registry.open(served.home, database_url=served.database_url, artifacts_url=artifacts) as reg:
        reg.publish("lin", {"model.onnx": _linear_v2()}, source_format="onnx")
        reg.set_alias("lin", "production", 1)  # v2 is newest but production stays on v1 …
        client = httpclient.InferenceServerClient(served.http, concurrency=4)
        time.sleep(1)
        assert {_http_infer(client).get_response()["model_version"] for _ in range(8)} == {"1"}
        reg.set_alias("lin", "production", 2)  # … until the alias moves, on every replica
    deadline, nodes = time.monotonic() + 30, set()
    while time.monotonic() < deadline:
        futures = [client.async_infer("lin", [_input(httpclient)]) for _ in range(8)]
        results = [f.get_result().get_response() for f in futures]
        if all(r["model_version"] == "2" for r in results):
            nodes |= {_node_of(r["parameters"]["maas_replica"]) for r in results}
            if len(nodes) == 2:
                break
        time.sleep(0.3)
    assert len(nodes) == 2, "version 2 was not served by the replicas on both nodes within 30 s"
    np.testing.assert_allclose(_http_infer(client).as_numpy("y"), -linear_reference(LINEAR_X)[0], rtol=1e-6)
    # a traffic split stored in the registry is followed by the replicas on both nodes
    from maas.traffic.service import TrafficService
    from maas.traffic.split import Arm, TrafficSplit

    with Registry.open(served.home, database_url=served.database_url, artifacts_url=artifacts) as reg:
        TrafficService(reg).set_split("lin", TrafficSplit((Arm(1, 50), Arm(2, 50))))
        seen: set[tuple[str, str]] = set()
        deadline = time.monotonic() + 30
        while len(seen) < 4 and time.monotonic() < deadline:
            futures = [client.async_infer("lin", [_input(httpclient)]) for _ in range(16)]
            for f in futures:
                r = f.get_result().get_response()
                seen.add((_node_of(r["parameters"]["maas_replica"]), r["model_version"]))
        TrafficService(reg).clear_split("lin")
    assert len(seen) == 4, f"each node should serve both arms of the split: {seen}"
    client.close()


def _open(served: Served) -> Any:
    from maas.registry import Registry

    return Registry.open(served.home, database_url=served.database_url, artifacts_url=os.environ["MAAS_ARTIFACTS_URL"])


def _replicas_answering(http: Any, at_least: int) -> set[str]:
    """The replica tags of lin seen in concurrent batches of 16 calls, until `at_least` distinct ones (or 8
    batches) have answered."""
    import tritonclient.http as httpclient

    tags: set[str] = set()
    for _ in range(8):
        futures = [http.async_infer("lin", [_input(httpclient)]) for _ in range(16)]
        tags |= {f.get_result().get_response()["parameters"]["maas_replica"] for f in futures}
        if len(tags) >= at_least:
            break
    assert len(tags) >= at_least, tags
    return tags


def test_a_model_registered_while_serving_gets_its_own_replicas(served: Served) -> None:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient
    from ray import serve
    from tritonclient.utils import InferenceServerException

    http = httpclient.InferenceServerClient(served.http, concurrency=4)
    lin_before = _replicas_answering(http, 2)  # lin's two replicas (one after another may all reach one)
    calls_before = _sample(httpx.get(f"http://{served.http}/metrics", timeout=30).text,
                           "maas_ray_handle_calls_total", "lin")
    with _open(served) as reg:
        reg.publish("late", {"model.onnx": linear_model()}, source_format="onnx",
                    config={"scaling": {"num_replicas": 1, "num_cpus": 0.25}})
    want, tag, by_ingress = linear_reference(LINEAR_X)[0], None, 0
    deadline = time.monotonic() + 120
    while tag is None:  # the ingress answers it itself (once it has loaded it) until the deployment runs
        assert time.monotonic() < deadline, f"no replica of 'late' answered within 120 s\n{_tail(served)}"
        try:
            result = _http_infer(http, "late")
        except InferenceServerException as exc:
            assert "not found" in str(exc), exc  # the ingress's registry poll has not seen it yet
            time.sleep(0.2)
            continue
        np.testing.assert_allclose(result.as_numpy("y"), want, rtol=1e-6)
        tag = result.get_response().get("parameters", {}).get("maas_replica")
        if tag is None:
            by_ingress += 1
            time.sleep(0.2)
    print(f"'late': {by_ingress} answers from the ingress before its replica took over")  # shown with -s
    assert _node_of(tag) != served.cluster.head_node.node_id[:12]
    assert len(_running("model-late")) == 1  # the size from the version's config.scaling
    grpc = grpcclient.InferenceServerClient(served.grpc)
    answer = grpc.infer("late", [_input(grpcclient)]).get_response(as_json=True)
    assert answer["parameters"]["maas_replica"]["string_param"].rsplit("@", 1)[1] == _node_of(tag)
    # nothing else was redeployed: the same lin replicas, and the ingress's counters went on (no restart)
    lin_after = _replicas_answering(http, 1)
    assert lin_after <= lin_before, (lin_before, lin_after)
    calls_after = _sample(httpx.get(f"http://{served.http}/metrics", timeout=30).text,
                          "maas_ray_handle_calls_total", "lin")
    assert calls_after >= calls_before + 16
    # deleted from the registry: its application goes, and the model is a 404 again
    with _open(served) as reg:
        reg.delete_model("late")
    deadline = time.monotonic() + 60
    while "model-late" in serve.status().applications:
        assert time.monotonic() < deadline, "model-late's application was not deleted within 60 s"
        time.sleep(0.5)
    with pytest.raises(InferenceServerException, match="not found"):
        _http_infer(http, "late")
    http.close()
    grpc.close()


def _tail(served: Served) -> str:
    return served.log.read_text(errors="replace")[-3000:]


def test_a_split_set_through_the_control_api_applies_on_the_ray_path(served: Served) -> None:
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    base = f"http://{served.http}/api/v1/models/lin/traffic"
    r = httpx.put(base, json={"arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]}, timeout=30)
    assert r.status_code == 200, r.text
    client = httpclient.InferenceServerClient(served.http, concurrency=8)
    try:
        deadline, seen = time.monotonic() + 30, set()
        while seen != {"1", "2"}:  # the replicas load version 1 again before it takes its share
            assert time.monotonic() < deadline, f"the split did not reach the replicas within 30 s: {seen}"
            seen |= {_http_infer(client).get_response()["model_version"] for _ in range(4)}
        futures = [client.async_infer("lin", [_input(httpclient)]) for _ in range(64)]
        answers = [f.get_result().get_response() for f in futures]
        versions = [a["model_version"] for a in answers]
        assert all("maas_replica" in a["parameters"] for a in answers)  # computed by replicas, not the ingress
        assert 12 <= versions.count("1") <= 52, versions  # 50/50: 32 ± 4 expected, five deviations allowed
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
        rest = [httpx.post(f"http://{served.http}/v2/models/lin/infer", json=body, timeout=30) for _ in range(16)]
        assert {x.headers["x-model-version"] for x in rest} == {"1", "2"}
        assert all(x.headers["x-model-version"] == x.json()["model_version"] for x in rest)
        grpc = grpcclient.InferenceServerClient(served.grpc)
        grpc_versions = {grpc.infer("lin", [_input(grpcclient)]).get_response(as_json=True)["model_version"]
                         for _ in range(16)}
        assert grpc_versions == {"1", "2"}
        # a sticky header: the same user always reaches the same arm, on whichever replica
        r = httpx.put(base, json={"arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
                                  "sticky_header": "X-User-Id"}, timeout=30)
        assert r.status_code == 200, r.text
        time.sleep(1)  # > the replicas' poll interval (0.2 s) and a reload of nothing new
        arms: dict[str, set[str]] = {}
        for user in (f"user-{i}" for i in range(16)):
            for _ in range(3):
                answer = client.infer("lin", [_input(httpclient)], headers={"X-User-Id": user}).get_response()
                arms.setdefault(user, set()).add(answer["model_version"])
        assert all(len(v) == 1 for v in arms.values()), arms
        assert set().union(*arms.values()) == {"1", "2"}, arms
        grpc.close()
    finally:
        httpx.delete(base, timeout=30)
        client.close()


def test_a_rollout_is_judged_by_the_replicas_and_promoted(served: Served) -> None:
    import tritonclient.http as httpclient

    # production is on 2 (the alias test); roll out to 1. The two versions disagree on every input (negated
    # weights): agreement and class shift are switched off, so the judging is on failures and the quota.
    thresholds = {"min_requests": 3, "mirror_fraction": 0, "max_psi": 1000, "max_p99_ratio": 1000}
    r = httpx.post(f"http://{served.http}/api/v1/models/lin/rollout", timeout=30,
                   json={"to": 1, "steps": [25, 50, 75], "interval_s": 1, "thresholds": thresholds})
    assert r.status_code == 201, r.text
    seen, failures = set(), []

    def one(c: Any) -> None:
        try:
            seen.add(_http_infer(c).get_response()["model_version"])
        except Exception as exc:
            failures.append(repr(exc))

    with _looping_clients(served, 4, one):
        deadline = time.monotonic() + 60
        while (rollout := httpx.get(f"http://{served.http}/api/v1/models/lin/rollout", timeout=30).json())[
                "state"] == "running":
            assert time.monotonic() < deadline, f"the rollout did not finish within 60 s: {rollout}"
            time.sleep(0.5)
    assert rollout["state"] == "succeeded", rollout
    assert not failures, failures[:3]
    assert seen == {"1", "2"}  # both arms answered while it ran
    # Every step was judged by a replica that measured requests, none by the ingress: it sees none of them,
    # and its empty window, written first, would hold the step as inconclusive (here its decisions come too
    # late to be written, so tests/unit/cluster/test_discovery.py pins that it does not judge).
    measured = [d for d in rollout["decisions"] if "stable" in d["figures"]]
    assert len(measured) >= 3, rollout["decisions"]
    for d in measured:
        assert d["figures"]["stable"]["requests"] + d["figures"]["candidate"]["requests"] > 0, d
    client = httpclient.InferenceServerClient(served.http)
    deadline = time.monotonic() + 30
    while _http_infer(client).get_response()["model_version"] != "1":  # promoted: production moved on
        assert time.monotonic() < deadline
        time.sleep(0.2)
    client.close()


def test_scales_up_under_load_and_down_after(served: Served) -> None:

    assert len(_running("model-slow")) == 1
    with _looping_clients(served, 8, lambda c: _http_infer(c, "slow", np.ones((1, 4), np.float32))):
        deadline = time.monotonic() + 60
        while len(_running("model-slow")) < 2:
            assert time.monotonic() < deadline, "no second replica of model-slow within 60 s under load"
            time.sleep(0.5)
    # 8 clients against at most 4 handle calls in flight (max_replicas 2 x target 2): the others were grouped
    metrics = httpx.get(f"http://{served.http}/metrics", timeout=30).text
    calls, carried = (_sample(metrics, name, "slow") for name in
                      ("maas_ray_handle_calls_total", "maas_ray_handle_call_requests_total"))
    assert carried > calls > 0, (calls, carried)
    deadline = time.monotonic() + 60
    while len(_running("model-slow")) > 1:
        assert time.monotonic() < deadline, "model-slow did not scale back down within 60 s"
        time.sleep(0.5)


@contextlib.contextmanager
def _looping_clients(served: Served, n: int, call: Any) -> Iterator[None]:
    """`n` threads, each with its own tritonclient HTTP client, calling `call(client)` until the block ends."""
    import tritonclient.http as httpclient

    stop = threading.Event()

    def loop() -> None:
        client = httpclient.InferenceServerClient(served.http, concurrency=1, network_timeout=30)
        while not stop.is_set():
            call(client)
        client.close()

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()
        for t in threads:
            t.join(30)


def _sample(metrics: str, name: str, model: str) -> float:
    prefix = f'{name}{{model="{model}"}} '
    return next(float(line[len(prefix):]) for line in metrics.splitlines() if line.startswith(prefix))


def test_node_loss_is_survived(served: Served) -> None:
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(served.http, concurrency=1, network_timeout=30)
    tags = {_http_infer(client).get_response()["parameters"]["maas_replica"] for _ in range(16)}
    victim = next(w for w in served.workers if w.node_id[:12] in {_node_of(t) for t in tags})
    failures, answered, stop = [], [0], threading.Event()

    def loop() -> None:
        c = httpclient.InferenceServerClient(served.http, concurrency=1, network_timeout=30)
        while not stop.is_set():
            try:
                _http_infer(c)
                answered[0] += 1
            except Exception as exc:
                failures.append(repr(exc))
        c.close()

    looper = threading.Thread(target=loop, daemon=True)
    looper.start()
    time.sleep(1)
    pids = _pids_of(victim)
    _kill(pids)  # the worker node's raylet, its other daemons and its replicas, by process id
    served.cluster.remove_node(victim, allow_graceful=False)
    before = answered[0]
    try:
        deadline = time.monotonic() + 90
        while len(_running("model-lin")) < 2 or answered[0] < before + 20:
            assert time.monotonic() < deadline, f"lin did not come back to 2 replicas: {_running('model-lin')}"
            time.sleep(0.5)
    finally:
        stop.set()
        looper.join(30)
    print(f"node kill: {answered[0]} answered, {len(failures)} failed")  # shown with -s
    assert len(failures) <= MAX_FAILURES_DURING_KILL, failures
    survivor = next(w for w in served.workers if w is not victim).node_id[:12]
    after = {_http_infer(client).get_response()["parameters"]["maas_replica"] for _ in range(16)}
    assert {_node_of(t) for t in after} == {survivor}, after
    client.close()
