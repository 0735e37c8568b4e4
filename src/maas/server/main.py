"""`maas serve`: one process, HTTP (uvicorn) and gRPC on one event loop; SIGTERM drains then exits 0."""

from __future__ import annotations

import ipaddress
import logging
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

from maas.config import Settings
from maas.errors import FailedPrecondition
from maas.registry import Registry
from maas.server import prometheus_core as _prometheus_core  # noqa: F401 - before the core imports it
from maas.server.uvicorn_core import Config, Server

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from maas.monitor.prediction_log import PredictionLog

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


def check_bind(settings: Settings, registry_keys: bool | Callable[[], bool] = False) -> None:
    """Safe default: only loopback may be served without an API key (MAAS_API_KEY or `maas keys create`),
    and a non-loopback address without TLS is served with a warning. `registry_keys` (whether the registry
    has keys) may be a function, asked only for a non-loopback address."""
    if is_loopback(settings.host):
        return
    if not settings.api_key and not (registry_keys() if callable(registry_keys) else registry_keys):
        raise FailedPrecondition(
            f"refusing to bind {settings.host} without an API key: create one with `maas keys create`, set "
            "MAAS_API_KEY or pass --api-key (or bind 127.0.0.1)"
        )
    from maas.server.tls import tls_enabled

    if not tls_enabled(settings):
        log.warning("serving %s without TLS: keys and tensors cross the network in plain text "
                    "(pass --tls-cert and --tls-key)", settings.host)


def check_port_free(host: str, port: int, what: str) -> None:
    """A one-line error, before anything starts, when another process listens on the port (grpcio would
    otherwise share it through SO_REUSEPORT)."""
    if port == 0:
        return
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError as exc:
        raise FailedPrecondition(f"cannot resolve {host}: {exc}") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are not listeners
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise FailedPrecondition(f"the {what} port {host}:{port} is already in use ({exc.strerror})") from None


class _Server(Server):
    """uvicorn re-raises a caught SIGTERM after draining, which makes the exit status -15; a service manager
    asking for a stop should see a clean exit 0 once in-flight work is done."""

    announce: Callable[[Server], None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            from maas.server.deferred_app import deferred_app_of

            deferred = deferred_app_of(self.config.loaded_app)
            if deferred is not None:  # the routes past infer and health, built now that both listeners accept
                deferred.build_soon()
            if self.announce is not None:
                self.announce(self)
            from maas.server.collector_pause import ready

            ready()  # the collector, paused while `maas serve` started, runs again

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)


def build_server(
    settings: Settings, models: list[str] | None = None, overrides: list[str] | None = None
) -> Server:
    from maas.server.app import create_app
    from maas.server.tls import check_tls
    from maas.serving.dataplane import ServingDataPlane
    from maas.serving.options import ServingOptions, parse_overrides

    check_tls(settings)
    registry = Registry(settings)
    check_bind(settings, registry_keys=lambda: bool(registry.key_store().list()))
    options = ServingOptions.from_settings(
        settings, tuple(models) if models else None, parse_overrides(overrides or []))
    dataplane = ServingDataPlane(registry, options)
    dataplane.predictions = prediction_log(settings, registry, dataplane.metrics.registry)
    from maas.monitor.tracing import tracer_from_environment

    dataplane.tracer = tracer_from_environment(settings.tracing)
    app = create_app(settings, registry, dataplane, models=models)
    return http_server(settings, app, dataplane)


