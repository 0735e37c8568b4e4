"""Monitoring over HTTP: `GET /api/v1/models/{name}/drift?since=1h[&version=V][&method=M]`, and the drift
gauges' refresh thread started with the server. Translation only; the report is `maas.monitor`'s."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maas.config import Settings
from maas.monitor.gauges import DriftGauges
from maas.monitor.log_writer import LogWriter, open_log_writer
from maas.registry import Registry
from maas.types import check_name

if TYPE_CHECKING:
    from fastapi import APIRouter


def log_writer(dataplane: Any, registry: Registry, settings: Settings) -> LogWriter:
    """The server's own prediction-log writer, else the URL's (sealed when the home is encrypted)."""
    predictions = getattr(dataplane, "predictions", None)
    writer = getattr(predictions, "writer", None)
    return writer if writer is not None else open_log_writer(settings.prediction_log_url, registry.sealing_keys())


def router(registry: Registry, dataplane: Any, settings: Settings) -> APIRouter:
    from fastapi import APIRouter  # here: drift_gauges is made at start, the routes after ready
    from starlette.concurrency import run_in_threadpool

    r = APIRouter(prefix="/api/v1", tags=["monitor"])

    @r.get("/models/{name}/drift")
    async def drift(name: str, since: str = "1h", version: str | None = None,
                    method: str | None = None) -> dict[str, Any]:
        from maas.monitor.report import drift_report  # scipy and pyarrow load on first use

        check_name(name)
        report = await run_in_threadpool(
            drift_report, registry, log_writer(dataplane, registry, settings), name, version, since, method=method
        )
        return report.to_dict()

    return r


def drift_gauges(registry: Registry, dataplane: Any, settings: Settings) -> DriftGauges:
    def served() -> list[tuple[str, str]]:
        return [(s.name, s.version) for s in dataplane.metrics.statistics.select()]

    return DriftGauges(
        registry, log_writer(dataplane, registry, settings), served, dataplane.metrics.registry,
        interval_s=settings.drift_refresh_s, window=settings.drift_window,
    )
