"""The real `maas serve` for transport tests: registry, ServingDataPlane, REST (v2 + v1), gRPC and the
control API in one event loop on free loopback ports, with the tiny models of models.py registered."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from maas.config import Settings
from maas.registry import Registry
from maas.testing.live_server import live_server

from .models import echo_model, linear_model

MAX_REQUEST_BYTES = 1024 * 1024


@dataclass
class Endpoints:
    http: str  # host:port, as tritonclient wants it
    grpc: str

    @property
    def base_url(self) -> str:
        return f"http://{self.http}"


def make_settings(home: Path, **overrides: object) -> Settings:
    return Settings(home=home, max_request_bytes=MAX_REQUEST_BYTES, **overrides)  # type: ignore[arg-type]


@contextmanager
def serving(settings: Settings) -> Iterator[Endpoints]:
    """Register the test models in a fresh registry and serve it."""
    with Registry(settings) as reg:
        reg.publish(
            "linear", {"model.onnx": linear_model()},
            config={"labels": ["neg", "zero", "pos"], "max_batch_size": 8, "batching": {"max_queue_delay_us": 100}},
        )
        reg.publish("echo", {"model.onnx": echo_model()})
    with live_server(settings) as srv:
        yield Endpoints(srv.http_target, srv.grpc_target)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    with serving(make_settings(tmp_path_factory.mktemp("home"))) as endpoints:
        yield endpoints
