"""`maas serve`: one process, HTTP (uvicorn) and gRPC on one event loop; SIGTERM drains then exits 0."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from maas.config import Settings
from maas.errors import FailedPrecondition
from maas.registry import Registry

log = logging.getLogger("maas")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_bind(settings: Settings) -> None:
    """Safe default: only loopback may be served without an API key."""
    if not is_loopback(settings.host) and not settings.api_key:
        raise FailedPrecondition(
            f"refusing to bind {settings.host} without an API key: set MAAS_API_KEY or pass --api-key "
            "(or bind 127.0.0.1)"
        )


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM after draining, which makes the exit status -15; a service manager
    asking for a stop should see a clean exit 0 once in-flight work is done."""

    announce: Callable[[uvicorn.Server], None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit and self.announce is not None:
            self.announce(self)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)


def build_server(
    settings: Settings, models: list[str] | None = None, overrides: list[str] | None = None
) -> uvicorn.Server:
    from maas.server.app import create_app
    from maas.serving.dataplane import ServingDataPlane
    from maas.serving.options import ServingOptions, parse_overrides

    check_bind(settings)
    registry = Registry(settings)
    options = ServingOptions(models=tuple(models) if models else None, overrides=parse_overrides(overrides or []))
    dataplane = ServingDataPlane(registry, options)
    app = create_app(settings, registry, dataplane, models=models)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.http_port, log_level="info", access_log=False,
        timeout_graceful_shutdown=10, limit_concurrency=4096, timeout_keep_alive=30,
        # uvloop and httptools are uvicorn's fast event loop and HTTP parser ("auto" falls back if absent).
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http="httptools" if _installed("httptools") else "h11",
        proxy_headers=False,  # nothing reads the client address; skips a middleware on every request
    )
    server = _Server(config)
    server.announce = lambda srv: log.info("%s", ready_line(settings, srv, app, dataplane))
    return server


def ready_line(settings: Settings, server: uvicorn.Server, app: Any, dataplane: Any) -> str:
    """One line once both listeners are up: where to reach REST, gRPC and the docs, and what is served."""
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    http_port = server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.http_port
    base = f"http://{host}:{http_port}"
    while not hasattr(app, "state") and hasattr(app, "app"):  # the FastAPI app inside the edge's layers
        app = app.app
    grpc_port = getattr(getattr(app, "state", None), "grpc_port", None)
    served = sorted(f"{v.name}:{v.number}" for v in dataplane.repository.all_loaded())
    grpc = f"gRPC {host}:{grpc_port}, " if grpc_port else ""
    return (f"maas ready: REST {base}, {grpc}docs {base}/docs; serving "
            f"{', '.join(served) if served else 'no models yet'} from {settings.home}")


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run(settings: Settings, models: list[str] | None = None, overrides: list[str] | None = None) -> None:
    from maas.server.access import buffer_access_log

    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)
    buffer_access_log(fmt)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines on every start say nothing new
    server = build_server(settings, models, overrides)
    log.info("maas starting: loading models from %s", settings.home)
    server.run()
