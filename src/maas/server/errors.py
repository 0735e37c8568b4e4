"""Maps the core error tree to HTTP statuses (the REST edge) — the one place that knows both.

FastAPI is imported only by `install` and `error_response`: the infer and health routes and the gRPC side use
`status_of` and must not pull FastAPI in at start (the FastAPI app is built after ready, see deferred_app.py)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from maas.errors import Code, MaasError, PayloadTooLarge

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

log = logging.getLogger(__name__)

HTTP_STATUS = {
    Code.INVALID_ARGUMENT: 400,
    Code.UNAUTHENTICATED: 401,
    Code.PERMISSION_DENIED: 403,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.FAILED_PRECONDITION: 409,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.DATA_LOSS: 500,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DEADLINE_EXCEEDED: 504,
}


def status_of(exc: MaasError) -> int:
    if isinstance(exc, PayloadTooLarge):
        return 413
    return HTTP_STATUS.get(exc.code, 500)


# The error's transport-neutral code, for clients that must tell apart codes sharing a status (409 is both
# ALREADY_EXISTS and FAILED_PRECONDITION); the body keeps KServe's `{"error": message}` shape.
ERROR_CODE_HEADER = "maas-error-code"


def error_response(status: int, message: str, code: Code | None = None) -> JSONResponse:
    """Every error body is `{"error": message}` (KServe v2's shape), on every route."""
    from fastapi.responses import JSONResponse

    headers = {ERROR_CODE_HEADER: code.value} if code is not None else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    from fastapi import Request
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(MaasError)
    async def _maas(_req: Request, exc: MaasError) -> JSONResponse:
        status = status_of(exc)
        if status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return error_response(status, exc.message, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if errs:
            e = errs[0]
            loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
            return error_response(400, f"invalid request: {loc}: {e.get('msg')}" if loc else e.get("msg", ""))
        return error_response(400, "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal error")
