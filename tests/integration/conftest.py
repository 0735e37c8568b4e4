"""A real server for transport tests: uvicorn (REST v2 + v1) and grpc.aio in one event loop, on free ports.

The data plane is a fixture of its own: swapping in `maas.serving.dataplane.ServingDataPlane(registry,
options)` over a registry holding the same models is a change to `dataplane()` alone.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from onnx_dataplane import OnnxDataPlane, echo_model, linear_model

import maas.server.errors
from maas.config import Settings
from maas.server import rest_v1, rest_v2
from maas.server.grpc_server import start_grpc_server
from maas.serving.inference import DataPlane

MAX_REQUEST_BYTES = 1024 * 1024


def build_app(dataplane: DataPlane, settings: Settings) -> FastAPI:
    """What the lead's app.py composes, reduced to the routers under test."""
    app = FastAPI()
    maas.server.errors.install(app)
    app.include_router(rest_v2.router(dataplane, settings))
    app.include_router(rest_v1.router(dataplane, settings))
    return app


@dataclass
class Endpoints:
    http: str  # host:port, as tritonclient wants it
    grpc: str

    @property
    def base_url(self) -> str:
        return f"http://{self.http}"


class ServerThread:
    """Runs both servers in one background event loop, as `maas serve` does in the foreground."""

    def __init__(self, dataplane: DataPlane, settings: Settings) -> None:
        self.dataplane, self.settings = dataplane, settings
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="maas-test-server", daemon=True)
        self.endpoints: Endpoints | None = None

    def __enter__(self) -> Endpoints:
        self._thread.start()
        if not self._ready.wait(30) or self.endpoints is None:
            raise RuntimeError(f"test server did not start: {self._error!r}")
        return self.endpoints

    def __exit__(self, *exc: object) -> None:
        self._uvicorn.should_exit = True
        self._thread.join(30)
        assert not self._thread.is_alive(), "test server did not stop"

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported by __enter__
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        grpc_server, grpc_port = await start_grpc_server(self.dataplane, self.settings, "127.0.0.1", 0)
        config = uvicorn.Config(
            build_app(self.dataplane, self.settings),
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="off",
        )
        self._uvicorn = uvicorn.Server(config)
        serving = asyncio.create_task(self._uvicorn.serve())
        while not self._uvicorn.started and not serving.done():
            await asyncio.sleep(0.01)
        try:
            if self._uvicorn.started:
                port = self._uvicorn.servers[0].sockets[0].getsockname()[1]
                self.endpoints = Endpoints(f"127.0.0.1:{port}", f"127.0.0.1:{grpc_port}")
                self._ready.set()
            await serving
        finally:
            await grpc_server.stop(0)


def make_settings(home: Path, **overrides: object) -> Settings:
    return Settings(home=home, max_request_bytes=MAX_REQUEST_BYTES, **overrides)


@pytest.fixture(scope="session")
def dataplane() -> DataPlane:
    # The one line to change at merge: ServingDataPlane(registry, options), "linear" and "echo" registered.
    return OnnxDataPlane({"linear": linear_model(), "echo": echo_model()})


@pytest.fixture(scope="session")
def server(dataplane: DataPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    with ServerThread(dataplane, make_settings(tmp_path_factory.mktemp("home"))) as endpoints:
        yield endpoints
