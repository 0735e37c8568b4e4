"""`maas serve` refuses to share a gRPC port that another server holds (grpcio sets SO_REUSEPORT, so the
kernel would otherwise split connections between the two) and says so in one `error:` line."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from maas.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_second_serve_on_a_taken_grpc_port_fails_with_one_line(tmp_path: Path) -> None:
    holder = grpc.server(futures.ThreadPoolExecutor(max_workers=1))  # grpcio's defaults, SO_REUSEPORT on
    port = holder.add_insecure_port("127.0.0.1:0")
    holder.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "maas.cli", "serve", "--http-port", str(free_port()), "--grpc-port", str(port)],
            env={**os.environ, "MAAS_HOME": str(tmp_path / "home"), "PYTHONPATH": os.pathsep.join(sys.path)},
            capture_output=True, text=True, timeout=60,
        )
    finally:
        holder.stop(0)
    assert result.returncode != 0
    assert f"error: the gRPC port 127.0.0.1:{port} is already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_grpc_server_itself_does_not_reuse_a_taken_port(tmp_path: Path) -> None:
    from maas.server.grpc_bootstrap import start_grpc_server

    holder = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = holder.add_insecure_port("127.0.0.1:0")
    holder.start()

    async def start() -> None:
        server, _ = await start_grpc_server(None, Settings(home=tmp_path), "127.0.0.1", port)  # type: ignore[arg-type]
        await server.stop(0)

    try:
        with pytest.raises(OSError, match="in use"):
            asyncio.run(start())
    finally:
        holder.stop(0)


def _serve_until_ready(args: list[str], env: dict[str, str], ready: list[str]) -> tuple[int, str]:
    """Start `maas serve ARGS`, wait until curl READY succeeds, stop it with SIGTERM; (exit code, stderr)."""
    import signal
    import time

    proc = subprocess.Popen([sys.executable, "-m", "maas.cli", "serve", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while subprocess.run(["curl", "-sf", "--max-time", "2", *ready], capture_output=True).returncode != 0:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        return proc.returncode, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_public_bind_with_a_registry_key_and_no_tls_warns(tmp_path: Path) -> None:
    from maas.registry import Registry
    from maas.security import KeyStore

    home = tmp_path / "home"
    with Registry.open(home) as reg:
        KeyStore(reg.store).create("ops", "admin")  # a registry key is enough to bind a public address
    http = free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("MAAS_API_KEY", None)
    code, err = _serve_until_ready(["--host", "0.0.0.0", "--http-port", str(http), "--grpc-port", str(free_port())],
                                   env, [f"http://127.0.0.1:{http}/v2/health/ready"])
    assert code == 0 and "without TLS" in err


def test_tls_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "integration"))
    from ..integration.auth_certs import make_pki

    pki = make_pki(tmp_path / "pki")
    http = free_port()
    env = {**os.environ, "MAAS_HOME": str(tmp_path / "home"), "PYTHONPATH": os.pathsep.join(sys.path),
           "MAAS_TLS_CERT": str(pki.server_cert), "MAAS_TLS_KEY": str(pki.server_key)}
    code, err = _serve_until_ready(["--http-port", str(http), "--grpc-port", str(free_port())], env,
                                   ["--cacert", str(pki.ca), f"https://127.0.0.1:{http}/v2/health/ready"])
    assert code == 0 and "https://" in err and "without TLS" not in err
