"""`maas serve --ray ADDRESS`: deploy the app on a Ray cluster and stay until SIGTERM/SIGINT, then delete it.

ADDRESS is what `ray.init` takes: `auto` (a cluster started with `ray start` on this machine), `HOST:PORT` of a
head's GCS, `ray://HOST:10001`, or `local` (start a one-node Ray inside this process). The registry must be
one every node reaches: PostgreSQL (`MAAS_DATABASE_URL`) and an artifact URL all nodes read.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from maas.cluster.scaling import ReplicaScaling, resolve, split_overrides
from maas.config import Settings
from maas.errors import FailedPrecondition, NotFound
from maas.registry import Registry

log = logging.getLogger("maas")

APP_NAME = "maas"


def plan(settings: Settings, models: list[str] | None, overrides: list[str]) -> dict[str, ReplicaScaling]:
    """Which models get a deployment and how they scale: the named ones, else every tensor model now in the
    registry (models registered later are served by the ingress until the next `maas serve --ray`)."""
    from maas.llm import is_language_model

    scaling_overrides, _ = split_overrides(overrides)
    registry = Registry(settings)
    names = models if models else [m.name for m in registry.list_models()]
    out: dict[str, ReplicaScaling] = {}
    for name in names:
        try:
            version = registry.get(name)
        except NotFound:
            if models:
                raise
            continue
        if is_language_model(version.config):  # the OpenAI routes serve these from the ingress
            continue
        out[name] = resolve(version.config, name, scaling_overrides.get(name))
    for name in scaling_overrides:
        if name not in out:
            raise FailedPrecondition(f"--set names {name!r}, which is not served as a tensor model")
    return out


def build_application(settings: Settings, models: list[str] | None, overrides: list[str]) -> tuple[Any, list[str]]:
    from maas.cluster.deployments import ingress_deployment, model_deployment
    from maas.serving.options import parse_overrides

    _, batching = split_overrides(overrides)
    batching_overrides = parse_overrides(batching)
    handles, max_calls = {}, {}
    for name, scaling in plan(settings, models, overrides).items():
        options = scaling.deployment_options()
        deployment = model_deployment(name, options)
        handles[name] = deployment.bind(settings, name, batching_overrides, options["ray_actor_options"]["num_cpus"])
        max_calls[name] = scaling.calls_in_flight()
    ingress = ingress_deployment(num_cpus=settings.ray_ingress_cpus)
    return ingress.bind(settings, models, batching_overrides, handles, max_calls), sorted(handles)


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A one-line error at once for a HOST:PORT no one answers on (ray.init would retry for minutes)."""
    import socket

    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if address in ("auto", "local") or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise FailedPrecondition(f"cannot reach the Ray cluster at {address}: {exc.strerror or exc}") from None


def connect(address: str) -> None:
    import ray

    check_reachable(address)

    try:
        if address == "local":
            # Ray runs its workers (here: every replica and the ingress) at nice 15 so that its daemons come
            # first; on a machine shared with other work that starved them behind every nice-0 process (the
            # load generator included, docs/scaling.md). The one-node Ray maas starts is the service itself.
            ray.init(include_dashboard=False, logging_level=logging.WARNING, _system_config={"worker_niceness": 0})
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as exc:
        raise FailedPrecondition(f"cannot reach the Ray cluster at {address}: {exc}") from None


def run(settings: Settings, address: str, models: list[str] | None = None, overrides: list[str] | None = None) -> None:
    """Blocks until a stop signal; the application is deleted from the cluster on the way out."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from maas.server.main import check_bind
    from maas.server.tls import check_tls

    check_tls(settings)
    check_bind(settings, registry_keys=bool(Registry(settings).key_store().list()))
    app, deployed = build_application(settings, models, overrides or [])  # --set and models checked first
    connect(address)
    import ray
    from ray import serve

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve.start(proxy_location="Disabled")  # the ingress runs maas's own HTTP and gRPC servers
    try:
        serve.run(app, name=APP_NAME, route_prefix=None, blocking=False)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        log.info("maas ready: REST http://%s:%s, gRPC %s:%s (the ingress replica, on the head node); "
                 "deployments %s on a Ray cluster of %d node(s)", settings.host, settings.http_port,
                 settings.host, settings.grpc_port, ", ".join(f"model-{n}" for n in deployed) or "none", nodes)
        stop.wait()
    finally:
        if address != "local":  # a local Ray goes with this process (and may already have had the signal)
            log.info("maas stopping: deleting the %r application from the cluster", APP_NAME)
            try:
                serve.delete(APP_NAME)
            except Exception as exc:  # the cluster may be gone already: nothing left to delete
                log.warning("could not delete the %r application: %s", APP_NAME, exc)
        ray.shutdown()
