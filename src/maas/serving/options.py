"""Serving options: built once by the composition root and passed to `ServingDataPlane`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from maas.config import DEFAULT_MAX_BATCH_SIZE, Settings
from maas.errors import InvalidArgument


@dataclass(frozen=True)
class ModelOverrides:
    """Per-model settings that win over what the version's `config` says; None keeps the version's value."""

    max_batch_size: int | None = None
    max_queue_delay_us: int | None = None
    preferred_batch_sizes: tuple[int, ...] | None = None
    instances: int | None = None
    intra_op_threads: int | None = None
    log_sample_rate: float | None = None  # share of requests written to the prediction log


@dataclass(frozen=True)
class ServingOptions:
    """How the data plane serves models.

    `models` None serves every model in the registry (and new ones as they appear); a list serves those only
    (more can be added with `load`). `inference_threads` sizes the one thread pool that runs model code; keep
    inference_threads × intra_op_threads ≤ cores (the default does, with one intra-op thread per session).
    """

    models: tuple[str, ...] | None = None
    max_queue_size: int = 1024
    # A request expected to wait longer than this in a version's queue is refused at once (429): past it,
    # waiting would only make every admitted request slower (see Batcher.expected_wait).
    max_queue_wait_s: float = 0.5
    request_timeout_s: float = 60.0
    poll_interval_s: float = 0.5
    inference_threads: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    default_max_batch_size: int = DEFAULT_MAX_BATCH_SIZE  # a version that says nothing, with a dynamic dim 0
    default_max_queue_delay_us: int = 500
    default_instances: int = 1
    default_intra_op_threads: int = 1
    # A version that sets neither instances nor intra_op_threads gets a layout chosen by timing it at load
    # (serving/adaptive.py); False keeps the defaults above for every version.
    adaptive_layout: bool = True
    max_image_pixels: int = 4096 * 4096  # decode_image refuses larger images (decompression bombs)
    max_request_elements: int = 1 << 28  # refuse absurd shapes before allocating anything
    use_cuda: bool = False
    overrides: Mapping[str, ModelOverrides] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, settings: Settings, models: tuple[str, ...] | None = None,
        overrides: Mapping[str, ModelOverrides] | None = None,
    ) -> ServingOptions:
        """The serving part of the one `Settings` (env MAAS_*, flags, shown by `maas config`)."""
        return cls(
            models=models, max_queue_size=settings.max_queue_size, max_queue_wait_s=settings.max_queue_wait_ms / 1e3,
            request_timeout_s=settings.request_timeout_s, poll_interval_s=settings.poll_interval_s,
            inference_threads=settings.inference_threads,
            default_max_batch_size=settings.default_max_batch_size, use_cuda=settings.use_cuda,
            overrides=overrides or {},
        )

    def __post_init__(self) -> None:
        if self.max_queue_size < 1:
            raise InvalidArgument("max_queue_size must be at least 1")
        if not self.max_queue_wait_s > 0:
            raise InvalidArgument("max_queue_wait_s must be positive")
        if self.request_timeout_s <= 0 or self.poll_interval_s <= 0:
            raise InvalidArgument("request_timeout_s and poll_interval_s must be positive")
        if self.inference_threads < 1:
            raise InvalidArgument("inference_threads must be at least 1")
        if self.models is not None and not isinstance(self.models, tuple):
            object.__setattr__(self, "models", tuple(self.models))


@dataclass(frozen=True)
class BatchingPolicy:
    """The effective batching settings of one loaded version (version config, then overrides)."""

    max_batch_size: int  # 0: the model has no batch dimension; every request runs on its own
    max_queue_delay_us: int
    preferred_batch_sizes: tuple[int, ...]
    instances: int
    intra_op_threads: int
    max_queue_size: int
    max_queue_wait_s: float = 0.5
    # Neither instances nor intra_op_threads was asked for: the layout is chosen at load (serving/adaptive.py).
    adaptive: bool = False

    @classmethod
    def resolve(
        cls, config: Mapping[str, Any], options: ServingOptions, model: str, batchable: bool
    ) -> BatchingPolicy:
        batching = config.get("batching") or {}
        over = options.overrides.get(model, ModelOverrides())

        def pick(override: Any, key: str, default: Any, source: Mapping[str, Any]) -> Any:
            return override if override is not None else source.get(key, default)

        default_mbs = options.default_max_batch_size if batchable else 0
        mbs = int(pick(over.max_batch_size, "max_batch_size", default_mbs, config))
        if not batchable:
            mbs = 0
        preferred = pick(over.preferred_batch_sizes, "preferred_batch_sizes", (), batching)
        policy = cls(
            max_batch_size=mbs,
            max_queue_delay_us=int(
                pick(
                    over.max_queue_delay_us,
                    "max_queue_delay_us",
                    options.default_max_queue_delay_us,
                    batching,
                )
            ),
            preferred_batch_sizes=tuple(sorted(int(p) for p in preferred if 0 < int(p) <= max(mbs, 1))),
            instances=int(pick(over.instances, "instances", options.default_instances, batching)),
            intra_op_threads=int(
                pick(over.intra_op_threads, "intra_op_threads", options.default_intra_op_threads, batching)
            ),
            max_queue_size=options.max_queue_size,
            max_queue_wait_s=options.max_queue_wait_s,
            adaptive=options.adaptive_layout and over.instances is None and over.intra_op_threads is None
            and "instances" not in batching and "intra_op_threads" not in batching,
        )
        if policy.max_batch_size < 0 or policy.max_queue_delay_us < 0:
            raise InvalidArgument(f"{model}: max_batch_size and max_queue_delay_us cannot be negative")
        if not 1 <= policy.instances <= 64 or not 1 <= policy.intra_op_threads <= 256:
            raise InvalidArgument(f"{model}: instances must be 1-64 and intra_op_threads 1-256")
        return policy


OVERRIDE_KEYS = (
    "max_batch_size", "max_queue_delay_us", "preferred_batch_sizes", "instances", "intra_op_threads",
    "log_sample_rate",
)


def parse_overrides(items: list[str]) -> dict[str, ModelOverrides]:
    """`NAME.KEY=VALUE` texts (e.g. `digits.max_batch_size=32`, `digits.preferred_batch_sizes=8,16`) into
    per-model overrides; InvalidArgument naming the bad item."""
    from dataclasses import replace

    from maas.types import check_name

    out: dict[str, ModelOverrides] = {}
    for item in items:
        target, sep, value = item.partition("=")
        name, dot, key = target.rpartition(".")
        if not sep or not dot or key not in OVERRIDE_KEYS:
            raise InvalidArgument(
                f"invalid override {item[:80]!r}: expected NAME.KEY=VALUE, KEY one of {', '.join(OVERRIDE_KEYS)}"
            )
        check_name(name)
        if key == "log_sample_rate":
            from maas.monitor.sampling import check_rate

            out[name] = replace(out.get(name, ModelOverrides()), log_sample_rate=check_rate(value, item[:80]))
            continue
        try:
            if key == "preferred_batch_sizes":
                parsed: Any = tuple(int(v) for v in value.split(",") if v)
                bad = any(v < 1 for v in parsed)
            else:
                parsed = int(value)
                bad = parsed < (0 if key in ("max_batch_size", "max_queue_delay_us") else 1)
        except ValueError:
            bad = True
        if bad:
            need = "positive integers" if key == "preferred_batch_sizes" else "a non-negative integer"
            raise InvalidArgument(f"invalid override {item[:80]!r}: {key} needs {need}")
        out[name] = replace(out.get(name, ModelOverrides()), **{key: parsed})
    return out
