"""Prediction logs and drift through a real server: in-distribution traffic reports no drift; traffic
shifted on two features reports exactly those two, and the predictions, as drifted (REST API, CLI, gauges)."""

import json
import os
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.monitor.reference import reference_from_data
from maas.registry import Registry
from maas.testing.live_server import live_server

from ..conftest import make_settings
from ..models import linear_model

ROWS = 8  # per request (the version's max_batch_size)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    home = tmp_path_factory.mktemp("drift")
    settings = make_settings(home, drift_refresh_s=0.3)
    with Registry(settings) as reg:
        reg.publish("linear", {"model.onnx": linear_model()},
                    config={"max_batch_size": ROWS, "log_sample_rate": 1.0})
        reg.publish("quiet", {"model.onnx": linear_model()})  # not logged
        reference_from_data(reg, "linear", np.random.default_rng(0).normal(size=(2000, 4)).astype(np.float32),
                            source="test reference")
    with live_server(settings) as srv, httpx.Client(base_url=srv.http_url, timeout=30) as client:
        yield srv, client, settings


def _send(client, x, model="linear"):
    for start in range(0, len(x), ROWS):
        rows = x[start:start + ROWS]
        body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": list(rows.shape),
                            "data": rows.ravel().tolist()}]}
        r = client.post(f"/v2/models/{model}/infer", json=body, headers={"x-request-id": f"r{start}"})
        assert r.status_code == 200, r.text


def _drift_when(client, rows, **params):
    deadline = time.monotonic() + 30
    while True:
        r = client.get("/api/v1/models/linear/drift", params={"since": "1h", **params})
        if r.status_code == 200 and r.json()["current_rows"] >= rows:
            return r.json()
        assert time.monotonic() < deadline, r.text
        time.sleep(0.2)


def test_in_distribution_then_shifted(live, tmp_path):
    srv, client, settings = live
    _send(client, np.random.default_rng(1).normal(size=(1200, 4)).astype(np.float32))
    calm = _drift_when(client, 1200)
    assert calm["reference"] == {"source": "test reference", "rows": 2000}
    assert [f["column"] for f in calm["features"]] == [f"in.x[{i}]" for i in range(4)]
    assert {f["method"] for f in calm["features"]} == {"wasserstein"}  # a large reference, numeric features
    assert calm["drifted_features"] == []
    assert not calm["dataset_drift"] and not calm["prediction_drift"]
    assert calm["prediction"]["column"] == "out.y.argmax"
    assert calm["outliers"]["requests"] == 1200 // ROWS

    shifted = np.random.default_rng(2).normal(size=(2400, 4)).astype(np.float32)
    shifted[:, :2] += 3
    _send(client, shifted)
    moved = _drift_when(client, 3600)
    assert moved["drifted_features"] == ["in.x[0]", "in.x[1]"]
    assert moved["share_drifted"] == 0.5 and moved["dataset_drift"]
    assert moved["prediction_drift"]
    assert moved["outliers"]["outliers"] > calm["outliers"]["outliers"]

    # Evidently's small-reference tests on request; PSI on request
    psi = client.get("/api/v1/models/linear/drift", params={"since": "1h", "method": "psi"}).json()
    assert psi["drifted_features"] == ["in.x[0]", "in.x[1]"]

    # the CLI reads the same logs, and writes the HTML report
    env = {**os.environ, "MAAS_HOME": str(settings.home), "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, "-m", "maas.cli", "monitor", "drift", "linear", "--since", "1h", "--json",
         "--report", str(tmp_path / "report")], capture_output=True, text=True, env=env, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["drifted_features"] == ["in.x[0]", "in.x[1]"]
    page = (tmp_path / "report" / "drift.html").read_text()
    assert "in.x[3]" in page and "<svg" in page and "Data set drift: yes" in page

    # the gauges follow on their schedule, and the log's counters are in /metrics
    deadline = time.monotonic() + 30
    while 'maas_drift_detected{feature="in.x[0]",model="linear",version="1"} 1.0' not in (
        text := client.get("/metrics").text
    ):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert 'maas_drift_detected{feature="in.x[2]",model="linear",version="1"} 0.0' in text
    assert 'maas_dataset_drift{model="linear",version="1"} 1.0' in text
    assert 'maas_prediction_log_records_total{model="linear"} 450.0' in text  # requests (3600 rows)
    assert 'maas_prediction_log_dropped_total{model="linear"}' not in text


