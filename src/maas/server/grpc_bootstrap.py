"""Starting the v2 gRPC server: grpc.aio's options and limits, the port (plain or TLS), and the service.

The service itself (methods and per-call handling) is `grpc_servicer`; who may call what is `grpc_auth`.
"""

from __future__ import annotations

import grpc

from maas.config import Settings
from maas.security import AuditLog, Authorizer
from maas.server.grpc_auth import GrpcAuth
from maas.server.grpc_servicer import generic_handler
from maas.serving.contract import DataPlane


async def start_grpc_server(
    dataplane: DataPlane, settings: Settings, host: str, port: int,
    *, authorizer: Authorizer | None = None, audit: AuditLog | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Start serving on host:port (0: a free port) in the running event loop; returns (server, bound port).
    Without an `authorizer`, one over `settings.api_key` alone is used (no registry keys)."""
    from maas.server.tls import grpc_credentials

    authorizer = authorizer or Authorizer(None, settings.api_key)
    # grpc's own limits sit above maas's (InFlight, the batcher's admission), so a call is refused by maas,
    # with its status, message and access-log line, before grpc would refuse or cancel it: a stream limit per
    # connection at the in-flight cap answered UNAVAILABLE, and grpc core's pending-request limits (1000 soft,
    # 3000 hard by default) CANCELLED 4,078 calls of a 4,352-client burst before Python saw them. Calls wait
    # there while the event loop is busy, however low maas's own cap, so the ceiling never falls below 65,536.
    ceiling = max(4 * settings.max_grpc_in_flight + 1024, 1 << 16)
    server = grpc.aio.server(
        maximum_concurrent_rpcs=ceiling,
        options=[
            ("grpc.max_receive_message_length", settings.max_request_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.max_concurrent_streams", 1 << 16),
            ("grpc.server.max_pending_requests", ceiling),
            ("grpc.server.max_pending_requests_hard_limit", ceiling),
            ("grpc.max_metadata_size", settings.max_header_bytes),
            # grpcio sets SO_REUSEPORT by default: a second server on a taken port would bind silently and
            # the kernel would split connections between two processes (and two registries).
            ("grpc.so_reuseport", 0),
        ],
    )
    server.add_generic_rpc_handlers((generic_handler(dataplane, GrpcAuth(authorizer, audit),
                                                     settings.max_grpc_in_flight),))
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
