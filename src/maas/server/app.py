"""The composition root of the HTTP side: one FastAPI app with the control API, KServe v2 and v1 routes,
/metrics, and a lifespan that starts and stops the data plane and the gRPC server with it, behind the edge
(edge.py) that every request passes: request ids, limits, auth, access log, and the fast infer route."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from maas import __version__
from maas.config import Settings
from maas.console import pages as console_pages
from maas.console.gate import ConsoleGate
from maas.console.sessions import SessionStore
from maas.jobs import JobRunner
from maas.jobs.handlers import handlers as job_handlers
from maas.monitor.history import MetricsHistory
from maas.registry import Registry
from maas.security import Authorizer
from maas.security.last_used import flush_last_used
from maas.server import (
    control,
    docs,
    errors,
    explain_api,
    jobs_api,
    keys_api,
    monitor_api,
    openai_api,
    rest_v1,
    rest_v2,
    traffic_api,
)
from maas.server.auth import RestAuth
from maas.server.edge import Edge, build_edge
from maas.server.infer_route import InferEndpoint

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, registry: Registry, dataplane: Any, *, models: list[str] | None = None,
    grpc: bool = True, shutdown_grace_s: float = 10.0,
) -> Edge:
    """`dataplane` is a started-on-lifespan `ServingDataPlane`; gRPC is served beside HTTP when `grpc`. The
    FastAPI app is the edge's innermost layer (`edge.app…`)."""
    keys, audit = registry.key_store(), registry.audit_log()
    authorizer = Authorizer(keys, settings.api_key)
    jobs = JobRunner(registry.job_store(), job_handlers(registry), max_concurrent=settings.max_jobs,
                     created_by=settings.user)
    explainer = explain_api.service(registry, dataplane, settings)

    gauges = monitor_api.drift_gauges(registry, dataplane, settings)
    history = MetricsHistory(dataplane.metrics.registry)  # the console's charts, without a Prometheus
    sessions = SessionStore(registry.sql_store())  # in the registry's database: shared, survives restarts

    from maas.llm.service import LanguageModelService

    llm = LanguageModelService(registry, dataplane.metrics.registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
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
            app.state.grpc_port = port
            log.info("gRPC listening on %s:%s", settings.host, port)
        flusher = asyncio.create_task(flush_last_used(authorizer))
        try:
            yield
        finally:
            flusher.cancel()
            await asyncio.to_thread(authorizer.flush_last_used, True)
            if grpc_server is not None:
                await grpc_server.stop(shutdown_grace_s)
            await llm.stop()
            await dataplane.stop(shutdown_grace_s)
            await asyncio.to_thread(jobs.stop, shutdown_grace_s)
            await asyncio.to_thread(gauges.stop)
            await asyncio.to_thread(history.stop)
            explainer.close()
            await asyncio.to_thread(authorizer.close)

    app = FastAPI(
        title="maas", version=__version__, lifespan=lifespan,
        description="Model registry control API and KServe v2 / Triton-compatible inference.",
        docs_url=None, redoc_url=None,  # docs.install serves /docs from local assets
    )
    errors.install(app)
    docs.install(app)
    app.include_router(rest_v2.router(dataplane, settings))
    app.include_router(rest_v1.router(dataplane, settings))
    app.include_router(monitor_api.router(registry, dataplane, settings))  # before control's {name:path}
    app.include_router(traffic_api.router(registry))  # before control's catch-all /models/{name:path}
    app.include_router(openai_api.router(llm, registry, settings))
    app.include_router(control.router(registry, settings, jobs))
    app.include_router(jobs_api.router(jobs, settings))
    app.include_router(keys_api.router(keys, audit, authorizer))
    app.include_router(explain_api.router(explainer, settings))
    console = console_pages.Console(registry, dataplane, jobs, keys, authorizer, history, sessions)
    app.include_router(console_pages.router(console))
    app.mount(console_pages.STATIC_URL, StaticFiles(packages=[("maas.console", "static")]), name="console-static")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(dataplane.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.state.authorizer = authorizer
    infer = InferEndpoint(dataplane, settings.max_request_bytes)
    return build_edge(app, infer, console=partial(ConsoleGate, sessions=sessions), auth=RestAuth(authorizer),
                      audit=audit, max_control_body_bytes=settings.max_control_body_bytes,
                      max_request_bytes=settings.max_request_bytes, max_upload_bytes=settings.max_upload_bytes)
