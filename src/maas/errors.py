"""The one exception tree of maas; transports map its codes to HTTP / gRPC / exit codes at the edge.

    MaasError (code INTERNAL)
    ├── InvalidArgument      INVALID_ARGUMENT     bad input from outside
    │   ├── PayloadTooLarge  INVALID_ARGUMENT     (HTTP maps it to 413)
    │   └── InvalidParameter INVALID_ARGUMENT     names the bad parameter (`param`)
    ├── NotFound             NOT_FOUND            unknown model, version, alias, job
    ├── AlreadyExists        ALREADY_EXISTS
    ├── FailedPrecondition   FAILED_PRECONDITION  valid request, wrong state (archived, not loaded…)
    ├── ResourceExhausted    RESOURCE_EXHAUSTED   queue full, over a limit
    │   └── RateLimited      RESOURCE_EXHAUSTED   a key over its rate (carries retry_after_s)
    ├── Unavailable          UNAVAILABLE          not ready / shutting down
    ├── DeadlineExceeded     DEADLINE_EXCEEDED
    ├── Unauthenticated      UNAUTHENTICATED      missing, malformed, unknown, expired or revoked key
    ├── PermissionDenied     PERMISSION_DENIED    a valid key outside its scope or its models
    ├── IntegrityError       DATA_LOSS            a stored blob does not match its digest
    └── Internal             INTERNAL
"""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    DATA_LOSS = "DATA_LOSS"
    INTERNAL = "INTERNAL"


class MaasError(Exception):
    """Base of every error maas raises on purpose; `message` is safe to show to a client."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(MaasError):
    code = Code.INVALID_ARGUMENT


class PayloadTooLarge(InvalidArgument):
    pass


class InvalidParameter(InvalidArgument):
    """A bad request parameter, named in `param` (OpenAI's error shape reports it)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class NotFound(MaasError):
    code = Code.NOT_FOUND


class AlreadyExists(MaasError):
    code = Code.ALREADY_EXISTS


class FailedPrecondition(MaasError):
    code = Code.FAILED_PRECONDITION


class ResourceExhausted(MaasError):
    code = Code.RESOURCE_EXHAUSTED


class RateLimited(ResourceExhausted):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(MaasError):
    code = Code.UNAVAILABLE


class DeadlineExceeded(MaasError):
    code = Code.DEADLINE_EXCEEDED


class Unauthenticated(MaasError):
    code = Code.UNAUTHENTICATED


class PermissionDenied(MaasError):
    code = Code.PERMISSION_DENIED

    def __init__(self, message: str, actor: str = "") -> None:
        super().__init__(message)
        self.actor = actor  # who was refused, for the audit log


class IntegrityError(MaasError):
    code = Code.DATA_LOSS


class Internal(MaasError):
    code = Code.INTERNAL