def test_logged_rows_are_parquet_partitioned_by_model_version_hour(live):
    _, _, settings = live
    files = sorted((settings.home / "predictions").rglob("*.parquet"))
    assert files
    assert all(p.relative_to(settings.home / "predictions").parts[:2] == ("model=linear", "version=1")
               for p in files)
    import io

    import pyarrow.parquet as pq

    from maas.monitor.log_writer import open_log_writer
    from maas.registry import Registry

    assert not files[0].read_bytes().startswith(b"PAR1")  # sealed on disk: the home is encrypted by default
    with Registry(settings) as reg:
        writer = open_log_writer(str(settings.home / "predictions"), reg.sealing_keys())
    path = files[0].relative_to(settings.home / "predictions").as_posix()
    table = pq.read_table(io.BytesIO(writer.read(path)))
    assert {"time", "model", "version", "arm", "request_id", "latency_ms", "in.x[0]", "out.y.argmax"} <= set(
        table.column_names)
    assert set(table["arm"].to_pylist()) == {"1"}  # defaults to the version until traffic splits name arms


def test_bad_requests_get_clear_answers(live):
    srv, client, settings = live
    cases = {
        ("nosuch", "1h", None): 404,
        ("linear", "1h", "9"): 404,
        ("linear", "soon", None): 400,
        ("linear", "1h", "x"): 400,
        ("quiet", "1h", None): 409,  # no reference statistics (FAILED_PRECONDITION)
        ("Bad Name", "1h", None): 400,
    }
    for (name, since, version), status in cases.items():
        params = {"since": since} | ({"version": version} if version else {})
        r = client.get(f"/api/v1/models/{name}/drift", params=params)
        assert r.status_code == status, (name, since, version, r.text)
        assert r.json().get("error") or r.json().get("detail")
    r = client.get("/api/v1/models/linear/drift", params={"method": "magic"})
    assert r.status_code == 400 and "magic" in r.text
    # a window with no data
    with Registry(settings) as reg:
        reg.set_reference("quiet", {"rows": 1, "sampled": 1, "columns": {"in.x[0]": [0.0]}})
        with pytest.raises(InvalidArgument, match="do not fit"):
            reference_from_data(reg, "quiet", np.zeros((5, 3), dtype=np.float32))
        assert reg.get_reference("quiet")[0]["rows"] == 1  # nothing written by the failed attempt
    r = client.get("/api/v1/models/quiet/drift", params={"since": "1h"})
    assert r.status_code == 404 and "no logged requests" in r.json()["error"]


def test_cli_bad_input_is_one_line_and_writes_nothing(live, tmp_path):
    _, _, settings = live
    env = {**os.environ, "MAAS_HOME": str(settings.home), "PYTHONPATH": os.pathsep.join(sys.path)}
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 3), dtype=np.float32))
    before = Registry(settings).get_reference("linear")
    cases = [
        (["monitor", "reference", "linear", "--data", str(wrong)], "do not fit"),
        (["monitor", "reference", "nosuch", "--data", str(wrong)], "not found"),
        (["monitor", "drift", "linear", "--since", "forever"], "invalid window"),
        (["monitor", "drift", "linear", "--version", "9"], "not found"),
    ]
    for args, message in cases:
        out = subprocess.run([sys.executable, "-m", "maas.cli", *args], capture_output=True, text=True, env=env,
                             timeout=120)
        assert out.returncode != 0, args
        assert out.stderr.startswith("error:") and message in out.stderr and "Traceback" not in out.stderr, args
    with Registry(settings) as reg:
        assert reg.get_reference("linear") == before
