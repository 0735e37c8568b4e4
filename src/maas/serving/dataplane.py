"""`ServingDataPlane`: the one entry point every transport calls (implements `inference.DataPlane`).

It resolves the version (following the model's traffic split), validates the request before allocating
anything, runs pre-processing, the batcher and post-processing, then applies output selection and the
classification extension. Copies for shadow traffic and a rollout's mirrored inputs go to `traffic_plane`.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

from maas.errors import DeadlineExceeded, Internal, InvalidArgument, MaasError, NotFound, Unavailable
from maas.monitor.records import PredictionRecord, PredictionSink
from maas.numbers import is_ascii_int, parse_finite
from maas.registry import Registry, State
from maas.serving.batcher import last_pending
from maas.serving.classification import classify
from maas.serving.contract import (
    InferenceRequest,
    InferenceResponse,
    InferTensor,
    ModelConfig,
    ModelIndexEntry,
    ModelMetadata,
    ServerMetadata,
)
from maas.serving.loaded import LoadedVersion, RuntimeFactory, onnxruntime_factory
from maas.serving.metrics import ServingMetrics
from maas.serving.options import ServingOptions
from maas.serving.repository import ModelRepository
from maas.serving.traffic_plane import TrafficPlane
from maas.serving.validation import check_model_inputs, requested_outputs, validate_inputs
from maas.types import ModelRef, TensorSpec, check_name, v2_datatype

log = logging.getLogger(__name__)

# The longest wait a client may ask for; beyond it a timeout is a typo or an attack, not a deadline.
MAX_TIMEOUT_S = 24 * 3600.0

PLATFORM = "onnxruntime_onnx"
# Only what this core (plus the transports' codecs, for binary_tensor_data) actually implements.
EXTENSIONS = (
    "binary_tensor_data",
    "classification",
    "model_repository",
    "model_configuration",
    "schedule_policy",
)


def _server_version() -> str:
    try:
        return metadata.version("maas")
    except metadata.PackageNotFoundError:
        return "0.0.0"


class ServingDataPlane:
    """Serves the registry's models; `start` before use, `stop` to drain. Owns `metrics.registry`."""

    def __init__(
        self,
        registry: Registry,
        options: ServingOptions | None = None,
        *,
        runtime_factory: RuntimeFactory = onnxruntime_factory,
        predictions: PredictionSink | None = None,
    ) -> None:
        self.registry = registry
        self.predictions = predictions  # sampled prediction logs (versions with log_sample_rate > 0)
        self.tracer: Any = None  # a maas.monitor.tracing.Tracer when OpenTelemetry is on
        self.options = options or ServingOptions()
        self.metrics = ServingMetrics()
        self._executor = ThreadPoolExecutor(self.options.inference_threads, thread_name_prefix="maas-infer")
        self.repository = ModelRepository(
            registry, self.options, self._executor, self.metrics, runtime_factory
        )
        self.traffic = TrafficPlane(self.repository, self.metrics.registry, self._infer)
        self._started = False
        self._accepting = False
        self._stopped = False
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    # --- lifecycle --------------------------------------------------------------------------------------
    async def start(self, models: list[str] | None = None) -> None:
        """Load `models` (default: `options.models`, else every model) and begin following the registry."""
        chosen = models if models is not None else self.options.models
        await self.repository.start(list(chosen) if chosen is not None else None)
        self.traffic.start()
        self._started = self._accepting = True

    async def stop(self, grace_s: float = 30.0) -> None:
        """Refuse new requests, let in-flight ones finish for up to `grace_s`, then release everything."""
        self._accepting = False
        deadline = time.monotonic() + grace_s
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            log.warning("%d requests still in flight after %.1f s; failing them", self._in_flight, grace_s)
        await self.traffic.stop()
        await self.repository.stop(max(0.0, deadline - time.monotonic()))
        close = getattr(self.predictions, "close", None)
        if close is not None:
            await asyncio.to_thread(close)  # writes what is still queued
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._stopped = True

    # --- health and metadata ----------------------------------------------------------------------------
    def live(self) -> bool:
        return not self._stopped

    def ready(self) -> bool:
        return self._started and self._accepting

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata("maas", _server_version(), EXTENSIONS)

    async def model_ready(self, name: str, version: str | None = None) -> bool:
        check_name(name)
        if not self._accepting:
            return False
        if version in (None, "") or is_ascii_int(str(version)):
            wanted = int(version) if version else self.repository.default_version(name)
            if any(v.number == wanted for v in self.repository.loaded(name)):
                return True
        else:
            # an alias that does not exist is a 404 (as an unknown model is), not "not ready" (a 503)
            target = await asyncio.to_thread(self.registry.get, ModelRef.parse(f"{name}@{version}"))
            return any(v.number == target.version for v in self.repository.loaded(name))
        if not await self.repository.exists(name):
            raise NotFound(f"model {name!r} not found")
        return False

    async def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        loaded = await self._resolve(name, version)
        versions = await asyncio.to_thread(self.registry.list_versions, name)
        return ModelMetadata(
            name=name,
            versions=tuple(str(v.version) for v in versions if v.state == State.READY),
            platform=PLATFORM,
            inputs=loaded.parts.model_inputs,
            outputs=loaded.parts.outputs,
            encoded_inputs=_encoded_inputs(loaded),
        )

    async def model_config(self, name: str, version: str | None = None) -> ModelConfig:
        loaded = await self._resolve(name, version)
        parts, policy = loaded.parts, loaded.parts.policy
        return ModelConfig(
            name=name,
            version=loaded.number,
            platform=PLATFORM,
            backend="onnxruntime",
            max_batch_size=policy.max_batch_size,
            inputs=parts.model_inputs,
            outputs=parts.outputs,
            instances=policy.instances,
            preferred_batch_sizes=tuple(policy.preferred_batch_sizes),
            max_queue_delay_us=policy.max_queue_delay_us,
            encoded_inputs=_encoded_inputs(loaded),
        )

    # --- repository extension ---------------------------------------------------------------------------
    async def repository_index(self, ready_only: bool = False) -> list[ModelIndexEntry]:
        return await self.repository.index(ready_only)

    async def load(self, name: str) -> None:
        self._check_accepting()
        await self.repository.load(name)

    async def unload(self, name: str) -> None:
        await self.repository.unload(name)

    # --- statistics extension ---------------------------------------------------------------------------
    async def model_statistics(self, name: str = "", version: str | None = None) -> dict[str, Any]:
        """Triton's statistics of the loaded versions (all models when `name` is empty)."""
        if name:
            check_name(name)
        if version and not is_ascii_int(str(version)):
            raise InvalidArgument(f"version must be a number, not {str(version)[:40]!r}")
        selected = self.metrics.statistics.select(name, version or "")
        if name and not selected:
            if not await self.repository.exists(name):
                raise NotFound(f"model {name!r} not found")
            which = f"version {version} of " if version else ""
            raise NotFound(f"{which}model {name!r} is not loaded")
        return {"model_stats": [s.to_dict() for s in selected]}

    # --- inference --------------------------------------------------------------------------------------
    def shed(self, name: str, version: str | None = None, unread_s: float = 0.0) -> str | None:
        """Why a request for (name, version) would be refused for overload now, asked before its body is read
        or decoded (a refusal that costs a full decode made the loop, not the queue, the bottleneck); None when
        it may proceed or cannot be told cheaply (an alias, a version not loaded). `unread_s`: see
        `Batcher.overloaded`."""
        if version in (None, ""):
            number = self.repository.default_version(name)
        elif is_ascii_int(version):
            number = int(version)  # type: ignore[arg-type]
        else:
            return None
        loaded = self.repository.get_loaded(name, number) if number is not None else None
        return loaded.batcher.overloaded(unread_s) if loaded is not None else None

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        started = time.monotonic()
        protocol = request.protocol
        model, version, outcome = "", "", "ok"
        routed = loaded = response = None
        self._in_flight += 1
        self._idle.clear()
        try:
            self._check_accepting()
            if not self._started:
                raise Unavailable("the server is starting")
            loaded, routed = await self.repository.route(
                request.model_name, request.model_version, request.headers
            )
            model, version = loaded.name, str(loaded.number)
            request.served_version = version
            if routed is not None:
                request.arm = version
            loaded.acquire()
            try:
                response = await self._infer(loaded, request, started)
            finally:
                loaded.release()
            return response
        except MaasError as exc:
            outcome = exc.code.value.lower()
            raise
        except Exception as exc:
            outcome = "internal"
            log.exception("inference on %s failed", request.model_name)
            raise Internal(f"inference failed: {type(exc).__name__}") from exc
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()
            elapsed = time.monotonic() - started
            self.metrics.request_done(model, version, protocol, outcome, elapsed)
            if routed is not None and loaded is not None:
                waited = 0.0  # for a rollout's judgement: the wait for another arm's run is not this arm's
                if loaded.batcher.slots is not None and response is not None:
                    pending = last_pending.get()
                    waited = pending.slot_wait if pending is not None else 0.0
                self.traffic.after(routed, loaded, request, response, outcome, elapsed, waited)

    async def _infer(
        self, loaded: LoadedVersion, request: InferenceRequest, started: float
    ) -> InferenceResponse:
        parts, policy = loaded.parts, loaded.parts.policy
        wanted = requested_outputs(request.outputs, parts.outputs)
        # A model whose pre-processing decodes images also takes its own input tensor as is (e.g. FP32
        # [N, 28, 28, 1]): such a request skips the image steps.
        as_tensor = bool(parts.preprocess) and parts.preprocess.decodes and any(
            t.datatype != "BYTES" for t in request.inputs
        )
        arrays = validate_inputs(
            request.inputs,
            parts.model_inputs if as_tensor else parts.inputs,
            max_batch_size=policy.max_batch_size,
            max_elements=self.options.max_request_elements,
            exact=as_tensor or not parts.preprocess or parts.preprocess.decodes,
        )
        deadline = started + self._timeout(request)
        loop = asyncio.get_running_loop()
        if parts.preprocess and not as_tensor:
            first = parts.model_inputs[0].name
            arrays[first] = await loop.run_in_executor(self._executor, parts.preprocess, arrays[first])
            check_model_inputs(arrays, parts.model_inputs, policy.max_batch_size)
        queued_at = time.monotonic()
        remaining = deadline - queued_at
        if remaining <= 0:
            raise DeadlineExceeded(f"{loaded.parts.version.ref}: the request timed out before it was queued")
        if self.tracer is not None:
            loaded.batcher.traced = True
        outputs = await loaded.batcher.submit(arrays, remaining)
        computed_at = time.monotonic()
        if parts.postprocess:
            outputs = await loop.run_in_executor(self._executor, parts.postprocess, outputs)
        tensors = []
        for name, k in wanted:
            data = outputs[name]
            if k is not None:
                data = classify(data, k, parts.labels, batched=policy.max_batch_size > 0)
            tensors.append(
                InferTensor(name, v2_datatype(data.dtype), tuple(int(d) for d in data.shape), data)
            )
        finished = time.monotonic()
        if loaded.stats is not None:
            loaded.stats.processed(queued_at - started, finished - computed_at)
        if self.tracer is not None:
            _note_trace(loaded, finished)
        rate = parts.log_sample_rate
        if rate and self.predictions is not None and (rate >= 1.0 or random.random() < rate):
            self.predictions.offer(
                PredictionRecord(
                    loaded.name, loaded.number, str(loaded.number), request.request_id or request.id or "",
                    time.time(), finished - started, arrays, outputs,
                )
            )
        return InferenceResponse(request.model_name, str(loaded.number), tensors, id=request.id)

    def _timeout(self, request: InferenceRequest) -> float:
        """The request's own timeout (or Triton's `timeout` parameter, in microseconds), else the default."""
        if request.timeout_s is not None:
            timeout = request.timeout_s
        elif "timeout" in request.parameters:
            micros = parse_finite(request.parameters["timeout"], "parameter timeout (microseconds)",
                                  minimum=0, maximum=MAX_TIMEOUT_S * 1e6, above_minimum=True)
            timeout = micros / 1e6
        else:
            return self.options.request_timeout_s
        return parse_finite(timeout, "timeout (seconds)", minimum=0, maximum=MAX_TIMEOUT_S, above_minimum=True)

    async def _resolve(self, name: str, version: str | None) -> LoadedVersion:
        if not self._started:
            raise Unavailable("the server is starting")
        return await self.repository.resolve(name, version)

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise Unavailable("the server is not accepting requests (starting or shutting down)")


def _note_trace(loaded: LoadedVersion, finished: float) -> None:
    """Copy the core's stages of this request into its trace (the transport emits the spans)."""
    from maas.monitor import tracing
    from maas.serving.batcher import last_pending

    trace, pending = tracing.current(), last_pending.get()
    if trace is None:
        return
    trace.model, trace.version, trace.answered = loaded.name, str(loaded.number), finished
    if pending is not None:
        trace.enqueued, trace.dispatched, trace.batch_done = pending.enqueued, pending.dispatched, pending.done
        trace.compute_s, trace.batch_rows, trace.rows = pending.compute_s, pending.batch_rows, pending.rows


def _encoded_inputs(loaded: LoadedVersion) -> tuple[TensorSpec, ...]:
    parts = loaded.parts
    return parts.inputs if parts.preprocess and parts.preprocess.decodes else ()
