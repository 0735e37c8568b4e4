"""Prometheus collectors of traffic: requests, failures and latency per arm, shadow comparisons and drops,
agreement, PSI and state per rollout. Registered on the data plane's registry, so /metrics shows them."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from maas.traffic.rollout import RolloutState

_LATENCY = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_ERROR = (1e-6, 1e-4, 1e-3, 0.01, 0.05, 0.1, 0.5, 1.0)


class TrafficMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.arm_requests = Counter("maas_traffic_requests", "Requests routed by a split, per arm and outcome",
                                    ["model", "version", "outcome"], registry=r)
        self.arm_seconds = Histogram("maas_traffic_request_seconds", "Latency of requests routed by a split",
                                     ["model", "version"], buckets=_LATENCY, registry=r)
        self.shadow = Counter("maas_traffic_shadow_requests",
                              "Shadow and mirrored requests by outcome (ok, failed, dropped)",
                              ["model", "version", "outcome"], registry=r)
        self.comparisons = Counter("maas_traffic_shadow_comparisons",
                                   "Shadow answers compared with the primary's (agree or disagree)",
                                   ["model", "version", "result"], registry=r)
        self.relative_error = Histogram("maas_traffic_shadow_relative_error",
                                        "Relative error of a regression's shadow answer", ["model", "version"],
                                        buckets=_ERROR, registry=r)
        self.rollout_agreement = Gauge("maas_rollout_agreement",
                                       "Agreement with stable on mirrored inputs in the last interval", ["model"],
                                       registry=r)
        self.rollout_psi = Gauge("maas_rollout_psi", "PSI of the predicted classes in the last interval",
                                 ["model"], registry=r)
        self.rollout_state = Gauge("maas_rollout_state", "1 for the state the model's rollout is in",
                                   ["model", "state"], registry=r)
        self.rollout_weight = Gauge("maas_rollout_candidate_weight", "Candidate's share of traffic, percent",
                                    ["model"], registry=r)
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def routed(self, model: str, version: str, outcome: str, seconds: float) -> None:
        key = (model, version, outcome)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.arm_requests.labels(*key), self.arm_seconds.labels(model, version))
        children[0].inc()
        if outcome == "ok":
            children[1].observe(seconds)

    def compared(self, model: str, version: str, agree: bool, relative_error: float | None) -> None:
        self.comparisons.labels(model, version, "agree" if agree else "disagree").inc()
        if relative_error is not None:
            self.relative_error.labels(model, version).observe(relative_error)

    def rollout(self, model: str, state: RolloutState, weight: int) -> None:
        for s in RolloutState:
            self.rollout_state.labels(model, s.value).set(1 if s is state else 0)
        self.rollout_weight.labels(model).set(weight)
