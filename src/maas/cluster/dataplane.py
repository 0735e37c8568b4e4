"""The ingress's data plane on Ray: everything a `ServingDataPlane` does, but inference on a model that has
its own deployment is sent to one of that deployment's replicas (Ray Serve picks it) instead of run here.

The replica resolves the version itself (alias, traffic split, sticky header) from the shared registry, so
alias moves, splits and rollouts apply on every replica within one poll interval. A model whose deployment is
not running yet (registered after the start: `cluster/discovery.py` attaches it once it is) is served by the
ingress's own data plane, as in one process.
A replica that died (its node lost) is retried on another within the request's deadline: inference is
idempotent. Whatever the failure, the client gets maas's own error, never Ray's trace.

Requests for one deployment go through a `Coalescer`: a bounded number of handle calls in flight, the rest
sent together in the next call (`infer_many`), so that Ray's per-call cost is paid per group, not per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from maas.cluster.coalescing import Coalescer
from maas.cluster.scaling import CALLS_PER_REPLICA
from maas.errors import DeadlineExceeded, Internal, MaasError, ResourceExhausted, Unavailable
from maas.serving.contract import InferenceRequest, InferenceResponse
from maas.serving.dataplane import ServingDataPlane

log = logging.getLogger(__name__)

# Retries after a replica died or could not be reached; each waits longer (a lost node takes Ray ~1 s to
# notice). Past them the client sees 503 / UNAVAILABLE and may retry itself.
RETRY_DELAYS_S = (0.05, 0.25, 0.5, 1.0, 2.0)


def pack_error(exc: MaasError) -> tuple[type[MaasError], str, dict[str, Any]]:
    """A MaasError as plain values: it crosses Ray as a return value, not as a RayTaskError with a trace."""
    return type(exc), exc.message, dict(vars(exc))


def unpack_error(packed: tuple[type[MaasError], str, dict[str, Any]]) -> MaasError:
    cls, message, state = packed
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    exc.__dict__.update(state)
    exc.message = message
    return exc


Outcome = tuple[str, Any]  # ("ok", InferenceResponse) or ("error", a packed MaasError)


def _set_timeout(request: InferenceRequest, seconds_left: float) -> None:
    request.timeout_s = seconds_left  # the wait for a call counts against the request's deadline


class ClusterDataPlane(ServingDataPlane):
    """`handles`: model name -> Ray Serve handle of that model's deployment (with an `infer_many` method), changed
    while serving by `attach` / `detach`; `max_calls`: model name -> handle calls this ingress keeps in flight to
    it (scaling.ReplicaScaling)."""

    def __init__(self, *args: Any, handles: Mapping[str, Any] | None = None,
                 max_calls: Mapping[str, int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handles: dict[str, Any] = {}
        # Kept after a detach (the counters on /metrics go on counting if the model comes back).
        self.coalescers: dict[str, Coalescer[InferenceRequest, Outcome]] = {}
        limits = max_calls or {}
        for name, handle in (handles or {}).items():
            self.attach(name, handle, limits.get(name, CALLS_PER_REPLICA))
        self.metrics.registry.register(_CallCollector(self.coalescers))
        # Rollouts of a model with a deployment are judged by its replicas, which see its requests; this
        # ingress sees none of them, and its empty windows would be written as "inconclusive" decisions that
        # race the replicas' (the first decision of a step wins) and, ten in a row, pause the rollout.
        self.traffic.controller.served = self._drives_rollout

    def _drives_rollout(self, name: str) -> bool:
        return name not in self.handles and self.repository.serves(name)

    def attach(self, name: str, handle: Any, max_calls: int) -> None:
        """From now on `name`'s requests go to its deployment (those already waiting in a group keep theirs)."""
        calls = self.coalescers.get(name)
        if calls is None:
            self.coalescers[name] = Coalescer(_sender(handle), max_calls, prepare=_set_timeout)
        else:
            calls.send, calls.max_calls = _sender(handle), max_calls
        self.handles[name] = handle

    def detach(self, name: str) -> None:
        """From now on the ingress serves `name` itself (requests already sent finish on their replica)."""
        self.handles.pop(name, None)

    def shed(self, name: str, version: str | None = None, unread_s: float = 0.0) -> str | None:
        return None if name in self.handles else super().shed(name, version, unread_s)  # the replica sheds its own

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        handle = self.handles.get(request.model_name)
        if handle is None:
            return await super().infer(request)
        started = time.monotonic()
        version, outcome = "", "ok"
        self._in_flight += 1
        self._idle.clear()
        try:
            self._check_accepting()
            response = await self._forward(self.coalescers[request.model_name], request, started)
            version = request.served_version = response.model_version
            return response
        except MaasError as exc:
            outcome = exc.code.value.lower()
            raise
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
            self.metrics.request_done(request.model_name, version, request.protocol, outcome,
                                      time.monotonic() - started)

    async def _forward(self, calls: Coalescer[InferenceRequest, Outcome], request: InferenceRequest,
                       started: float) -> InferenceResponse:
        from ray import exceptions as ray_errors
        from ray.serve import exceptions as serve_errors

        retriable = (ray_errors.RayActorError, ray_errors.ActorUnavailableError,
                     ray_errors.ObjectLostError, serve_errors.DeploymentUnavailableError)
        headers = request.headers
        request.headers = {k.lower(): headers[k] for k in headers} if headers else None  # plain, picklable
        deadline = started + self._timeout(request)
        for attempt, delay in enumerate((*RETRY_DELAYS_S, None)):
            try:
                kind, value = await calls.submit(request, deadline - time.monotonic())
            except serve_errors.BackPressureError:
                raise ResourceExhausted(f"{request.model_name}: every replica is busy; retry later") from None
            except retriable as exc:
                left = deadline - time.monotonic()
                if delay is None or left <= delay:
                    raise Unavailable(f"{request.model_name}: no replica answered "
                                      f"({type(exc).__name__} after {attempt + 1} tries)") from None
                log.warning("%s: replica lost (%s); retrying", request.model_name, type(exc).__name__)
                await asyncio.sleep(delay)
                continue
            except ray_errors.RayTaskError as exc:  # a bug in the replica: the trace stays in its log
                log.error("%s: replica failed: %s", request.model_name, exc)
                raise Internal("inference failed in a replica") from None
            except (ray_errors.GetTimeoutError, TimeoutError):
                raise DeadlineExceeded(f"{request.model_name}: the request timed out") from None
            if kind == "error":
                raise unpack_error(value)
            return value
        raise AssertionError("unreachable")


class _CallCollector:
    """`maas_ray_handle_calls_total` and `maas_ray_handle_call_requests_total` by model on the ingress's /metrics:
    their ratio is the mean number of requests per handle call (1.0: no grouping, the replicas keep up)."""

    def __init__(self, coalescers: Mapping[str, Coalescer[InferenceRequest, Outcome]]) -> None:
        self.coalescers = coalescers

    def collect(self) -> Any:
        from prometheus_client.core import CounterMetricFamily

        calls = CounterMetricFamily("maas_ray_handle_calls", "Ray Serve handle calls to each model's deployment",
                                    labels=["model"])
        carried = CounterMetricFamily("maas_ray_handle_call_requests", "Requests those handle calls carried",
                                      labels=["model"])
        for name, c in self.coalescers.items():
            calls.add_metric([name], c.sent_calls)
            carried.add_metric([name], c.sent_items)
        yield calls
        yield carried


def _sender(handle: Any) -> Any:
    async def send(requests: list[InferenceRequest]) -> list[Outcome]:
        return list(await handle.infer_many.remote(requests))

    return send
