"""Maps the core error tree to gRPC status codes (the gRPC edge) — the one place that knows both."""

from __future__ import annotations

import grpc

from maas.errors import Code, MaasError

GRPC_STATUS = {
    Code.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Code.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Code.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Code.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Code.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    Code.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Code.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Code.DATA_LOSS: grpc.StatusCode.DATA_LOSS,
    Code.INTERNAL: grpc.StatusCode.INTERNAL,
}


def status_of(exc: MaasError) -> grpc.StatusCode:
    return GRPC_STATUS.get(exc.code, grpc.StatusCode.INTERNAL)
