"""OpenTelemetry spans per inference request: one root span (`inference`) over receive (reading the body),
decode, queue wait, batch, infer (the model run) and encode, with model, version, batch size and request
id as attributes.

Off by default and then free: transports and the data plane only test `tracer is None`. When on, the hot
path stores a few timestamps in a `RequestTrace` (found through a context variable, so no signature
changes); the spans are built from them once the response is out, with explicit start and end times.
Export is OTLP over HTTP, configured by the standard `OTEL_*` variables (endpoint, headers, service name).
"""

from __future__ import annotations

import contextvars
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_current: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar("maas_trace", default=None)


@dataclass(slots=True)
class RequestTrace:
    """Monotonic-clock seconds of one request's stages (0: the stage did not happen)."""

    request_id: str
    protocol: str
    received: float
    read: float = 0.0
    decoded: float = 0.0
    model: str = ""
    version: str = ""
    enqueued: float = 0.0
    dispatched: float = 0.0
    batch_done: float = 0.0
    compute_s: float = 0.0
    batch_rows: int = 0
    rows: int = 0
    answered: float = 0.0  # the core's response is ready
    encoded: float = 0.0
    error: str = ""


def current() -> RequestTrace | None:
    return _current.get()


def wanted(environ: Mapping[str, str], flag: bool) -> bool:
    """On with the flag (`maas serve --trace`, MAAS_TRACING) or the standard OTEL_* variables."""
    if environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "")
    if exporter:
        return exporter.lower() != "none"
    return flag or bool(environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


class Tracer:
    """Turns finished `RequestTrace`s into spans of `provider` (an SDK TracerProvider)."""

    def __init__(self, provider: Any) -> None:
        self._tracer = provider.get_tracer("maas")
        self._offset_ns = time.time_ns() - time.monotonic_ns()  # monotonic stamps -> epoch nanoseconds

    def begin(self, request_id: str, protocol: str) -> RequestTrace:
        trace = RequestTrace(request_id, protocol, time.monotonic())
        _current.set(trace)
        return trace

    def _ns(self, seconds: float) -> int:
        return int(seconds * 1e9) + self._offset_ns

    def finish(self, t: RequestTrace) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import Status, StatusCode

        end = t.encoded or t.answered or time.monotonic()
        attributes = {"maas.model": t.model, "maas.version": t.version, "maas.request_id": t.request_id,
                      "maas.protocol": t.protocol, "maas.batch_size": t.batch_rows or t.rows}
        root = self._tracer.start_span("inference", start_time=self._ns(t.received), attributes=attributes,
                                       kind=trace.SpanKind.SERVER)
        context = trace.set_span_in_context(root)

        def child(name: str, start: float, stop: float, **extra: Any) -> None:
            if start and stop >= start:
                span = self._tracer.start_span(name, context=context, start_time=self._ns(start),
                                               attributes={**attributes, **extra})
                span.end(end_time=self._ns(stop))

        child("receive", t.received, t.read or t.received)
        child("decode", t.read or t.received, t.decoded)
        child("queue wait", t.enqueued, t.dispatched)
        child("batch", t.dispatched, t.batch_done, **{"maas.batch_size": t.batch_rows})
        child("infer", t.batch_done - t.compute_s if t.batch_done else 0.0, t.batch_done)
        child("encode", t.answered, t.encoded)
        if t.error:
            root.set_status(Status(StatusCode.ERROR, t.error))
        root.end(end_time=self._ns(end))
        _current.set(None)


def tracer_from_environment(flag: bool, service_name: str = "maas") -> Tracer | None:
    """The server's tracer: None when tracing is off; else the global SDK provider if one is set (an
    application or a test configured it), else a new one exporting over OTLP/HTTP in batches."""
    if not wanted(os.environ, flag):
        return None
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
        provider = TracerProvider(resource=Resource.create(named))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return Tracer(provider)
