"""The composition root of the HTTP side: one FastAPI app with the control API, KServe v2 and v1 routes,
/metrics, and a lifespan that starts and stops the data plane and the gRPC server with it, behind the edge
(edge.py) that every request passes: request ids, limits, auth, access log, and the fast infer route."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response

from maas import __version__
from maas.config import Settings
from maas.jobs import JobRunner, JobStore
from maas.jobs.handlers import handlers as job_handlers
from maas.registry import Registry
from maas.server import control, docs, errors, jobs_api, rest_v1, rest_v2
from maas.server.edge import Edge, build_edge
from maas.server.infer_route import InferEndpoint

log = logging.getLogger(__name__)


def create_app(
    settings: Settings, registry: Registry, dataplane: Any, *, models: list[str] | None = None,
    grpc: bool = True, shutdown_grace_s: float = 10.0,
) -> Edge:
    """`dataplane` is a started-on-lifespan `ServingDataPlane`; gRPC is served beside HTTP when `grpc`. The
    FastAPI app is the edge's innermost layer (`edge.app…`)."""
    jobs = JobRunner(JobStore(registry.store), job_handlers(registry), max_concurrent=settings.max_jobs,
                     created_by=settings.user)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await dataplane.start(models)
        jobs.start()
        grpc_server = None
        if grpc:
            from maas.server.grpc_server import start_grpc_server

            grpc_server, port = await start_grpc_server(dataplane, settings, settings.host, settings.grpc_port)
            app.state.grpc_port = port
            log.info("gRPC listening on %s:%s", settings.host, port)
        try:
            yield
        finally:
            if grpc_server is not None:
                await grpc_server.stop(shutdown_grace_s)
            await dataplane.stop(shutdown_grace_s)
            await asyncio.to_thread(jobs.stop, shutdown_grace_s)

    app = FastAPI(
        title="maas", version=__version__, lifespan=lifespan,
        description="Model registry control API and KServe v2 / Triton-compatible inference.",
        docs_url=None, redoc_url=None,  # docs.install serves /docs from local assets
    )
    errors.install(app)
    docs.install(app)
    app.include_router(rest_v2.router(dataplane, settings))
    app.include_router(rest_v1.router(dataplane, settings))
    app.include_router(control.router(registry, settings, jobs))
    app.include_router(jobs_api.router(jobs))

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(dataplane.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    infer = InferEndpoint(dataplane, settings.max_request_bytes)
    return build_edge(app, infer, api_key=settings.api_key, max_request_bytes=settings.max_request_bytes,
                      max_upload_bytes=settings.max_upload_bytes)
