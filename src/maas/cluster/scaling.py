"""How many Ray Serve replicas a model gets: the version's `config["scaling"]`, then `--set NAME.KEY=VALUE`.

Either a fixed `num_replicas` or autoscaling between `min_replicas` and `max_replicas` around
`target_ongoing_requests` per replica (Ray Serve's own autoscaler does the scaling). No Ray import here, so
the CLI checks `--set` before anything starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from maas.errors import InvalidArgument

# Ray's default (5 in flight per replica) would cap maas's batches at 5 rows: a replica admits this many and
# lets its own batcher (and its bounded queue, 429 past it) do the rest.
DEFAULT_MAX_ONGOING = 256
# Handle calls the ingress keeps in flight per replica of a fixed-size deployment; requests beyond them go
# together in the next call (cluster/coalescing.py). Two: one being computed while the next one travels.
CALLS_PER_REPLICA = 2


@dataclass(frozen=True)
class ReplicaScaling:
    num_replicas: int | None = None
    min_replicas: int | None = None
    max_replicas: int | None = None
    target_ongoing_requests: float | None = None
    upscale_delay_s: float | None = None
    downscale_delay_s: float | None = None
    max_ongoing_requests: int | None = None
    num_cpus: float | None = None  # Ray's logical CPUs each replica reserves (default 1)
    max_calls: int | None = None  # handle calls in flight from the ingress (default: see `calls_in_flight`)

    @property
    def autoscaled(self) -> bool:
        return any(v is not None for v in (self.min_replicas, self.max_replicas, self.target_ongoing_requests))

    def check(self, model: str) -> ReplicaScaling:
        if self.autoscaled and self.num_replicas is not None:
            raise InvalidArgument(f"{model}: give num_replicas or min/max_replicas, not both")
        low, high = self.min_replicas if self.min_replicas is not None else 1, self.max_replicas
        if low < 0 or (high is not None and (high < 1 or high < low)):
            raise InvalidArgument(f"{model}: need 0 <= min_replicas <= max_replicas, max_replicas >= 1")
        if self.num_replicas is not None and not 1 <= self.num_replicas <= 10_000:
            raise InvalidArgument(f"{model}: num_replicas must be 1-10000")
        for name in ("target_ongoing_requests", "upscale_delay_s", "downscale_delay_s", "num_cpus"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise InvalidArgument(f"{model}: {name} cannot be negative")
        if self.max_ongoing_requests is not None and self.max_ongoing_requests < 1:
            raise InvalidArgument(f"{model}: max_ongoing_requests must be at least 1")
        if self.max_calls is not None and not 1 <= self.max_calls <= 1_000_000:
            raise InvalidArgument(f"{model}: max_calls must be 1-1000000")
        return self

    def calls_in_flight(self) -> int:
        """How many handle calls the ingress keeps in flight to this deployment before it groups requests.

        Fixed replicas: CALLS_PER_REPLICA each. Autoscaled: `max_replicas x target_ongoing_requests`, because Ray's
        autoscaler counts calls, not requests: below that bound every request is its own call and the autoscaler
        sees the true load; at it, the count reads "every replica at its target" and asks for max_replicas."""
        if self.max_calls is not None:
            return self.max_calls
        if not self.autoscaled:
            return CALLS_PER_REPLICA * (self.num_replicas or 1)
        options = self.deployment_options()["autoscaling_config"]
        return max(1, math.ceil(options["max_replicas"] * options["target_ongoing_requests"]))

    def deployment_options(self) -> dict[str, Any]:
        """Keyword arguments of Ray Serve's `Deployment.options`."""
        options: dict[str, Any] = {
            "max_ongoing_requests": self.max_ongoing_requests or DEFAULT_MAX_ONGOING,
            "ray_actor_options": {"num_cpus": 1.0 if self.num_cpus is None else self.num_cpus},
        }
        if self.autoscaled:
            auto: dict[str, Any] = {
                "min_replicas": 1 if self.min_replicas is None else self.min_replicas,
                "max_replicas": self.max_replicas or max(1, self.min_replicas or 1),
                "target_ongoing_requests": self.target_ongoing_requests or 16.0,
            }
            if auto["min_replicas"] > 1:
                auto["initial_replicas"] = auto["min_replicas"]
            for name in ("upscale_delay_s", "downscale_delay_s"):
                if getattr(self, name) is not None:
                    auto[name] = getattr(self, name)
            options["autoscaling_config"] = auto
        else:
            options["num_replicas"] = self.num_replicas or 1
        return options


SCALING_KEYS = tuple(f.name for f in fields(ReplicaScaling))
_INTEGERS = {"num_replicas", "min_replicas", "max_replicas", "max_ongoing_requests", "max_calls"}


def _value(key: str, raw: Any, where: str) -> int | float:
    try:
        if isinstance(raw, bool):
            raise ValueError
        return int(raw) if key in _INTEGERS else float(raw)
    except (TypeError, ValueError):
        kind = "an integer" if key in _INTEGERS else "a number"
        raise InvalidArgument(f"{where}: {key} needs {kind}") from None


def from_config(config: Mapping[str, Any], model: str) -> ReplicaScaling:
    """The version's stored `scaling` section (unknown keys refused, so a typo does not pass silently)."""
    section = config.get("scaling") or {}
    if not isinstance(section, Mapping):
        raise InvalidArgument(f"{model}: config.scaling must be an object")
    unknown = sorted(set(section) - set(SCALING_KEYS))
    if unknown:
        raise InvalidArgument(f"{model}: unknown config.scaling key {unknown[0]!r} (one of {', '.join(SCALING_KEYS)})")
    return ReplicaScaling(**{k: _value(k, v, f"{model} config.scaling") for k, v in section.items()})  # type: ignore[arg-type]


def split_overrides(items: list[str]) -> tuple[dict[str, dict[str, int | float]], list[str]]:
    """`--set` items into the scaling ones (NAME.num_replicas=2, …) by model and the rest (batching)."""
    from maas.types import check_name

    scaling: dict[str, dict[str, int | float]] = {}
    rest: list[str] = []
    for item in items:
        target, sep, raw = item.partition("=")
        name, dot, key = target.rpartition(".")
        if sep and dot and key in SCALING_KEYS:
            scaling.setdefault(check_name(name), {})[key] = _value(key, raw, f"--set {item[:80]!r}")
        else:
            rest.append(item)
    return scaling, rest


def resolve(config: Mapping[str, Any], model: str, overrides: Mapping[str, int | float] | None) -> ReplicaScaling:
    """The version's scaling with the serve-time overrides on top. `--set NAME.num_replicas` replaces an
    autoscaling config (and the other way round) rather than clashing with it."""
    base = from_config(config, model)
    over = dict(overrides or {})
    if "num_replicas" in over:
        base = replace(base, min_replicas=None, max_replicas=None, target_ongoing_requests=None)
    elif over.keys() & {"min_replicas", "max_replicas", "target_ongoing_requests"}:
        base = replace(base, num_replicas=None)
    return replace(base, **over).check(model)  # type: ignore[arg-type]
