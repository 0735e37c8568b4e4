"""One loaded model version: its sessions, batcher, processing steps and the tensors clients see."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from maas.errors import InvalidArgument
from maas.monitor.sampling import sample_rate
from maas.registry import ModelVersion, Registry
from maas.serving import adaptive
from maas.serving.batcher import Batcher, BatchObserver
from maas.serving.options import BatchingPolicy, ServingOptions
from maas.serving.runtime import OnnxRuntime, Runtime
from maas.serving.steps import Postprocessor, Preprocessor
from maas.types import TensorSpec

log = logging.getLogger(__name__)

# (verified model bytes, intra-op threads, use CUDA) -> a runtime. Sessions are built from bytes, so the
# plaintext of an encrypted model exists only in memory.
RuntimeFactory = Callable[[bytes, int, bool], Runtime]


def onnxruntime_factory(model: bytes, intra_op_threads: int, use_cuda: bool) -> Runtime:
    return OnnxRuntime(model, intra_op_threads=intra_op_threads, use_cuda=use_cuda)


@dataclass(frozen=True)
class VersionParts:
    """What loading produces off the event loop, before the batcher exists."""

    version: ModelVersion
    policy: BatchingPolicy
    runtimes: tuple[Runtime, ...]
    model_inputs: tuple[TensorSpec, ...]
    model_outputs: tuple[TensorSpec, ...]
    inputs: tuple[TensorSpec, ...]  # what a client sends (BYTES for an image model)
    outputs: tuple[TensorSpec, ...]  # what a client may ask for (model outputs plus post-step outputs)
    preprocess: Preprocessor
    postprocess: Postprocessor | None
    labels: tuple[str, ...]
    log_sample_rate: float = 0.0  # share of requests written to the prediction log
    solo: Runtime | None = None  # all cores' threads, for a batch that would run alone (serving/adaptive.py)


def build_parts(
    registry: Registry, version: ModelVersion, options: ServingOptions, factory: RuntimeFactory
) -> VersionParts:
    """Blocking: verify the artifact, open `instances` sessions and derive the client-facing signature."""
    model = registry.read_artifact(version)  # digest-verified (and decrypted) in memory
    config = version.config or {}
    labels = tuple(str(label) for label in config.get("labels") or ())
    first = factory(model, 1, options.use_cuda)
    runtimes: list[Runtime] = []
    solo: Runtime | None = None
    try:
        model_inputs, model_outputs = first.inputs, first.outputs
        if not model_inputs or not model_outputs:
            raise InvalidArgument("the model has no inputs or no outputs")
        batch_axis = version.signature.batch_axis if version.signature else True
        batchable = batch_axis and all(s.shape and s.shape[0] == -1 for s in model_inputs)
        policy = BatchingPolicy.resolve(config, options, version.model, batchable)
        layout = adaptive.choose(first, policy, model_inputs, 0 if options.use_cuda else adaptive.cores())
        policy = layout.policy
        preprocess = Preprocessor(config.get("preprocess"), options.max_image_pixels)
        if preprocess and len(model_inputs) != 1:
            raise InvalidArgument("preprocess steps need a model with exactly one input")
        post_steps = config.get("postprocess")
        postprocess = Postprocessor(post_steps, labels, model_outputs[0]) if post_steps else None
        inputs = model_inputs
        if preprocess.decodes:
            inputs = (TensorSpec(model_inputs[0].name, "BYTES", (-1,)),)
        outputs = postprocess.output_specs(model_outputs) if postprocess else model_outputs
        runtimes = [first]
        if policy.intra_op_threads != 1:
            first.close()
            runtimes = []
        while len(runtimes) < policy.instances:
            runtimes.append(factory(model, policy.intra_op_threads, options.use_cuda))
        if layout.solo_threads:
            solo = factory(model, layout.solo_threads, options.use_cuda)
            if not adaptive.keep_solo(solo, runtimes[0], layout, model_inputs):
                solo.close()
                solo = None
    except BaseException:
        first.close()
        for runtime in (*runtimes, *((solo,) if solo is not None else ())):
            runtime.close()
        raise
    return VersionParts(
        version,
        policy,
        tuple(runtimes),
        model_inputs,
        model_outputs,
        inputs,
        outputs,
        preprocess,
        postprocess,
        labels,
        sample_rate(config, options.overrides.get(version.model)),
        solo,
    )


class LoadedVersion:
    """A version ready to serve: parts plus its running batcher, and a count of the requests inside it so
    that closing waits for them (a version leaves only after its in-flight requests finish)."""

    def __init__(self, parts: VersionParts, executor: Executor, observer: BatchObserver) -> None:
        self.parts = parts
        self.stats = getattr(observer, "stats", None)  # Triton's statistics, when the observer keeps them
        self.batcher = Batcher(parts.version.ref, parts.policy, parts.runtimes, executor, observer, solo=parts.solo)
        self.batcher.start()
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def acquire(self) -> None:
        self.in_flight += 1
        self._idle.clear()

    def release(self) -> None:
        self.in_flight -= 1
        if not self.in_flight:
            self._idle.set()

    @property
    def name(self) -> str:
        return self.parts.version.model

    @property
    def number(self) -> int:
        return self.parts.version.version

    async def close(self, grace_s: float) -> None:
        deadline = time.monotonic() + grace_s
        try:
            await asyncio.wait_for(self._idle.wait(), grace_s)
        except TimeoutError:
            log.warning("%s: %d request(s) still in flight after %.1f s", self.parts.version.ref,
                        self.in_flight, grace_s)
        await self.batcher.stop(max(0.0, deadline - time.monotonic()))
        for runtime in (*self.parts.runtimes, *((self.parts.solo,) if self.parts.solo is not None else ())):
            runtime.close()
