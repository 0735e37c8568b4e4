"""A short in-process history of the server's own serving metrics, so the console can chart requests/s,
latency percentiles, errors and queue depth over the last minutes without a Prometheus server.

Every `interval_s` a thread reads the data plane's Prometheus registry (the figures `/metrics` exports) and
keeps the difference to the previous reading in a ring of `keep` points per model (its versions folded
together) and per `model:version` (by default 2 s × 300 = 10 minutes). The collectors are in memory, so a
reading is cheap."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from prometheus_client import CollectorRegistry

from maas.monitor.live import parse, quantile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Point:
    at: float  # unix seconds
    requests_per_s: float
    errors_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    queue_depth: float


def by_model(sample: dict[str, Any]) -> dict[str, Any]:
    """`parse`'s samples keyed by model (every version summed) and by `model:version` (the arms' figures)."""
    out: dict[str, Any] = {"requests": {}, "errors": {}, "buckets": {}, "depth": {}}
    for kind in ("requests", "errors", "depth"):
        for (model, version), value in sample[kind].items():
            for key in (model, f"{model}:{version}"):
                out[kind][key] = out[kind].get(key, 0.0) + value
    for (model, version), buckets in sample["buckets"].items():
        for key in (model, f"{model}:{version}"):
            merged = out["buckets"].setdefault(key, {})
            for le, count in buckets.items():
                merged[le] = merged.get(le, 0.0) + count
    return out


def points(before: dict[str, Any], after: dict[str, Any], seconds: float, at: float) -> dict[str, Point]:
    out = {}
    for model in set(after["requests"]) | set(after["depth"]):
        done = after["requests"].get(model, 0.0) - before["requests"].get(model, 0.0)
        failed = after["errors"].get(model, 0.0) - before["errors"].get(model, 0.0)
        b0, b1 = before["buckets"].get(model, {}), after["buckets"].get(model, {})
        rate = (lambda n: max(0.0, n) / seconds) if seconds > 0 else (lambda n: 0.0)
        out[model] = Point(at, rate(done), rate(failed), quantile(b0, b1, 0.5), quantile(b0, b1, 0.95),
                           quantile(b0, b1, 0.99), after["depth"].get(model, 0.0))
    return out


class MetricsHistory:
    def __init__(self, registry: CollectorRegistry, interval_s: float = 2.0, keep: int = 300) -> None:
        self.registry = registry
        self.interval_s = interval_s
        self.keep = keep
        self._series: dict[str, deque[Point]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[float, dict[str, Any]] | None = None

    def sample(self) -> None:
        """Take one reading (the thread calls this; tests may too)."""
        from prometheus_client import generate_latest  # its exposition module: after ready (server/prometheus_core.py)

        now = time.time()
        current = by_model(parse(generate_latest(self.registry).decode()))
        if self._last is not None:
            then, before = self._last
            new = points(before, current, now - then, now)
            with self._lock:
                for model, point in new.items():
                    self._series.setdefault(model, deque(maxlen=self.keep)).append(point)
        self._last = (now, current)

    def models(self) -> list[str]:
        with self._lock:
            return sorted(self._series)

    def series(self, model: str) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(p) for p in self._series.get(model, ())]

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="maas-metrics-history", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        # The first reading one interval after the start: with `maas serve`, after the server is ready.
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a bad reading must not end the history; the next one tries again
                log.warning("could not sample the serving metrics", exc_info=True)
