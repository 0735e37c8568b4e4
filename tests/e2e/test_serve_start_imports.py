"""What `maas serve` has imported by the time both listeners accept (issue #19, start to ready): nothing that
serving one ONNX model does not need. The routes past infer and health are built after that, and still answer."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np

from maas.config import Settings
from maas.registry import Registry

from ..integration.models import linear_model
from .test_serve_process import env_for, free_port, wait_ready

# Runs `maas serve` with one hook, set when the start imports deferred_app (so the script imports nothing earlier
# than the start does): the modules loaded when the listeners accept, taken just before the deferred routes start
# building (`_Server.startup` -> `DeferredApp.build_soon`), with whether the cyclic garbage collector runs then and
# at exit (paused while starting: server/collector_pause.py), are written to argv[1] at exit.
SERVE = r"""
import atexit, gc, importlib.machinery, json, os, sys

out, args = sys.argv[1], sys.argv[2:]
seen = {}

def snapshot_then_build(build_soon):
    def hooked(self):
        if self._building is None:
            seen.update(modules=sorted(sys.modules), collector_at_start=gc.isenabled(),
                        openblas_thread_timeout=os.environ.get("OPENBLAS_THREAD_TIMEOUT"))
        build_soon(self)
    return hooked

class HookDeferredApp:  # patches the module when the start imports it, so that nothing is imported earlier
    def find_spec(self, name, path, target=None):
        if name != "maas.server.deferred_app":
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module
        def exec_module(module):
            run(module)
            module.DeferredApp.build_soon = snapshot_then_build(module.DeferredApp.build_soon)
        spec.loader.exec_module = exec_module
        return spec

def at_exit():
    seen.update(collector_at_exit=gc.isenabled(), frozen=gc.get_freeze_count())
    with open(out, "w") as f:
        json.dump(seen, f)

atexit.register(at_exit)
sys.meta_path.insert(0, HookDeferredApp())
from maas.cli.main import main
sys.argv = ["maas", *args]
main()
"""

NOT_AT_START = (
    "torch", "tensorflow", "sklearn", "keras",  # the model formats' frameworks
    "alembic",  # the schema is at head: a plain SQL check, no Alembic
    "fastapi", "jinja2", "maas.server.routes", "maas.console.pages", "maas.server.openai_api",  # after ready
    "fsspec",  # the prediction log opens its folder on first use
    "maas.formats", "maas.llm.engine",  # import code and the LLM engine load with their first use
    "maas.cli.import_cmd", "maas.cli.jobs_cmd", "maas.cli.keys_cmd", "rich.table",  # other CLI commands
    "websockets", "uvicorn.protocols.websockets",  # no WebSocket route: uvicorn's ws="none"
    "uvicorn.main", "uvicorn.supervisors", "click", "watchfiles",  # uvicorn's CLI and reloaders (uvicorn_core.py)
    "prometheus_client.exposition", "wsgiref",  # the text exposition: /metrics after ready (prometheus_core.py)
)


def test_serve_is_ready_without_the_rest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with Registry(Settings(home=home)) as reg:  # the first open migrates; every later start is at head
        reg.publish("linear", {"model.onnx": linear_model()})
    http_port, grpc_port = free_port(), free_port()
    loaded_file = tmp_path / "loaded.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(loaded_file), "serve", "--http-port", str(http_port),
         "--grpc-port", str(grpc_port)], env=env_for(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{http_port}"
    try:
        wait_ready(url, proc)
        body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}
        with httpx.Client(base_url=url, timeout=30) as client:
            infer = client.post("/v2/models/linear/infer", json=body)
            assert infer.status_code == 200, infer.text
            assert np.asarray(infer.json()["outputs"][0]["data"]).size > 0
            assert client.get("/v2").json()["name"] == "maas"  # a route of the app built after ready
            assert client.get("/v2/models/linear/ready").status_code == 200
            assert "/v2/health/ready" in client.get("/openapi.json").json()["paths"]
            assert client.post("/v2/health/ready").status_code == 405  # still FastAPI's answer
            assert client.get("/console/").status_code in (200, 401)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()[-2000:]
    seen = json.loads(loaded_file.read_text())
    assert (seen["collector_at_start"], seen["collector_at_exit"]) == (False, True)
    assert seen["frozen"] > 10_000  # what the start made is out of the collector's passes
    assert seen["openblas_thread_timeout"] == os.environ.get("OPENBLAS_THREAD_TIMEOUT", "4")  # set before numpy
    loaded = set(seen["modules"])
    assert {"onnxruntime", "grpc", "uvicorn", "maas.server.grpc_bootstrap"} <= loaded  # taken while serving
    assert sorted(m for m in NOT_AT_START if m in loaded) == []
    assert os.path.exists(home / "registry.db")


def test_the_cli_is_imported_without_numpy() -> None:
    """So that `maas serve` can tell OpenBLAS how its threads wait before numpy loads it (cli/main.py)."""
    code = "import sys, maas.cli.main; assert 'numpy' not in sys.modules, 'numpy imported with the CLI'"
    subprocess.run([sys.executable, "-c", code], check=True)
