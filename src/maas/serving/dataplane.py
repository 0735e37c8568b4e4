"""`ServingDataPlane`: the one entry point every transport calls (implements `inference.DataPlane`).

It resolves the version, validates the request before allocating anything, runs pre-processing, the
batcher and post-processing, then applies output selection and the classification extension.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from typing import Any

from maas.errors import DeadlineExceeded, Internal, InvalidArgument, MaasError, NotFound, Unavailable
from maas.registry import Registry, State
from maas.serving.classification import classify
from maas.serving.inference import (
    InferenceRequest,
    InferenceResponse,
    InferTensor,
    ModelIndexEntry,
    ModelMetadata,
    ServerMetadata,
)
from maas.serving.loaded import LoadedVersion, RuntimeFactory, onnxruntime_factory
from maas.serving.metrics import ServingMetrics
from maas.serving.options import ServingOptions
from maas.serving.repository import ModelRepository
from maas.serving.validation import check_model_inputs, requested_outputs, validate_inputs
from maas.types import ModelRef, TensorSpec, check_name, v2_datatype

log = logging.getLogger(__name__)

PLATFORM = "onnxruntime_onnx"
# Model-config parameter naming the inputs that also take an encoded image (PNG or JPEG) as BYTES [-1].
ENCODED_IMAGE_PARAMETER = "encoded_image_inputs"
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
    ) -> None:
        self.registry = registry
        self.options = options or ServingOptions()
        self.metrics = ServingMetrics()
        self._executor = ThreadPoolExecutor(self.options.inference_threads, thread_name_prefix="maas-infer")
        self.repository = ModelRepository(
            registry, self.options, self._executor, self.metrics, runtime_factory
        )
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
        self._started = self._accepting = True

    async def stop(self, grace_s: float = 30.0) -> None:
        """Refuse new requests, let in-flight ones finish for up to `grace_s`, then release everything."""
        self._accepting = False
        deadline = time.monotonic() + grace_s
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            log.warning("%d requests still in flight after %.1f s; failing them", self._in_flight, grace_s)
        await self.repository.stop(max(0.0, deadline - time.monotonic()))
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
        if version in (None, "") or str(version).isdigit():
            wanted = int(version) if version else self.repository.default_version(name)
            if any(v.number == wanted for v in self.repository.loaded(name)):
                return True
        else:
            try:
                target = await asyncio.to_thread(self.registry.get, ModelRef.parse(f"{name}@{version}"))
            except NotFound:
                return False
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

    async def model_config(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Triton's model-config JSON shape; with max_batch_size > 0 the dims omit the batch dimension."""
        loaded = await self._resolve(name, version)
        parts, policy = loaded.parts, loaded.parts.policy

        def dims(shape: tuple[int, ...]) -> list[int]:
            return list(shape[1:] if policy.max_batch_size > 0 and shape else shape)

        config: dict[str, Any] = {
            "name": name,
            "platform": PLATFORM,
            "backend": "onnxruntime",
            "version_policy": {"specific": {"versions": [loaded.number]}},
            "max_batch_size": policy.max_batch_size,
            "input": [
                {
                    "name": s.name,
                    "data_type": _config_type(s.datatype),
                    "format": "FORMAT_NONE",
                    "dims": dims(s.shape),
                }
                for s in parts.model_inputs
            ],
            "output": [
                {"name": s.name, "data_type": _config_type(s.datatype), "dims": dims(s.shape)}
                for s in parts.outputs
            ],
            "instance_group": [{"name": name, "count": policy.instances, "kind": "KIND_CPU"}],
        }
        encoded = _encoded_inputs(loaded)
        if encoded:
            # Triton's config has no field for a second input form; a parameter tells a client it may send
            # the encoded image instead of the tensor.
            config["parameters"] = {
                ENCODED_IMAGE_PARAMETER: {"string_value": ",".join(s.name for s in encoded)}
            }
        if policy.max_batch_size > 0:
            config["dynamic_batching"] = {
                "preferred_batch_size": list(policy.preferred_batch_sizes),
                "max_queue_delay_microseconds": policy.max_queue_delay_us,
            }
        return config

    # --- repository extension ---------------------------------------------------------------------------
    async def repository_index(self, ready_only: bool = False) -> list[ModelIndexEntry]:
        return await self.repository.index(ready_only)

    async def load(self, name: str) -> None:
        self._check_accepting()
        await self.repository.load(name)

    async def unload(self, name: str) -> None:
        await self.repository.unload(name)

    # --- inference --------------------------------------------------------------------------------------
    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        started = time.monotonic()
        protocol = request.protocol
        model, version, outcome = "", "", "ok"
        self._in_flight += 1
        self._idle.clear()
        try:
            self._check_accepting()
            loaded = await self._resolve(request.model_name, request.model_version)
            model, version = loaded.name, str(loaded.number)
            request.served_version = version
            return await self._infer(loaded, request, started)
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
            self.metrics.request_done(model, version, protocol, outcome, time.monotonic() - started)

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
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"{loaded.parts.version.ref}: the request timed out before it was queued")
        outputs = await loaded.batcher.submit(arrays, remaining)
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
        return InferenceResponse(request.model_name, str(loaded.number), tensors, id=request.id)

    def _timeout(self, request: InferenceRequest) -> float:
        """The request's own timeout (or Triton's `timeout` parameter, in microseconds), else the default."""
        if request.timeout_s is not None:
            timeout = request.timeout_s
        elif "timeout" in request.parameters:
            value = request.parameters["timeout"]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidArgument("parameter timeout must be a number of microseconds")
            timeout = value / 1e6
        else:
            return self.options.request_timeout_s
        if timeout <= 0:
            raise InvalidArgument("timeout must be positive")
        return float(timeout)

    async def _resolve(self, name: str, version: str | None) -> LoadedVersion:
        if not self._started:
            raise Unavailable("the server is starting")
        return await self.repository.resolve(name, version)

    def _check_accepting(self) -> None:
        if not self._accepting:
            raise Unavailable("the server is not accepting requests (starting or shutting down)")


def _encoded_inputs(loaded: LoadedVersion) -> tuple[TensorSpec, ...]:
    parts = loaded.parts
    return parts.inputs if parts.preprocess and parts.preprocess.decodes else ()


def _config_type(datatype: str) -> str:
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"
