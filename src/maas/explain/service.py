"""`ExplainService`: explanations for the server, in their own bounded thread pool with their own sessions,
so however many arrive, inference keeps its threads and its queue.

When every worker is busy and the queue is full a request is refused at once (RESOURCE_EXHAUSTED -> 429);
past its time limit it is answered DEADLINE_EXCEEDED (504) and its worker stops at the next model call.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from maas.config import Settings
from maas.errors import DeadlineExceeded, Internal, MaasError, ResourceExhausted
from maas.explain.explainer import Explanation, explain
from maas.explain.params import ExplainParams, Limits
from maas.explain.subject import Subject
from maas.registry import ModelVersion, Registry
from maas.serving.contract import InferenceRequest
from maas.serving.validation import validate_inputs
from maas.types import TensorSpec

log = logging.getLogger(__name__)

OPEN_SUBJECTS = 4  # versions kept open for explaining (each holds one onnxruntime session)
MAX_ELEMENTS = 1 << 24

Resolve = Callable[[str, str | None], Awaitable[ModelVersion]]


class ExplainService:
    def __init__(self, registry: Registry, settings: Settings, resolve: Resolve, max_image_pixels: int) -> None:
        self.registry = registry
        self.resolve = resolve
        self.max_image_pixels = max_image_pixels
        self.limits = Limits(max_evals=settings.explain_max_evals, max_rows=settings.explain_max_rows)
        self.timeout_s = settings.explain_timeout_s
        self.capacity = settings.explain_workers + settings.explain_queue
        self._executor = ThreadPoolExecutor(settings.explain_workers, thread_name_prefix="maas-explain")
        self._in_flight = 0
        self._count_lock = threading.Lock()
        self._subjects: OrderedDict[str, Subject] = OrderedDict()
        self._subjects_lock = threading.Lock()

    async def explain(self, request: InferenceRequest) -> Explanation:
        params = ExplainParams.parse(request.parameters)
        params.check(self.limits)
        version = await self.resolve(request.model_name, request.model_version)
        with self._count_lock:
            if self._in_flight >= self.capacity:
                raise ResourceExhausted(
                    f"the explanation pool is full ({self.capacity} running or waiting); retry later"
                )
            self._in_flight += 1
        deadline = time.monotonic() + self.timeout_s
        try:
            future: Future[Explanation] = self._executor.submit(self._run, version, request, params, deadline)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)  # the slot frees when the work stops, not when we stop waiting
        wrapped = asyncio.wrap_future(future)
        done, _ = await asyncio.wait({wrapped}, timeout=self.timeout_s)
        if not done:
            future.cancel()
            wrapped.add_done_callback(_consume)  # the worker's own DeadlineExceeded is expected, not news
            raise DeadlineExceeded(f"{version.ref}: the explanation ran past its {self.timeout_s:g} s limit")
        return wrapped.result()

    def _done(self, _future: object) -> None:
        with self._count_lock:
            self._in_flight -= 1

    def _run(
        self, version: ModelVersion, request: InferenceRequest, params: ExplainParams, deadline: float
    ) -> Explanation:
        try:
            subject = self._subject(version)
            arrays = request_arrays(subject, request)
            stored = self.registry.explain_background(version.ref)
            with subject.running:
                return explain(
                    subject, arrays, params, self.limits, deadline=deadline,
                    background=stored.arrays if stored else None,
                    background_source=stored.source if stored else "",
                )
        except MaasError:
            raise
        except Exception as exc:  # shap, captum or numpy failing on a request: one log line, a clean 500
            log.exception("explaining %s failed", version.ref)
            raise Internal(f"the explanation failed: {type(exc).__name__}") from exc

    def _subject(self, version: ModelVersion) -> Subject:
        key = f"{version.ref}:{version.artifact('model.onnx').sha256}"
        with self._subjects_lock:
            subject = self._subjects.get(key)
            if subject is not None:
                self._subjects.move_to_end(key)
                return subject
        subject = Subject(self.registry, version, self.max_image_pixels)
        with self._subjects_lock:
            self._subjects[key] = subject
            while len(self._subjects) > OPEN_SUBJECTS:
                _, old = self._subjects.popitem(last=False)
                old.close()
        return subject

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        with self._subjects_lock:
            for subject in self._subjects.values():
                subject.close()
            self._subjects.clear()


def _consume(future: asyncio.Future[Explanation]) -> None:
    if not future.cancelled():
        future.exception()


def request_arrays(subject: Subject, request: InferenceRequest) -> dict[str, np.ndarray]:
    """The request's tensors checked as the data plane checks them (an image model takes PNG bytes or its
    own tensor), before any model call."""
    first = subject.model_inputs[0]
    as_tensor = subject.decodes and any(t.datatype != "BYTES" for t in request.inputs)
    specs = subject.model_inputs if as_tensor or not subject.decodes else (TensorSpec(first.name, "BYTES", (-1,)),)
    return validate_inputs(
        request.inputs, specs, max_batch_size=0, max_elements=MAX_ELEMENTS,
        exact=as_tensor or not subject.preprocess or subject.decodes,
    )
