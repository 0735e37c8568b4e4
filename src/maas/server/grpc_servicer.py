"""The v2 gRPC service: `inference.GRPCInferenceService`'s methods over grpc.aio, translating to and from
`DataPlane`, and the per-call handler around them (request id, in-flight cap, auth, access log, status).

Handlers receive raw bytes and parse them here, so a body that is not a valid protobuf is answered with
INVALID_ARGUMENT (grpc's own deserializer would answer INTERNAL). Methods maas does not serve (streaming,
shared memory, trace and log settings) are absent and answer UNIMPLEMENTED.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from maas.errors import DeadlineExceeded, InvalidArgument, MaasError, NotFound, RateLimited, ResourceExhausted
from maas.protocol import grpc_codec
from maas.protocol.grpc_gen import inference_pb2 as pb
from maas.protocol.model_config import triton_config
from maas.security import Principal
from maas.security.rates import retry_after_header
from maas.server.access import log_access, request_id
from maas.server.grpc_auth import GrpcAuth
from maas.server.grpc_errors import status_of
from maas.server.infer_route import RawHeaders
from maas.serving.contract import DataPlane, InferenceRequest
from maas.serving.dataplane import MAX_TIMEOUT_S

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"


def _decode(
    req: pb.ModelInferRequest, request_id: str, deadline_s: float | None, headers: Mapping[str, str] | None
) -> InferenceRequest:
    request = grpc_codec.decode_request(req)
    request.request_id = request_id or request.request_id
    request.headers = headers  # a split's sticky header
    if deadline_s is not None:  # the client's deadline bounds the wait admission accepts (batcher.py)
        if deadline_s <= 0:
            raise DeadlineExceeded("the call's deadline passed before it was served")
        request.timeout_s = min(deadline_s, MAX_TIMEOUT_S)
    return request


class InferenceServicer:
    """One coroutine per method: parse the message, call the data plane, build the answer."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane
        self.tracer = getattr(dataplane, "tracer", None)  # OpenTelemetry, when on (maas.monitor.tracing)

    async def ServerLive(self, req: pb.ServerLiveRequest) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.dp.live())

    async def ServerReady(self, req: pb.ServerReadyRequest) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.dp.ready())

    async def ModelReady(self, req: pb.ModelReadyRequest) -> pb.ModelReadyResponse:
        return pb.ModelReadyResponse(ready=await self.dp.model_ready(req.name, req.version or None))

    async def ServerMetadata(self, req: pb.ServerMetadataRequest) -> pb.ServerMetadataResponse:
        md = self.dp.server_metadata()
        return pb.ServerMetadataResponse(name=md.name, version=md.version, extensions=list(md.extensions))

    async def ModelMetadata(self, req: pb.ModelMetadataRequest) -> pb.ModelMetadataResponse:
        md = await self.dp.model_metadata(req.name, req.version or None)
        tm = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=md.name,
            versions=list(md.versions),
            platform=md.platform,
            inputs=[tm(name=t.name, datatype=t.datatype, shape=list(t.shape)) for t in md.inputs],
            outputs=[tm(name=t.name, datatype=t.datatype, shape=list(t.shape)) for t in md.outputs],
        )

    async def ModelInfer(
        self, req: pb.ModelInferRequest, request_id: str = "", deadline_s: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> pb.ModelInferResponse:
        shed = getattr(self.dp, "shed", None)
        why = shed(req.model_name, req.model_version or None) if shed is not None and req.model_name else None
        if why is not None:  # before the tensors are decoded: shedding must stay cheap
            raise ResourceExhausted(why)
        if self.tracer is not None:
            return await self._traced_infer(req, request_id, deadline_s, headers)
        request = _decode(req, request_id, deadline_s, headers)
        try:
            response = await self.dp.infer(request)
        finally:
            if request.served_version:  # the access line of a failed request names the version it reached
                req.model_version = request.served_version
        return grpc_codec.encode_response(response, request)

    async def _traced_infer(
        self, req: pb.ModelInferRequest, request_id: str, deadline_s: float | None, headers: Mapping[str, str] | None
    ) -> pb.ModelInferResponse:
        trace = self.tracer.begin(request_id, "grpc")  # type: ignore[union-attr]
        try:
            request = _decode(req, request_id, deadline_s, headers)
            trace.decoded = time.monotonic()
            response = await self.dp.infer(request)
            encoded = grpc_codec.encode_response(response, request)
            trace.encoded = time.monotonic()
            return encoded
        except MaasError as exc:
            trace.error = exc.code.value.lower()
            raise
        except asyncio.CancelledError:  # the client gave up: its span says so rather than looking served
            trace.error = "cancelled"
            raise
        finally:
            self.tracer.finish(trace)  # type: ignore[union-attr]

    async def ModelConfig(self, req: pb.ModelConfigRequest) -> pb.ModelConfigResponse:
        config = await self.dp.model_config(req.name, req.version or None)
        return pb.ModelConfigResponse(config=grpc_codec.encode_model_config(triton_config(config)))

    async def RepositoryIndex(self, req: pb.RepositoryIndexRequest) -> pb.RepositoryIndexResponse:
        entries = await self.dp.repository_index(req.ready)
        mi = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(
            models=[mi(name=e.name, version=e.version, state=e.state, reason=e.reason) for e in entries]
        )

    async def RepositoryModelLoad(self, req: pb.RepositoryModelLoadRequest) -> pb.RepositoryModelLoadResponse:
        if req.parameters:
            raise InvalidArgument("load parameters (config or file overrides) are not supported")
        await self.dp.load(req.model_name)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, req: pb.RepositoryModelUnloadRequest
    ) -> pb.RepositoryModelUnloadResponse:
        await self.dp.unload(req.model_name)
        return pb.RepositoryModelUnloadResponse()

    async def ModelStatistics(self, req: pb.ModelStatisticsRequest) -> pb.ModelStatisticsResponse:
        stats = getattr(self.dp, "model_statistics", None)
        if stats is None:
            raise NotFound("statistics are not available on this server")
        return grpc_codec.encode_statistics(await stats(req.name, req.version or None))


