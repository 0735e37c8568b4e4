"""Latency is measured within a bounded budget and reported (never asserted); size is bytes and gzip bytes."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np

from maas.evaluate.latency import benchmark, measure, model_size
from maas.evaluate.runner import Runner
from maas.registry import Registry


def test_model_size(tmp_path: Path) -> None:
    p = tmp_path / "m.onnx"
    p.write_bytes(b"a" * 10_000)
    assert model_size(p) == {"bytes": 10_000, "gzip_bytes": len(gzip.compress(b"a" * 10_000, compresslevel=6))}


def test_measure_is_bounded_and_repeats_short_data(reg: Registry, publish: Any) -> None:
    v = publish("iris", max_batch_size=32)
    with Runner(reg, v) as r:
        prepared = r.prepare(np.ones((5, 4)))
        one = measure(r, prepared, batch_size=32, budget_s=0.05, max_iterations=10)
        assert one["batch_size"] == 32 and 3 <= one["iterations"] <= 10
        assert 0 < one["p50_ms"] <= one["p99_ms"] and one["throughput_per_s"] > 0
        assert set(benchmark(r, prepared, budget_s=0.05)) == {"batch_1", "batch_32"}
