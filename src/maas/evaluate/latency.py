"""In-process latency and throughput of one version, and its size on disk: numbers to compare versions by
(e.g. a quantized child against its parent), measured within a small time budget so evaluation stays quick."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from maas.config import DEFAULT_MAX_BATCH_SIZE
from maas.evaluate.runner import Runner

DEFAULT_BUDGET_S = 1.0
DEFAULT_MAX_ITERATIONS = 200


def model_size(path: str | os.PathLike[str]) -> dict[str, int]:
    """Bytes on disk and gzip-compressed bytes (what a download or a container layer costs, and what
    unstructured sparsity actually saves). The one size measurement; optimize reports it too."""
    with open(path, "rb") as f:
        data = f.read()
    return {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=6, mtime=0))}


def time_calls(call: Callable[[], object], *, budget_s: float, max_iterations: int,
               min_iterations: int = 3) -> list[float]:
    """Seconds per call of `call` (after one warm-up call, which allocates): at least `min_iterations`, then
    until `budget_s` or `max_iterations`. The one timing loop; optimize's speed report uses it too."""
    call()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < max_iterations and (len(times) < min_iterations or time.perf_counter() < deadline):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def measure(
    runner: Runner, prepared: np.ndarray, *, batch_size: int, budget_s: float = DEFAULT_BUDGET_S,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> dict[str, Any]:
    """Run one batch repeatedly (after one warm-up) until `budget_s` or `max_iterations`; report p50/p99 of
    the per-call latency in milliseconds and the rows per second. Inputs are prepared, so pre-processing is
    not timed."""
    batch = _batch(prepared, batch_size)
    times = time_calls(lambda: runner.run(batch), budget_s=budget_s, max_iterations=max_iterations)
    arr = np.asarray(times)
    return {
        "batch_size": int(len(batch)),
        "iterations": len(times),
        "p50_ms": float(np.percentile(arr, 50) * 1e3),
        "p99_ms": float(np.percentile(arr, 99) * 1e3),
        "throughput_per_s": float(len(batch) * len(arr) / arr.sum()) if arr.sum() > 0 else float("inf"),
    }


def benchmark(runner: Runner, prepared: np.ndarray, *, budget_s: float = DEFAULT_BUDGET_S) -> dict[str, Any]:
    """Latency at batch 1 and at the version's largest batch (its max_batch_size, else the default)."""
    fixed = runner.input.shape[0] if runner.input.shape else -1
    sizes = [fixed] if fixed > 0 else sorted({1, runner.max_batch_size or DEFAULT_MAX_BATCH_SIZE})
    return {f"batch_{n}": measure(runner, prepared, batch_size=n, budget_s=budget_s / len(sizes)) for n in sizes}


def _batch(prepared: np.ndarray, size: int) -> np.ndarray:
    """`size` rows, repeating the data when it has fewer."""
    if len(prepared) >= size:
        return prepared[:size]
    reps = -(-size // len(prepared))
    return np.concatenate([prepared] * reps)[:size]
