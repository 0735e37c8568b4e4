"""The v2 gRPC server: `inference.GRPCInferenceService` over grpc.aio, translating to and from `DataPlane`.

Handlers receive raw bytes and parse them here, so a body that is not a valid protobuf is answered with
INVALID_ARGUMENT (grpc's own deserializer would answer INTERNAL). Methods maas does not serve (streaming,
shared memory, trace and log settings) are absent and answer UNIMPLEMENTED.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from maas.config import Settings
from maas.errors import InvalidArgument, MaasError
from maas.protocol import grpc_codec
from maas.protocol.grpc_gen import inference_pb2 as pb
from maas.server.access import log_access, request_id
from maas.server.grpc_errors import status_of
from maas.serving.inference import DataPlane

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"
OPEN_METHODS = frozenset({f"/{SERVICE}/ServerLive", f"/{SERVICE}/ServerReady"})


class InferenceServicer:
    """One coroutine per method: parse the message, call the data plane, build the answer."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dp = dataplane

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

    async def ModelInfer(self, req: pb.ModelInferRequest, request_id: str = "") -> pb.ModelInferResponse:
        request = grpc_codec.decode_request(req)
        request.request_id = request_id or request.request_id
        try:
            response = await self.dp.infer(request)
        finally:
            if request.served_version:  # the access line of a failed request names the version it reached
                req.model_version = request.served_version
        return grpc_codec.encode_response(response, request)

    async def ModelConfig(self, req: pb.ModelConfigRequest) -> pb.ModelConfigResponse:
        config = await self.dp.model_config(req.name, req.version or None)
        return pb.ModelConfigResponse(config=grpc_codec.encode_model_config(config))

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
}


def _handler(method: Callable[..., Awaitable[Any]], message: type[Any]) -> grpc.RpcMethodHandler:
    infer = message is pb.ModelInferRequest

    async def handle(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = time.perf_counter()
        rid, request, outcome = "", None, "ok"
        if infer:  # like REST: the client's x-request-id (else a fresh one), echoed and logged once
            rid = request_id([(k.encode(), v.encode() if isinstance(v, str) else bytes(v))
                              for k, v in context.invocation_metadata() or ()])
            context.set_trailing_metadata((("x-request-id", rid),))  # sent with the status: no extra message
        try:
            try:
                request = message.FromString(data)
            except DecodeError as e:
                raise InvalidArgument(f"request is not a valid {message.DESCRIPTOR.name}: {e}") from None
            response = await (method(request, rid) if infer else method(request))
        except MaasError as e:
            outcome = e.code.value.lower()
            if status_of(e) == grpc.StatusCode.INTERNAL:
                log.error("%s: %s", e.code, e.message)
            _log_access(infer, rid, request, outcome, status_of(e), started)
            await context.abort(status_of(e), e.message)
        except Exception:
            log.exception("unhandled error in %s", message.DESCRIPTOR.name)
            _log_access(infer, rid, request, "internal", grpc.StatusCode.INTERNAL, started)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        _log_access(infer, rid, response, outcome, grpc.StatusCode.OK, started)  # the version actually served
        return response.SerializeToString()  # type: ignore[no-any-return]

    return grpc.unary_unary_rpc_method_handler(handle)


def _log_access(infer: bool, rid: str, message: Any, outcome: str, code: grpc.StatusCode, started: float) -> None:
    """One access line per inference; `message` is the request, or the response once served."""
    if infer:
        model = message.model_name if message is not None else ""
        version = message.model_version if message is not None else ""
        log_access("grpc", rid, model, version, outcome, code.name, started)


def generic_handler(dataplane: DataPlane) -> grpc.GenericRpcHandler:
    servicer = InferenceServicer(dataplane)
    return grpc.method_handlers_generic_handler(
        SERVICE, {name: _handler(getattr(servicer, name), msg) for name, msg in _METHODS.items()}
    )


class ApiKeyInterceptor(grpc.aio.ServerInterceptor):
    """Requires `authorization: Bearer <key>` on every method but the health checks."""

    def __init__(self, api_key: str) -> None:
        self._expected = f"Bearer {api_key}".encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        if details.method in OPEN_METHODS or self._authorized(details.invocation_metadata or ()):
            return await continuation(details)
        return _DENY

    def _authorized(self, metadata: Any) -> bool:
        for key, value in metadata:
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else bytes(value)
                return hmac.compare_digest(given, self._expected)
        return False


async def _deny(_request: bytes, context: grpc.aio.ServicerContext) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or invalid API key")


_DENY = grpc.unary_unary_rpc_method_handler(_deny)


async def start_grpc_server(
    dataplane: DataPlane, settings: Settings, host: str, port: int
) -> tuple[grpc.aio.Server, int]:
    """Start serving on host:port (0: a free port) in the running event loop; returns (server, bound port)."""
    interceptors = [ApiKeyInterceptor(settings.api_key)] if settings.api_key else []
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.max_send_message_length", -1),
        ],
    )
    server.add_generic_rpc_handlers((generic_handler(dataplane),))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the gRPC server to {host}:{port}")
    await server.start()
    return server, bound