# method -> request message class; the response class is what the servicer returns.
_METHODS: dict[str, type[Any]] = {
    "ServerLive": pb.ServerLiveRequest,
    "ServerReady": pb.ServerReadyRequest,
    "ModelReady": pb.ModelReadyRequest,
    "ServerMetadata": pb.ServerMetadataRequest,
    "ModelMetadata": pb.ModelMetadataRequest,
    "ModelInfer": pb.ModelInferRequest,
    "ModelConfig": pb.ModelConfigRequest,
    "RepositoryIndex": pb.RepositoryIndexRequest,
    "RepositoryModelLoad": pb.RepositoryModelLoadRequest,
    "RepositoryModelUnload": pb.RepositoryModelUnloadRequest,
    "ModelStatistics": pb.ModelStatisticsRequest,
}


class InFlight:
    """Counts inference calls in progress, so maas (not grpc's own limits) refuses the one too many."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0


def _handler(
    method: Callable[..., Awaitable[Any]], message: type[Any], auth: GrpcAuth | None,
    in_flight: InFlight | None = None,
) -> grpc.RpcMethodHandler:
    infer = message is pb.ModelInferRequest
    name = method.__name__

    async def handle(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = time.perf_counter()
        rid, request, outcome, principal = "", None, "ok", None
        headers: Mapping[str, str] | None = None
        invocation = context.invocation_metadata() or ()
        if infer:  # like REST: the client's x-request-id (else a fresh one), echoed and logged once
            metadata = [(k.encode(), v.encode() if isinstance(v, str) else bytes(v)) for k, v in invocation]
            rid = request_id(metadata)
            headers = RawHeaders(metadata)  # a split's sticky header, read only when a split asks for one
            # the id goes back in the trailing metadata, with the status: no extra message
        counted = infer and in_flight is not None
        try:
            if counted:
                assert in_flight is not None
                in_flight.count += 1
                if in_flight.count > in_flight.limit:
                    raise ResourceExhausted(f"server busy: {in_flight.limit} calls in flight; retry later")
            if auth is not None:
                principal = await auth.before(name, invocation)
            try:
                request = message.FromString(data)
            except DecodeError as e:
                raise InvalidArgument(f"request is not a valid {message.DESCRIPTOR.name}: {e}") from None
            if auth is not None:
                auth.after(name, principal, request)
            response = await (method(request, rid, context.time_remaining(), headers) if infer else method(request))
            if infer:  # which version answered (a traffic split may have chosen it)
                context.set_trailing_metadata((("x-request-id", rid), ("x-model-version", response.model_version)))
        except MaasError as e:
            outcome = e.code.value.lower()
            if status_of(e) == grpc.StatusCode.INTERNAL:
                log.error("%s: %s", e.code, e.message)
            _log_access(infer, rid, request, outcome, status_of(e), started, principal, len(data))
            if isinstance(e, RateLimited):
                context.set_trailing_metadata((*((("x-request-id", rid),) if rid else ()),
                                               ("retry-after", retry_after_header(e.retry_after_s))))
            elif rid:
                context.set_trailing_metadata((("x-request-id", rid),))
            if auth is not None and principal is not None:
                await auth.audit(name, principal, request, context.peer(), status_of(e).name)
            await context.abort(status_of(e), e.message)
        except asyncio.CancelledError:  # the client gave up (deadline, disconnect): still one access line
            _log_access(infer, rid, request, "cancelled", grpc.StatusCode.CANCELLED, started, principal, len(data))
            raise
        except Exception:
            log.exception("unhandled error in %s", message.DESCRIPTOR.name)
            if rid:
                context.set_trailing_metadata((("x-request-id", rid),))
            _log_access(infer, rid, request, "internal", grpc.StatusCode.INTERNAL, started, principal, len(data))
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            if counted:
                assert in_flight is not None
                in_flight.count -= 1
        answer: bytes = response.SerializeToString()
        _log_access(infer, rid, response, outcome, grpc.StatusCode.OK, started, principal, len(data),
                    len(answer))  # the version actually served
        if auth is not None and principal is not None:
            await auth.audit(name, principal, request, context.peer(), "OK")
        return answer

    return grpc.unary_unary_rpc_method_handler(handle)


def _log_access(
    infer: bool, rid: str, message: Any, outcome: str, code: grpc.StatusCode, started: float,
    principal: Principal | None, received: int, sent: int = 0,
) -> None:
    """One access line per inference; `message` is the request, or the response once served."""
    if infer:
        model = message.model_name if message is not None else ""
        version = message.model_version if message is not None else ""
        log_access("grpc", rid, model, version, outcome, code.name, started,
                   key=principal.key_id if principal is not None else "", request_bytes=received,
                   response_bytes=sent)


def generic_handler(
    dataplane: DataPlane, auth: GrpcAuth | None = None, max_in_flight: int = 8192
) -> grpc.GenericRpcHandler:
    servicer = InferenceServicer(dataplane)
    in_flight = InFlight(max_in_flight)
    return grpc.method_handlers_generic_handler(
        SERVICE, {name: _handler(getattr(servicer, name), msg, auth, in_flight) for name, msg in _METHODS.items()}
    )