def http_server(settings: Settings, app: Any, dataplane: Any) -> Server:
    """The uvicorn server of `app` as `maas serve` runs it (also inside the ingress replica of `--ray`)."""
    from maas.server.tls import uvicorn_ssl

    config = Config(
        app, host=settings.host, port=settings.http_port, log_level="info", access_log=False,
        # No uvicorn limit_concurrency: its plain 503 would pre-empt maas's own refusals (http_limits.py).
        timeout_graceful_shutdown=10, limit_concurrency=None, timeout_keep_alive=30,
        # uvicorn's 2048 overflowed under a 4,352-connection burst: the kernel dropped the handshakes' last ACK
        # and the clients' requests waited for its retransmission (1 s, then 3 s) before maas could read them.
        backlog=settings.http_backlog,
        # uvloop and httptools are uvicorn's fast event loop and HTTP parser ("auto" falls back if absent).
        loop="uvloop" if _installed("uvloop") else "asyncio",
        http=_http_protocol(settings, getattr(app, "shed_early", None)),
        # maas has no WebSocket route: an upgrade request is answered as plain HTTP, and the websockets package
        # is not imported at start ("auto" loads it, ~20 ms of CPU before ready; issue #19).
        ws="none",
        h11_max_incomplete_event_size=settings.max_header_bytes,  # the h11 fallback's header cap (a 400)
        proxy_headers=False,  # the audit log records the peer address, not a forwarded one
        **uvicorn_ssl(settings),
    )
    server = _Server(config)
    server.announce = lambda srv: log.info("%s", ready_line(settings, srv, app, dataplane))
    return server


def ready_line(settings: Settings, server: Server, app: Any, dataplane: Any) -> str:
    """One line once both listeners are up: where to reach REST, gRPC, the console and the docs, and what is
    served."""
    host = settings.host if settings.host not in ("0.0.0.0", "::") else "127.0.0.1"
    http_port = server.servers[0].sockets[0].getsockname()[1] if server.servers else settings.http_port
    base = f"http://{host}:{http_port}"
    while not hasattr(app, "state") and hasattr(app, "app"):  # the FastAPI app inside the edge's layers
        app = app.app
    grpc_port = getattr(getattr(app, "state", None), "grpc_port", None)
    served = sorted(f"{v.name}:{v.number}" for v in dataplane.repository.all_loaded())
    grpc = f"gRPC {host}:{grpc_port}, " if grpc_port else ""
    return (f"maas ready: REST {base}, {grpc}console {base}/, docs {base}/docs; serving "
            f"{', '.join(served) if served else 'no models yet'} from {settings.home}")


def prediction_log(settings: Settings, registry: Registry, metrics: CollectorRegistry) -> PredictionLog:
    """The sampled prediction log (idle until a version's log_sample_rate is above 0), sealed when the home is."""
    from maas.monitor.log_writer import open_log_writer
    from maas.monitor.prediction_log import PredictionLog

    return PredictionLog(
        open_log_writer(settings.prediction_log_url, registry.sealing_keys()), metrics=metrics,
        queue_size=settings.prediction_log_queue, retention_hours=settings.prediction_log_retention_hours,
    )


def _http_protocol(settings: Settings, early: Any = None) -> Any:
    """uvicorn's httptools protocol with maas's limits and early overload refusals (`Edge.shed_early`); h11
    (pure Python, without them) only where httptools is not installed."""
    if not _installed("httptools"):
        return "h11"
    from maas.server.http_limits import limited_protocol

    return limited_protocol(settings.max_header_bytes, settings.max_headers, settings.max_http_in_flight, early)


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run(settings: Settings, models: list[str] | None = None, overrides: list[str] | None = None) -> None:
    from maas.server.access import buffer_access_log

    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logging.basicConfig(level=logging.INFO, format=fmt)
    buffer_access_log(fmt)
    from maas.server.tls import tls_enabled

    logging.getLogger("alembic").setLevel(logging.WARNING)  # its INFO lines on every start say nothing new
    check_port_free(settings.host, settings.http_port, "HTTP")
    check_port_free(settings.host, settings.grpc_port, "gRPC")
    server = build_server(settings, models, overrides)
    log.info("maas starting: loading models from %s (%s)", settings.home,
             "HTTPS and gRPC over TLS" if tls_enabled(settings) else "plain HTTP and gRPC")
    server.run()
