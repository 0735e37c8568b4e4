"""A real `maas serve` (uvicorn + gRPC, one event loop) in a background thread on free loopback ports."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from maas.config import Settings


@dataclass
class LiveServer:
    http_url: str
    http_port: int
    grpc_port: int
    app: Any

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def http_target(self) -> str:
        """`host:port`, the form tritonclient.http wants."""
        return f"127.0.0.1:{self.http_port}"


@contextmanager
def live_server(settings: Settings, models: list[str] | None = None, timeout_s: float = 60.0) -> Iterator[LiveServer]:
    """Start the full server on 127.0.0.1 with OS-chosen ports; stopped (gracefully) on exit."""
    from maas.server.main import build_server

    settings = settings.model_copy(update={"host": "127.0.0.1", "http_port": 0, "grpc_port": 0})
    server = build_server(settings, models)
    thread = threading.Thread(target=server.run, name="maas-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout_s
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the maas server failed to start (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise TimeoutError("the maas server did not start in time")
        time.sleep(0.02)
    http_port = server.servers[0].sockets[0].getsockname()[1]
    app = server.config.loaded_app
    while hasattr(app, "app") and not hasattr(app, "state"):
        app = app.app
    try:
        yield LiveServer(f"http://127.0.0.1:{http_port}", http_port, _grpc_port(server), app)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _grpc_port(server: Any) -> int:
    app = server.config.loaded_app
    while app is not None:
        state = getattr(app, "state", None)
        if state is not None and hasattr(state, "grpc_port"):
            return int(state.grpc_port)
        app = getattr(app, "app", None)
    return 0
