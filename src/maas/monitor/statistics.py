"""Triton's statistics extension as plain counters: cumulative counts and nanoseconds per loaded version.

Updated on the event loop from the request path and the batcher's observer, so they are plain number
attributes (no locks, no labels): a few additions per request.
"""

from __future__ import annotations

import time
from typing import Any


class VersionStatistics:
    """One version's figures, in Triton's terms: an inference is a row, an execution a model run.

    Flat slots rather than an object per stage: the four calls of a request cost 4.8 µs more than no-op
    calls with an object per stage, 2.6 µs flat (timeit on the shared 2-core machine at load 13)."""

    __slots__ = (
        "name", "version", "last_inference_s", "inference_count", "execution_count",
        "success_n", "success_s", "fail_n", "fail_s", "queue_n", "queue_s", "input_n", "input_s",
        "infer_n", "infer_s", "output_n", "output_s", "batches",
    )

    def __init__(self, name: str, version: str) -> None:
        self.name, self.version = name, version
        self.last_inference_s = 0.0
        self.inference_count = self.execution_count = 0
        self.success_n = self.fail_n = self.queue_n = self.input_n = self.infer_n = self.output_n = 0
        self.success_s = self.fail_s = self.queue_s = self.input_s = self.infer_s = self.output_s = 0.0
        self.batches: dict[int, list[float]] = {}  # rows -> [executions, seconds]

    def request_done(self, ok: bool, seconds: float) -> None:
        if ok:
            self.success_n += 1
            self.success_s += seconds
        else:
            self.fail_n += 1
            self.fail_s += seconds
        self.last_inference_s = time.time()

    def queued(self, seconds: float) -> None:
        self.queue_n += 1
        self.queue_s += seconds

    def computed(self, rows: int, seconds: float, requests: int) -> None:
        """One model execution over `rows` rows serving `requests` requests (each is charged the run)."""
        self.execution_count += 1
        self.inference_count += rows
        self.infer_n += requests
        self.infer_s += seconds * requests
        batch = self.batches.get(rows)
        if batch is None:
            batch = self.batches[rows] = [0, 0.0]
        batch[0] += 1
        batch[1] += seconds

    def processed(self, input_s: float, output_s: float) -> None:
        """Per request: validation + pre-processing, and post-processing + output selection."""
        self.input_n += 1
        self.input_s += input_s
        self.output_n += 1
        self.output_s += output_s

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape Triton's HTTP clients read (gRPC builds the same from it)."""

        def duration(count: float, seconds: float) -> dict[str, int]:
            return {"count": int(count), "ns": int(seconds * 1e9)}

        return {
            "name": self.name,
            "version": self.version,
            "last_inference": int(self.last_inference_s * 1000),  # milliseconds since the epoch
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": duration(self.success_n, self.success_s),
                "fail": duration(self.fail_n, self.fail_s),
                "queue": duration(self.queue_n, self.queue_s),
                "compute_input": duration(self.input_n, self.input_s),
                "compute_infer": duration(self.infer_n, self.infer_s),
                "compute_output": duration(self.output_n, self.output_s),
            },
            # Merging and splitting a batch happen inside the model run, so they are part of compute_infer.
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": duration(n, 0.0),
                    "compute_infer": duration(n, seconds),
                    "compute_output": duration(n, 0.0),
                }
                for size, (n, seconds) in sorted(self.batches.items())
            ],
        }


class StatisticsTable:
    """Every loaded version's statistics; a version's figures start at load and go with its unload."""

    def __init__(self) -> None:
        self._versions: dict[tuple[str, str], VersionStatistics] = {}

    def version(self, name: str, version: str) -> VersionStatistics:
        key = (name, version)
        stats = self._versions.get(key)
        if stats is None:
            stats = self._versions[key] = VersionStatistics(name, version)
        return stats

    def get(self, name: str, version: str) -> VersionStatistics | None:
        return self._versions.get((name, version))

    def forget(self, name: str, version: str) -> None:
        self._versions.pop((name, version), None)

    def select(self, name: str = "", version: str = "") -> list[VersionStatistics]:
        return [
            s
            for (n, v), s in sorted(self._versions.items(), key=lambda kv: (kv[0][0], int(kv[0][1] or 0)))
            if (not name or n == name) and (not version or v == version)
        ]
