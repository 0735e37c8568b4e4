"""`maas serve --ray ADDRESS`: deploy the app on a Ray cluster and stay until SIGTERM/SIGINT, then delete it.

ADDRESS is what `ray.init` takes: `auto` (a cluster started with `ray start` on this machine), `HOST:PORT` of a
head's GCS, `ray://HOST:10001`, or `local` (start a one-node Ray inside this process). The registry must be
one every node reaches: PostgreSQL (`MAAS_DATABASE_URL`) and an artifact URL all nodes read.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from maas.cluster.following import DeploymentFollower, app_name, wanted
from maas.cluster.scaling import ReplicaScaling, split_overrides
from maas.config import Settings
from maas.errors import FailedPrecondition
from maas.registry import Registry

log = logging.getLogger("maas")

APP_NAME = "maas"


def plan(settings: Settings, models: list[str] | None, overrides: list[str]) -> dict[str, ReplicaScaling]:
    """Which models get a deployment at the start and how they scale: the named ones (each must exist), else
    every tensor model now in the registry. Models registered later get theirs while it runs (following.py)."""
    scaling_overrides, _ = split_overrides(overrides)
    registry = Registry(settings)
    for name in models or []:
        registry.get(name)  # NotFound: a one-line error before anything starts
    out = wanted(registry, models, scaling_overrides)
    for name in scaling_overrides:
        if name not in out:
            raise FailedPrecondition(f"--set names {name!r}, which is not served as a tensor model")
    return out


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
    """Blocks until a stop signal, following the registry (new models deployed, deleted ones removed); the
    applications are deleted from the cluster on the way out."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from maas.server.main import check_bind
    from maas.server.tls import check_tls
    from maas.serving.options import parse_overrides

    check_tls(settings)
    registry = Registry(settings)
    check_bind(settings, registry_keys=bool(registry.key_store().list()))
    scaling_overrides, batching = split_overrides(overrides or [])
    batching_overrides = parse_overrides(batching)
    initial = plan(settings, models, overrides or [])  # --set and models checked before Ray starts
    connect(address)
    import ray
    from ray import serve

    from maas.cluster.deployments import ingress_deployment, model_app_statuses, model_application

    def deploy(scalings: Mapping[str, ReplicaScaling], wait: bool) -> None:
        serve.run_many([serve.RunTarget(model_application(settings, name, s, batching_overrides), name=app_name(name),
                                        route_prefix=None) for name, s in scalings.items()],
                       wait_for_ingress_deployment_creation=wait, wait_for_applications_running=wait)

    def delete(names: list[str]) -> None:
        for name in names:
            serve.delete(app_name(name), _blocking=False)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serve.start(proxy_location="Disabled")  # the ingress runs maas's own HTTP and gRPC servers
    follower = DeploymentFollower(registry, models, scaling_overrides, deploy, delete)
    try:
        follower.start(initial, stale=sorted(set(model_app_statuses()) - set(initial)))
        ingress: Any = serve.run(ingress_deployment(num_cpus=settings.ray_ingress_cpus).bind(
            settings, models, batching_overrides, scaling_overrides), name=APP_NAME, route_prefix=None)
        wait_running(model_app_statuses, sorted(initial))
        served: list[str] = ingress.settle.remote().result()
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        log.info("maas ready: REST http://%s:%s, gRPC %s:%s (the ingress replica, on the head node); "
                 "deployments %s on a Ray cluster of %d node(s); following the registry for new models",
                 settings.host, settings.http_port, settings.host, settings.grpc_port,
                 ", ".join(app_name(n) for n in served) or "none", nodes)
        while not stop.wait(settings.poll_interval_s):
            try:
                follower.sync()
            except Exception:  # the controller or the database away for a moment: tried again next poll
                log.exception("following the registry failed; retrying in %.1f s", settings.poll_interval_s)
    finally:
        if address != "local":  # a local Ray goes with this process (and may already have had the signal)
            apps = [APP_NAME, *(app_name(n) for n in follower.deployed)]
            log.info("maas stopping: deleting the applications %s from the cluster", ", ".join(apps))
            for app in apps:
                try:
                    serve.delete(app)
                except Exception as exc:  # the cluster may be gone already: nothing left to delete
                    log.warning("could not delete the %r application: %s", app, exc)
        ray.shutdown()


def wait_running(statuses: Callable[[], Mapping[str, str]], models: list[str], timeout_s: float = 600.0) -> None:
    """Until every model's application runs; a failed one stops the start (its reason is in Ray's logs)."""
    deadline = time.monotonic() + timeout_s
    while True:
        now = statuses()
        failed = [m for m in models if now.get(m) == "DEPLOY_FAILED"]
        if failed:
            raise FailedPrecondition(f"the deployment of {', '.join(failed)} failed (see the Ray Serve logs)")
        pending = [m for m in models if now.get(m) != "RUNNING"]
        if not pending:
            return
        if time.monotonic() > deadline:
            raise FailedPrecondition(f"{', '.join(pending)} not running after {timeout_s:.0f} s")
        time.sleep(0.2)
