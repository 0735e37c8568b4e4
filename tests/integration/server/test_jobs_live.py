"""Background jobs through a real server: submitted over HTTP or queued while no server runs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas.config import Settings
from maas.jobs import JobStore
from maas.jobs.handlers import handlers
from maas.jobs.runner import JobRunner
from maas.registry import Registry
from maas.testing.live_server import live_server

# Every test here serves a scikit-learn model converted with skl2onnx: without them, skip (not error).
pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module")
def iris_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from maas import formats

    home = tmp_path_factory.mktemp("jobs-home")
    x, y = load_iris(return_X_y=True)
    with Registry.open(home) as reg:
        formats.register(reg, LogisticRegression(max_iter=500).fit(x, y), name="iris",
            options=formats.ImportOptions(sample_input=x[:8].astype("float32")))
    return home


def wait_done(http: httpx.Client, job_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"/api/v1/jobs/{job_id}").json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return dict(job)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_evaluate_job_over_http(iris_home: Path) -> None:
    with live_server(Settings(home=iris_home)) as srv, httpx.Client(base_url=srv.http_url, timeout=60) as http:
        r = http.post("/api/v1/jobs", json={"kind": "evaluate", "params": {"ref": "iris", "data": "sklearn:iris"}})
        assert r.status_code == 202 and r.json()["state"] == "queued"
        job = wait_done(http, r.json()["id"])
        assert job["state"] == "succeeded", job
        assert job["result"]["report"]["metrics"]["accuracy"] > 0.9
        assert [j["id"] for j in http.get("/api/v1/jobs").json()] == [job["id"]]

        bad = http.post("/api/v1/jobs", json={"kind": "evaluate", "params": {"ref": "iris", "data": "../../etc/x"}})
        failed = wait_done(http, bad.json()["id"])
        assert failed["state"] == "failed" and "under" in failed["error"]
        assert http.post("/api/v1/jobs", json={"kind": "shell", "params": {}}).status_code == 400
        assert http.get("/api/v1/jobs/not-a-job").status_code == 400
        assert http.get(f"/api/v1/jobs/{'0' * 32}").status_code == 404


def test_background_upload_becomes_a_version(iris_home: Path, tmp_path: Path) -> None:
    with Registry.open(iris_home) as reg:
        onnx_file = tmp_path / "iris.onnx"
        onnx_file.write_bytes(reg.read_artifact(reg.get("iris")))
    with live_server(Settings(home=iris_home)) as srv, httpx.Client(base_url=srv.http_url, timeout=60) as http:
        with onnx_file.open("rb") as f:
            r = http.post("/api/v1/models/iris-copy/versions?background=true", files={"file": ("iris.onnx", f)},
                          headers={"X-Requested-With": "test"})  # a form POST needs it (cross_site.py)
        assert r.status_code == 202, r.text
        job = wait_done(http, r.json()["id"])
        assert job["state"] == "succeeded", job
        assert job["result"]["version"]["model"] == "iris-copy"
        assert http.get("/api/v1/versions/iris-copy:1").status_code == 200


def test_job_queued_while_no_server_runs_is_run_at_start(iris_home: Path) -> None:
    with Registry.open(iris_home) as reg:
        runner = JobRunner(JobStore(reg.store), handlers(reg))  # submits only; never started
        job = runner.submit("evaluate", {"ref": "iris", "data": "sklearn:iris"})
    with live_server(Settings(home=iris_home)) as srv, httpx.Client(base_url=srv.http_url, timeout=60) as http:
        done = wait_done(http, job.id)
        assert done["state"] == "succeeded"
        assert json.dumps(done["result"])
