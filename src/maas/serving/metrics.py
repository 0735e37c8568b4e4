"""Prometheus collectors of the serving core, on a registry the data plane owns (the server exposes it)."""

from __future__ import annotations

import contextlib
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from maas.monitor.statistics import StatisticsTable, VersionStatistics

_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServingMetrics:
    """Requests, latencies (queue, compute, total), batch sizes, queue depth and loaded models."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "maas_inference_requests",
            "Inference requests by outcome (ok or an error code)",
            ["model", "version", "protocol", "outcome"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "maas_inference_request_seconds",
            "Time from request to response in the core",
            ["model", "version", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_seconds = Histogram(
            "maas_inference_queue_seconds",
            "Time a request waited in its batch queue",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.compute_seconds = Histogram(
            "maas_inference_compute_seconds",
            "Model execution time per batch",
            ["model", "version"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "maas_inference_batch_size",
            "Rows per executed batch",
            ["model", "version"],
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "maas_inference_queue_depth",
            "Requests waiting to be batched",
            ["model", "version"],
            registry=r,
        )
        self.models_loaded = Gauge("maas_models_loaded", "Model versions loaded and ready", registry=r)
        self.statistics = StatisticsTable()  # Triton's statistics extension, per loaded version
        # `labels()` costs a lock and a tuple per call; the hot path looks its children up here instead.
        self._request_children: dict[tuple[str, str, str, str], tuple[Any, Any, VersionStatistics | None]] = {}

    def request_done(self, model: str, version: str, protocol: str, outcome: str, seconds: float) -> None:
        """Count one finished inference request and, when it reached a model, its latency."""
        key = (model, version, protocol, outcome)
        children = self._request_children.get(key)
        if children is None:
            seconds_child = self.request_seconds.labels(model, version, protocol) if model else None
            stats = self.statistics.get(model, version) if model else None
            children = self._request_children[key] = (self.requests.labels(*key), seconds_child, stats)
        children[0].inc()
        if children[1] is not None:
            children[1].observe(seconds)
        if children[2] is not None:
            children[2].request_done(outcome == "ok", seconds)

    def observer(self, model: str, version: str) -> VersionObserver:
        return VersionObserver(self, model, version)

    def forget(self, model: str, version: str) -> None:
        """Drop the per-version series of an unloaded version so the gauge does not report stale depth."""
        for metric in (self.queue_depth,):
            with contextlib.suppress(KeyError):
                metric.remove(model, version)
        for key in [k for k in self._request_children if k[:2] == (model, version)]:
            del self._request_children[key]
        self.statistics.forget(model, version)


class VersionObserver:
    """The batcher's view of the metrics: labels bound to one model version."""

    def __init__(self, metrics: ServingMetrics, model: str, version: str) -> None:
        self._depth = metrics.queue_depth.labels(model, version)
        self._queued = metrics.queue_seconds.labels(model, version)
        self._compute = metrics.compute_seconds.labels(model, version)
        self._batch = metrics.batch_size.labels(model, version)
        self.stats = metrics.statistics.version(model, version)

    def queue_depth(self, depth: int) -> None:
        self._depth.set(depth)

    def queued(self, seconds: float) -> None:
        self._queued.observe(seconds)
        self.stats.queued(seconds)

    def computed(self, rows: int, seconds: float, requests: int = 1) -> None:
        self._compute.observe(seconds)
        self._batch.observe(rows)
        self.stats.computed(rows, seconds, requests)
