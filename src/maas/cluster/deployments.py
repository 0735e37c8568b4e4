"""The two kinds of Ray Serve deployment: one per served model (replicas that load it from the shared
registry and batch with maas's own batcher) and the ingress (the same app and servers as `maas serve`, whose
data plane sends inference to the model deployments through Ray Serve handles).

Why maas's gRPC server in the ingress rather than Ray Serve's gRPC proxy: Triton's clients call
`inference.GRPCInferenceService` with no `application` metadata; Ray's proxy would need that service's
methods re-declared on a deployment and would add one more hop and pickling per call, while the ingress
already runs the whole transport (auth, limits, error codes) that the single-process server runs.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Mapping
from typing import Any

from ray import serve

from maas.cluster.dataplane import ClusterDataPlane, pack_error
from maas.cluster.following import app_name, model_of
from maas.cluster.scaling import CALLS_PER_REPLICA, ReplicaScaling, resolve
from maas.config import Settings
from maas.errors import Internal, MaasError
from maas.serving.contract import InferenceRequest
from maas.serving.options import ModelOverrides, ServingOptions

log = logging.getLogger("maas")

# The ingress runs on the head node, where the HTTP proxy is and where clients find the gRPC port.
HEAD_NODE = "node:__internal_head__"


def replica_tag() -> str:
    """`<replica id>@<node id prefix>`: which replica on which node answered (the `maas_replica` parameter)."""
    import ray

    replica = serve.get_replica_context().replica_id.unique_id
    return f"{replica}@{ray.get_runtime_context().get_node_id()[:12]}"


def _threads(num_cpus: float | None) -> int:
    return max(1, int(round(num_cpus if num_cpus is not None else 1.0)))


class ModelReplica:
    """One replica of one model: a `ServingDataPlane` following that model in the shared registry."""

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async constructor
        self, settings: Settings, model: str, overrides: Mapping[str, ModelOverrides], num_cpus: float | None = None,
    ) -> None:
        from maas.registry import Registry
        from maas.server.main import prediction_log
        from maas.serving.dataplane import ServingDataPlane

        registry = Registry(settings)
        options = ServingOptions.from_settings(settings, (model,), overrides)
        if "inference_threads" not in settings.model_fields_set:  # not set: as many as the replica's CPUs
            from dataclasses import replace

            options = replace(options, inference_threads=_threads(num_cpus))
        self.dataplane = ServingDataPlane(registry, options)
        self.dataplane.predictions = prediction_log(settings, registry, self.dataplane.metrics.registry)
        await self.dataplane.start([model])
        self.tag = replica_tag()
        log.info("replica %s serves %s", self.tag, model)

    async def infer_many(self, requests: list[InferenceRequest]) -> list[tuple[str, Any]]:
        """The requests of one handle call (the ingress's `Coalescer` groups them), all in this replica's batcher
        at once; one outcome each, so one bad request fails only itself."""
        return list(await asyncio.gather(*(self._infer(r) for r in requests)))

    async def _infer(self, request: InferenceRequest) -> tuple[str, Any]:
        try:
            response = await self.dataplane.infer(request)
        except MaasError as exc:
            return "error", pack_error(exc)
        except Exception:  # a bug: logged here with its trace, the client gets maas's 500
            log.exception("%s: inference failed in replica %s", request.model_name, self.tag)
            return "error", pack_error(Internal("inference failed in a replica"))
        response.parameters["maas_replica"] = self.tag
        return "ok", response

    async def check_health(self) -> None:
        if not self.dataplane.live():
            raise RuntimeError("the data plane has stopped")

    async def __del__(self) -> None:
        await self.dataplane.stop(10.0)


class Ingress:
    """The routes of `maas serve` (REST, control API, OpenAI, console) and its gRPC server, run by maas's own
    uvicorn and grpc.aio servers inside this replica: the same edge (limits, auth, errors) as one process.
    It finds the model deployments itself (`cluster/discovery.py`), those of the start and those added later.

    Ray Serve's HTTP proxy was measured first: it added ~55 ms of CPU per request (its proxy actor plus the
    ASGI bridge in the replica) and cut the tiny CNN to 3% of single-process throughput (docs/scaling.md)."""

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async constructor
        self, settings: Settings, models: list[str] | None, overrides: Mapping[str, ModelOverrides],
        scaling_overrides: Mapping[str, Mapping[str, int | float]],
    ) -> None:
        from maas.cluster.discovery import DeploymentDiscovery
        from maas.monitor.tracing import tracer_from_environment
        from maas.registry import Registry
        from maas.server.app import create_app
        from maas.server.main import http_server

        registry = Registry(settings)
        options = ServingOptions.from_settings(settings, tuple(models) if models else None, overrides)
        self.dataplane = ClusterDataPlane(registry, options)
        self.dataplane.tracer = tracer_from_environment(settings.tracing)
        self.discovery = DeploymentDiscovery(self.dataplane, model_app_statuses, model_handle,
                                             functools.partial(_max_calls, registry, scaling_overrides),
                                             settings.poll_interval_s)
        app = create_app(settings, registry, self.dataplane, models=models)
        self.server = http_server(settings, app, self.dataplane)  # its lifespan starts gRPC and the data plane
        self.task = asyncio.get_running_loop().create_task(self.server.serve(), name="maas ingress")
        while not self.server.started:
            if self.task.done():
                self.task.result()  # the start's own error (a port in use…) fails the replica
                raise RuntimeError("the ingress's HTTP server stopped while starting")
            await asyncio.sleep(0.05)
        await self.discovery.sync()  # the models loaded: those whose deployment already runs go to it at once
        self.discovery.start()

    async def settle(self) -> list[str]:
        """Look the deployments up now (the driver asks once they all run); the models sent to replicas."""
        await self.discovery.sync()
        return sorted(self.dataplane.handles)

    async def check_health(self) -> None:
        if self.task.done() or not self.dataplane.live():
            raise RuntimeError("the ingress's servers have stopped")

    async def __del__(self) -> None:
        await self.discovery.stop()
        self.server.should_exit = True
        await asyncio.wait_for(asyncio.shield(self.task), 30)


QUIET = {"enable_access_log": False, "log_level": "WARNING"}  # a log line per request costs more than the call

def ingress_deployment(num_cpus: float = 1.0, num_replicas: int = 1) -> Any:
    return serve.deployment(
        Ingress, name="ingress", num_replicas=num_replicas, logging_config=QUIET,
        ray_actor_options={"num_cpus": num_cpus, "resources": {HEAD_NODE: 0.001}},
    )


def model_application(settings: Settings, model: str, scaling: ReplicaScaling,
                      overrides: Mapping[str, ModelOverrides]) -> Any:
    """`model`'s deployment, bound: the application named `app_name(model)` (`cluster/following.py`)."""
    options = scaling.deployment_options()
    deployment: Any = serve.deployment(ModelReplica, name=app_name(model), health_check_period_s=2.0,
                                       health_check_timeout_s=10.0, logging_config=QUIET, **options)
    return deployment.bind(settings, model, overrides, options["ray_actor_options"]["num_cpus"])


def model_app_statuses() -> dict[str, str]:
    """Model name -> its application's status (RUNNING, DEPLOYING, …), from Serve's controller."""
    apps = serve.status().applications
    return {model: app.status.value for name, app in apps.items() if (model := model_of(name)) is not None}


def model_handle(model: str) -> Any:
    return serve.get_deployment_handle(app_name(model), app_name=app_name(model))


def _max_calls(registry: Any, scaling_overrides: Mapping[str, Mapping[str, int | float]], model: str) -> int:
    """The handle calls in flight to `model`'s deployment, from the config its deployment was sized by."""
    try:
        return resolve(registry.get(model).config, model, scaling_overrides.get(model)).calls_in_flight()
    except MaasError:  # deleted meanwhile, or a bad config.scaling (the driver kept the old size)
        return CALLS_PER_REPLICA
