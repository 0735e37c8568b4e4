"""`maas serve` as users run it: a subprocess on free ports, health, control API, refusal to bind publicly
without a key, and SIGTERM -> graceful exit 0."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

MAAS = [sys.executable, "-m", "maas.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(home: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path), **extra}


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early with {proc.returncode}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("server never became ready")


def identity_model() -> bytes:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "id",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


@pytest.mark.slow
def test_serve_then_sigterm_exits_cleanly(tmp_path: Path) -> None:
    from maas.registry import Registry

    home = tmp_path / "home"
    with Registry.open(home) as reg:
        reg.publish("lin", {"model.onnx": identity_model()}, source_format="onnx")
    http, grpc = free_port(), free_port()
    proc = subprocess.Popen(
        [*MAAS, "serve", "--http-port", str(http), "--grpc-port", str(grpc)],
        env=env_for(home), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{http}"
        wait_ready(url, proc)
        assert httpx.get(f"{url}/v2/health/live").status_code == 200
        assert [m["name"] for m in httpx.get(f"{url}/api/v1/models").json()] == ["lin"]
        page = httpx.get(f"{url}/docs")
        assert page.status_code == 200 and "cdn" not in page.text and "/docs/assets/swagger-ui-bundle.js" in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            assert httpx.get(f"{url}/docs/assets/{asset}").status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert proc.stderr is not None
        log = proc.stderr.read().decode()
        ready = [line for line in log.splitlines() if "maas ready:" in line]
        assert len(ready) == 1, log
        assert ready[0].endswith(
            f"maas ready: REST {url}, gRPC 127.0.0.1:{grpc}, console {url}/, docs {url}/docs; serving lin:1 from {home}"
        )
        for noise in ("alembic", "absl", "oneDNN", "tensorflow", "Traceback"):
            assert noise not in log, log
    finally:
        proc.kill()
        proc.wait()
        if proc.stderr:
            proc.stderr.close()


def test_public_bind_without_key_is_refused(tmp_path: Path) -> None:
    result = subprocess.run(
        [*MAAS, "serve", "--host", "0.0.0.0", "--http-port", str(free_port())],
        env=env_for(tmp_path / "home"), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "API key" in result.stderr and "Traceback" not in result.stderr
