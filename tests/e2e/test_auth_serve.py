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
    from maas.server.grpc_server import start_grpc_server

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
