"""The shipped alert rules and dashboard against the real Prometheus server (Debian package `prometheus`):
it scrapes a running maas, answers a maas metric over its HTTP API, loads the rules (also checked by
`promtool check rules`) and accepts every query of the Grafana dashboard."""

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "maas.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(server, tmp_path_factory):
    binary = shutil.which("prometheus")
    assert binary, "the Debian package prometheus is needed (apt-get install -y prometheus)"
    root = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{ALERTS}]\n"
        "scrape_configs:\n"
        f"  - job_name: maas\n    static_configs: [{{targets: ['{server.http}']}}]\n"
    )
    port = _free_port()
    log = (root / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={root / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (root / "prometheus.log").read_text()[-2000:]
            try:
                if httpx.get(f"{base}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def _query(base: str, expr: str) -> dict:
    r = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=10)
    assert r.status_code == 200, (expr, r.text)
    return r.json()


def test_prometheus_scrapes_maas(server, prometheus):
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}
    assert httpx.post(f"{server.base_url}/v2/models/linear/infer", json=body).status_code == 200
    deadline = time.monotonic() + 60
    while True:
        result = _query(prometheus, 'sum(maas_inference_requests_total{model="linear",outcome="ok"})')["data"]["result"]
        if result and float(result[0]["value"][1]) >= 1:
            break
        assert time.monotonic() < deadline, "Prometheus never saw maas_inference_requests_total"
        time.sleep(0.5)
    up = _query(prometheus, 'up{job="maas"}')["data"]["result"]
    assert up and up[0]["value"][1] == "1"


def test_alert_rules_check_and_load(prometheus):
    out = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    names = {r["name"] for g in rules for r in g["rules"]}
    assert {"MaasHighErrorRate", "MaasHighP99Latency", "MaasQueueSaturated", "MaasRejectedRequests",
            "MaasDataDrift", "MaasPredictionDrift", "MaasRolloutFailed"} <= names
    assert all(r["health"] != "err" for g in rules for r in g["rules"])


def test_dashboard_is_valid_and_its_queries_run(server, prometheus):
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"] and dash["schemaVersion"] >= 36
    panels = dash["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert variables == {"datasource", "model"}
    exported = httpx.get(f"{server.base_url}/metrics").text
    for panel in panels:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]) and panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "1m").replace("$model", ".*")
            assert _query(prometheus, expr)["status"] == "success", expr
            families = {w.split("{")[0].split("[")[0] for w in expr.replace("(", " ").split() if w.startswith("maas_")}
            for family in families:
                base = family.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count").removesuffix("_total")
                # drift gauges and log counters appear once there is something to report
                if not base.startswith(("maas_drift", "maas_dataset", "maas_outlier", "maas_prediction_log")):
                    assert f"# TYPE {base} " in exported or f"# TYPE {family} " in exported, family
