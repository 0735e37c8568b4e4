"""The live view's figures: two scrapes of a server's /metrics text -> per model version requests/s,
p50/p99 latency over the interval, errors, queue depth and the drift verdict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, str]


@dataclass(frozen=True)
class ModelLine:
    model: str
    version: str
    requests_per_s: float
    p50_ms: float | None
    p99_ms: float | None
    errors: float  # failed requests in the interval
    queue_depth: float
    drift: str  # "drift", "ok" or "-" (no figures yet)


def parse(text: str) -> dict[str, Any]:
    """The samples the view needs, keyed by (model, version)."""
    out: dict[str, Any] = {"requests": {}, "errors": {}, "buckets": {}, "depth": {}, "drift": {}}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = s.labels
            key = (labels.get("model", ""), labels.get("version", ""))
            if not key[0]:
                continue
            if s.name == "maas_inference_requests_total":
                out["requests"][key] = out["requests"].get(key, 0.0) + s.value
                if labels.get("outcome") != "ok":
                    out["errors"][key] = out["errors"].get(key, 0.0) + s.value
            elif s.name == "maas_inference_request_seconds_bucket":
                bucket = out["buckets"].setdefault(key, {})
                le = float(labels["le"])
                bucket[le] = bucket.get(le, 0.0) + s.value
            elif s.name == "maas_inference_queue_depth":
                out["depth"][key] = s.value
            elif s.name == "maas_dataset_drift":
                out["drift"][key] = s.value
    return out


def quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    edges = sorted(after)
    counts = [after[e] - before.get(e, 0.0) for e in edges]  # cumulative counts in the interval
    if not counts or counts[-1] <= 0:
        return None
    target = q * counts[-1]
    lower, below = 0.0, 0.0
    for edge, count in zip(edges, counts, strict=True):
        if count >= target:
            if edge == float("inf"):
                return lower * 1000
            share = (target - below) / max(count - below, 1e-12)
            return (lower + (edge - lower) * share) * 1000
        lower, below = edge, count
    return lower * 1000


def lines(before: dict[str, Any], after: dict[str, Any], seconds: float) -> list[ModelLine]:
    keys = sorted(set(after["requests"]) | set(after["depth"]))
    out = []
    for key in keys:
        done = after["requests"].get(key, 0.0) - before["requests"].get(key, 0.0)
        b0, b1 = before["buckets"].get(key, {}), after["buckets"].get(key, {})
        drift = after["drift"].get(key)
        out.append(ModelLine(
            key[0], key[1], done / seconds if seconds > 0 else 0.0, quantile(b0, b1, 0.5), quantile(b0, b1, 0.99),
            after["errors"].get(key, 0.0) - before["errors"].get(key, 0.0), after["depth"].get(key, 0.0),
            "-" if drift is None else ("drift" if drift else "ok"),
        ))
    return out
