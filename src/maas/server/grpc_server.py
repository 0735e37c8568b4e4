"""The v2 gRPC server: `inference.GRPCInferenceService` over grpc.aio, translating to and from `DataPlane`.

Handlers receive raw bytes and parse them here, so a body that is not a valid protobuf is answered with
INVALID_ARGUMENT (grpc's own deserializer would answer INTERNAL). Methods maas does not serve (streaming,
shared memory, trace and log settings) are absent and answer UNIMPLEMENTED.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from maas.config import Settings
from maas.errors import InvalidArgument, MaasError, RateLimited
from maas.protocol import grpc_codec
from maas.protocol.grpc_gen import inference_pb2 as pb
from maas.security import AuditLog, Authorizer
from maas.security.rates import retry_after_header
from maas.server.access import log_access, request_id
from maas.server.grpc_auth import GrpcAuth
from maas.server.grpc_errors import status_of
from maas.serving.inference import DataPlane

log = logging.getLogger(__name__)

SERVICE = "inference.GRPCInferenceService"


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
        response = await self.dp.infer(request)
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


def _handler(method: Callable[..., Awaitable[Any]], message: type[Any], auth: GrpcAuth | None) -> grpc.RpcMethodHandler:
    infer = message is pb.ModelInferRequest
    name = method.__name__

    async def handle(data: bytes, context: grpc.aio.ServicerContext) -> bytes:
        started = time.perf_counter()
        rid, request, outcome, principal = "", None, "ok", None
        if infer:  # like REST: the client's x-request-id (else a fresh one), echoed and logged once
            rid = request_id([(k.encode(), v.encode() if isinstance(v, str) else bytes(v))
                              for k, v in context.invocation_metadata() or ()])
            context.set_trailing_metadata((("x-request-id", rid),))  # sent with the status: no extra message
        try:
            if auth is not None:
                principal = auth.before(name, context.invocation_metadata() or ())
            try:
                request = message.FromString(data)
            except DecodeError as e:
                raise InvalidArgument(f"request is not a valid {message.DESCRIPTOR.name}: {e}") from None
            if auth is not None:
                auth.after(name, principal, request)
            response = await (method(request, rid) if infer else method(request))
        except MaasError as e:
            outcome = e.code.value.lower()
            if status_of(e) == grpc.StatusCode.INTERNAL:
                log.error("%s: %s", e.code, e.message)
            _log_access(infer, rid, request, outcome, status_of(e), started)
            if isinstance(e, RateLimited):
                context.set_trailing_metadata((*((("x-request-id", rid),) if rid else ()),
                                               ("retry-after", retry_after_header(e.retry_after_s))))
            if auth is not None and principal is not None:
                await auth.audit(name, principal, request, context.peer(), status_of(e).name)
            await context.abort(status_of(e), e.message)
        except Exception:
            log.exception("unhandled error in %s", message.DESCRIPTOR.name)
            _log_access(infer, rid, request, "internal", grpc.StatusCode.INTERNAL, started)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        _log_access(infer, rid, response, outcome, grpc.StatusCode.OK, started)  # the version actually served
        if auth is not None and principal is not None:
            await auth.audit(name, principal, request, context.peer(), "OK")
        return response.SerializeToString()  # type: ignore[no-any-return]

    return grpc.unary_unary_rpc_method_handler(handle)


def _log_access(infer: bool, rid: str, message: Any, outcome: str, code: grpc.StatusCode, started: float) -> None:
    """One access line per inference; `message` is the request, or the response once served."""
    if infer:
        model = message.model_name if message is not None else ""
        version = message.model_version if message is not None else ""
        log_access("grpc", rid, model, version, outcome, code.name, started)


def generic_handler(dataplane: DataPlane, auth: GrpcAuth | None = None) -> grpc.GenericRpcHandler:
    servicer = InferenceServicer(dataplane)
    return grpc.method_handlers_generic_handler(
        SERVICE, {name: _handler(getattr(servicer, name), msg, auth) for name, msg in _METHODS.items()}
    )


async def start_grpc_server(
    dataplane: DataPlane, settings: Settings, host: str, port: int,
    *, authorizer: Authorizer | None = None, audit: AuditLog | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Start serving on host:port (0: a free port) in the running event loop; returns (server, bound port).
    Without an `authorizer`, one over `settings.api_key` alone is used (no registry keys)."""
    from maas.server.tls import grpc_credentials

    authorizer = authorizer or Authorizer(None, settings.api_key)
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.max_send_message_length", -1),
            # grpcio sets SO_REUSEPORT by default: a second server on a taken port would bind silently and
            # the kernel would split connections between two processes (and two registries).
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers((generic_handler(dataplane, GrpcAuth(authorizer, audit)),))
    credentials = grpc_credentials(settings)
    address = f"{host}:{port}"
    try:
        bound = (server.add_secure_port(address, credentials) if credentials is not None
                 else server.add_insecure_port(address))
    except RuntimeError:  # grpcio raises instead of returning 0 on some failures
        bound = 0
    if bound == 0:
        raise OSError(f"cannot bind the gRPC server to {address}: the port is in use or the address is invalid")
    await server.start()
    return server, bound
