"""The FastAPI app behind the edge: the control API, KServe v2 (all but infer) and v1 routes, OpenAI, the
console's pages and assets, the docs and /metrics. Built after the server is ready (deferred_app.py), in a
worker thread; the lifespan that starts what these routes call is app.py's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from maas import __version__
from maas.config import Settings
from maas.console import pages as console_pages
from maas.console.sessions import SessionStore
from maas.jobs import JobRunner
from maas.llm.service import LanguageModelService
from maas.monitor.history import MetricsHistory
from maas.registry import Registry
from maas.security import AuditLog, Authorizer, KeyStore
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
    uploads_api,
)


@dataclass
class Services:
    """What the routes call, made (and started, by the lifespan) before them."""

    settings: Settings
    registry: Registry
    dataplane: Any
    keys: KeyStore
    audit: AuditLog
    authorizer: Authorizer
    jobs: JobRunner
    history: MetricsHistory
    sessions: SessionStore
    llm: LanguageModelService


def build_api(s: Services, closers: list[Any]) -> FastAPI:
    """Blocking (a worker thread's): the FastAPI app over `s`; what must be closed at shutdown goes on `closers`."""
    explainer = explain_api.service(s.registry, s.dataplane, s.settings)
    closers.append(explainer)
    app = FastAPI(
        title="maas", version=__version__,
        description="Model registry control API and KServe v2 / Triton-compatible inference.",
        docs_url=None, redoc_url=None,  # docs.install serves /docs from local assets
    )
    errors.install(app)
    docs.install(app)
    app.include_router(rest_v2.router(s.dataplane, s.settings))
    app.include_router(rest_v1.router(s.dataplane, s.settings))
    app.include_router(monitor_api.router(s.registry, s.dataplane, s.settings))  # before control's {name:path}
    app.include_router(traffic_api.router(s.registry))  # before control's catch-all /models/{name:path}
    app.include_router(openai_api.router(s.llm, s.registry, s.settings))
    app.include_router(control.router(s.registry, s.settings, s.jobs))
    app.include_router(jobs_api.router(s.jobs, s.settings))
    app.include_router(uploads_api.router(s.registry, s.settings, s.jobs))
    app.include_router(keys_api.router(s.keys, s.audit, s.authorizer))
    app.include_router(explain_api.router(explainer, s.settings))
    console = console_pages.Console(s.registry, s.dataplane, s.jobs, s.keys, s.authorizer, s.history, s.sessions)
    app.include_router(console_pages.router(console))
    app.mount(console_pages.STATIC_URL, StaticFiles(packages=[("maas.console", "static")]), name="console-static")

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> Response:
        return Response(generate_latest(s.dataplane.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
