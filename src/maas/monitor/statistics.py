"""Triton's statistics extension as plain counters: cumulative counts and nanoseconds per loaded version.

Updated on the event loop from the request path and the batcher's observer, so they are plain integer
attributes (no locks, no labels): a few additions per request, measured below noise on the tiny CNN.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

_STAGES = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output")


@dataclass
class Duration:
    count: int = 0
    ns: int = 0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.ns += int(seconds * 1e9)

    def to_dict(self) -> dict[str, int]:
        return {"count": self.count, "ns": self.ns}


@dataclass
class VersionStatistics:
    """One version's figures, in Triton's terms: an inference is a row, an execution a model run."""

    name: str
    version: str
    last_inference_ms: int = 0
    inference_count: int = 0
    execution_count: int = 0
    stages: dict[str, Duration] = field(default_factory=lambda: {s: Duration() for s in _STAGES})
    batches: dict[int, Duration] = field(default_factory=dict)

    def request_done(self, ok: bool, seconds: float) -> None:
        self.stages["success" if ok else "fail"].add(seconds)
        self.last_inference_ms = int(time.time() * 1000)

    def queued(self, seconds: float) -> None:
        self.stages["queue"].add(seconds)

    def computed(self, rows: int, seconds: float, requests: int) -> None:
        """One model execution over `rows` rows serving `requests` requests (each is charged the run)."""
        self.execution_count += 1
        self.inference_count += rows
        self.stages["compute_infer"].add(seconds * requests, requests)
        batch = self.batches.get(rows)
        if batch is None:
            batch = self.batches[rows] = Duration()
        batch.add(seconds)

    def processed(self, input_s: float, output_s: float) -> None:
        """Per request: validation + pre-processing, and post-processing + output selection."""
        self.stages["compute_input"].add(input_s)
        self.stages["compute_output"].add(output_s)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape Triton's HTTP clients read (gRPC builds the same from it)."""
        return {
            "name": self.name,
            "version": self.version,
            "last_inference": self.last_inference_ms,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {s: d.to_dict() for s, d in self.stages.items()},
            # Merging and splitting a batch happen inside the model run, so they are part of compute_infer.
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": {"count": d.count, "ns": 0},
                    "compute_infer": d.to_dict(),
                    "compute_output": {"count": d.count, "ns": 0},
                }
                for size, d in sorted(self.batches.items())
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
