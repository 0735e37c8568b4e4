"""The in-process metrics history behind the console's charts: differences of the serving collectors per
model (versions folded together), with percentiles from the latency histogram, kept in a bounded ring."""

from __future__ import annotations

import time

import pytest

from maas.monitor.history import MetricsHistory
from maas.serving.metrics import ServingMetrics


def test_rates_percentiles_errors_and_depth_per_model() -> None:
    metrics = ServingMetrics()
    history = MetricsHistory(metrics.registry, keep=3)
    history.sample()  # the first reading is the baseline
    for _ in range(90):
        metrics.request_done("m", "1", "rest", "ok", 0.002)
    for _ in range(10):
        metrics.request_done("m", "2", "grpc", "ok", 0.2)
    metrics.request_done("m", "2", "rest", "invalid_argument", 0.001)
    metrics.queue_depth.labels("m", "1").set(4)
    time.sleep(0.05)
    history.sample()
    [point] = history.series("m")
    assert point["requests_per_s"] > 0 and point["errors_per_s"] > 0
    assert point["requests_per_s"] / point["errors_per_s"] == pytest.approx(101)  # both divide by one interval
    assert point["p50_ms"] is not None and 1 <= point["p50_ms"] <= 2.5
    assert point["p99_ms"] is not None and 100 <= point["p99_ms"] <= 250
    assert point["queue_depth"] == 4
    for _ in range(5):
        history.sample()
    assert len(history.series("m")) == 3  # the ring keeps `keep` points
    assert history.series("m")[-1]["requests_per_s"] == 0
    assert "m" in history.models() and "m:1" in history.models()


def test_the_thread_samples_until_stopped() -> None:
    metrics = ServingMetrics()
    history = MetricsHistory(metrics.registry, interval_s=0.02)
    metrics.request_done("x", "1", "rest", "ok", 0.01)
    history.start()
    time.sleep(0.3)
    history.stop()
    assert history.series("x")
    assert history._thread is None
