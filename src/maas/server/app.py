"""The composition root of the HTTP side: the services the routes call, a lifespan that starts and stops them
with the data plane and the gRPC server, and the edge (edge.py) that every request passes: request ids, limits,
auth, access log, and the fast infer route. The FastAPI app with the other routes (routes.py) is built after
the server is ready: see deferred_app.py for where and why."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from maas.config import Settings
from maas.console.gate import ConsoleGate
from maas.console.sessions import SessionStore
from maas.jobs import JobRunner
from maas.jobs.handlers import handlers as job_handlers
from maas.llm.service import LanguageModelService
from maas.monitor.history import MetricsHistory
from maas.registry import Registry
from maas.security import Authorizer
from maas.security.last_used import flush_last_used
from maas.server.auth import RestAuth
from maas.server.deferred_app import DeferredApp
from maas.server.edge import Edge, build_edge
from maas.server.infer_route import InferEndpoint
from maas.server.monitor_api import drift_gauges

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, registry: Registry, dataplane: Any, *, models: list[str] | None = None,
    grpc: bool = True, shutdown_grace_s: float = 10.0,
) -> Edge:
    """`dataplane` is a started-on-lifespan `ServingDataPlane`; gRPC is served beside HTTP when `grpc`. The
    FastAPI app is the edge's innermost layer once built (`edge.app…`, after the `DeferredApp`)."""
    keys, audit = registry.key_store(), registry.audit_log()
    authorizer = Authorizer(keys, settings.api_key)
    jobs = JobRunner(registry.job_store(), job_handlers(registry), max_concurrent=settings.max_jobs,
                     created_by=settings.user)
    gauges = drift_gauges(registry, dataplane, settings)
    history = MetricsHistory(dataplane.metrics.registry)  # the console's charts, without a Prometheus
    sessions = SessionStore(registry.sql_store())  # in the registry's database: shared, survives restarts
    llm = LanguageModelService(registry, dataplane.metrics.registry)
    closers: list[Any] = []  # what the routes' build made that shutdown closes (the explainer's pool)

    def build() -> Any:
        from maas.server.routes import Services, build_api

        return build_api(Services(settings, registry, dataplane, keys, audit, authorizer, jobs, history,
                                  sessions, llm), closers)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        await dataplane.start(models)
        await llm.start(models)
        jobs.start()
        gauges.start()
        history.start()
        grpc_server = None
        if grpc:
            from maas.server.grpc_bootstrap import start_grpc_server

            grpc_server, port = await start_grpc_server(dataplane, settings, settings.host, settings.grpc_port,
                                                        authorizer=authorizer, audit=audit)
            deferred.state.grpc_port = port
            log.info("gRPC listening on %s:%s", settings.host, port)
        flusher = asyncio.create_task(flush_last_used(authorizer))
        try:
            yield
        finally:
            flusher.cancel()
            await deferred.settle()
            await asyncio.to_thread(authorizer.flush_last_used, True)
            if grpc_server is not None:
                await grpc_server.stop(shutdown_grace_s)
            await llm.stop()
            await dataplane.stop(shutdown_grace_s)
            await asyncio.to_thread(jobs.stop, shutdown_grace_s)
            await asyncio.to_thread(gauges.stop)
            await asyncio.to_thread(history.stop)
            for closer in closers:
                closer.close()
            await asyncio.to_thread(authorizer.close)

    deferred = DeferredApp(build, lifespan, dataplane)
    deferred.state.authorizer = authorizer
    infer = InferEndpoint(dataplane, settings.max_request_bytes)
    return build_edge(deferred, infer, console=partial(ConsoleGate, sessions=sessions), auth=RestAuth(authorizer),
                      audit=audit, max_control_body_bytes=settings.max_control_body_bytes,
                      max_request_bytes=settings.max_request_bytes, max_upload_bytes=settings.max_upload_bytes)
