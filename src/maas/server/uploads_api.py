"""Resumable uploads over the tus 1.0.0 protocol under /api/v1/uploads (core protocol plus the creation,
creation-with-upload, termination and expiration extensions), and the step that imports a finished upload.

tus status codes are kept (409 wrong offset, 410 expired, 412 unsupported protocol version, 415 wrong body
type, 423 busy); every error body is still maas's `{"error": message}`. An upload belongs to the key that
created it: another caller gets 404, as for an id that never existed.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from maas import json_limits
from maas.config import Settings
from maas.errors import FailedPrecondition, InvalidArgument, MaasError
from maas.jobs import JobRunner
from maas.numbers import is_ascii_int
from maas.registry import Registry
from maas.registry.uploads import OffsetConflict, Upload, UploadBusy, UploadGone, check_upload_id
from maas.server.auth import check_model, principal_of
from maas.server.control import import_options, run_import
from maas.server.errors import ERROR_CODE_HEADER, status_of
from maas.server.remote_trust import asks_trust, grant_trust
from maas.server.upload import Upload as FormFields
from maas.server.upload import safe_extension
from maas.types import check_name

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,creation-with-upload,termination,expiration"
OFFSET_STREAM = "application/offset+octet-stream"
PREFIX = "/api/v1/uploads"
MAX_METADATA_KEYS = 32
MAX_METADATA_VALUE = 16 * 1024
LIST_KEYS = frozenset({"tag", "alias"})  # one value per line, as the multipart form repeats the field


class TusError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _tus_headers(up: Upload | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if up is not None:
        headers["Upload-Offset"] = str(up.offset)
        headers["Upload-Length"] = str(up.length)
        headers["Upload-Expires"] = email.utils.formatdate(up.expires_at, usegmt=True)
    return headers


def _error(exc: Exception) -> Response:
    """A tus-flavoured error: the tus status where tus names one, else the core's HTTP mapping."""
    headers = {"Tus-Resumable": TUS_VERSION}
    if isinstance(exc, TusError):
        status, message = exc.status, exc.message
        headers.update(exc.headers)
    elif isinstance(exc, MaasError):
        message = exc.message
        status = (410 if isinstance(exc, UploadGone) else 423 if isinstance(exc, UploadBusy)
                  else 409 if isinstance(exc, OffsetConflict) else status_of(exc))
        headers[ERROR_CODE_HEADER] = exc.code.value
        if status == 423:
            headers["Retry-After"] = "1"
    else:
        raise exc
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _check_version(request: Request) -> None:
    got = request.headers.get("tus-resumable")
    if got != TUS_VERSION:
        raise TusError(412, f"this server speaks tus {TUS_VERSION}; send 'Tus-Resumable: {TUS_VERSION}'"
                       + (f" (got {got[:20]!r})" if got else ""), {"Tus-Version": TUS_VERSION})


def _int_header(request: Request, name: str) -> int | None:
    raw = request.headers.get(name)
    if raw is None:
        return None
    if not is_ascii_int(raw) or len(raw) > 19:
        raise InvalidArgument(f"{name} must be a non-negative integer")
    return int(raw)


def parse_metadata(header: str | None) -> dict[str, str]:
    """`Upload-Metadata: key base64,key2 base64,flag` -> {key: text}; values must be UTF-8 text."""
    out: dict[str, str] = {}
    if header is None or not header.strip():
        return out
    pairs = header.split(",")
    if len(pairs) > MAX_METADATA_KEYS:
        raise InvalidArgument(f"Upload-Metadata has more than {MAX_METADATA_KEYS} keys")
    for pair in pairs:
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or len(key) > 64 or not key.isascii() or not key.isprintable():
            raise InvalidArgument("Upload-Metadata must be comma-separated 'key base64value' pairs")
        if key in out:
            raise InvalidArgument(f"Upload-Metadata repeats the key {key!r}")
        value = ""
        if len(parts) == 2:
            try:
                value = base64.b64decode(parts[1], validate=True).decode("utf-8")
            except (binascii.Error, ValueError):
                raise InvalidArgument(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text") from None
        if len(value) > MAX_METADATA_VALUE:
            raise InvalidArgument(f"Upload-Metadata value of {key!r} is too long")
        out[key] = value
    return out


def encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


def _fields(metadata: dict[str, str]) -> FormFields:
    """Metadata as the multipart form's fields, so both routes read import options the same way."""
    fields = {k: ([line for line in v.splitlines() if line.strip()] if k in LIST_KEYS else [v])
              for k, v in metadata.items()}
    return FormFields(fields=fields)


def _actor(request: Request) -> str:
    principal = principal_of(request.scope)
    return principal.actor if principal is not None else ""


def _model_name(request: Request, metadata: dict[str, str]) -> str:
    name = check_name(metadata.get("name", ""))
    check_model(request.scope, name)
    return name


def router(registry: Registry, settings: Settings, jobs: JobRunner | None = None) -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=["uploads"])
    store = registry.uploads()

    @r.options("", include_in_schema=False)
    def discover() -> Response:
        """What this server supports (tus discovery): version, extensions and the largest upload."""
        return Response(status_code=204, headers={
            "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(settings.max_upload_bytes),
        })

    @r.post("", status_code=201)
    async def create(request: Request) -> Response:
        """Start an upload of `Upload-Length` bytes; `Upload-Metadata` may carry `name` (the model),
        `filename` and the import options of the multipart route. A body of type
        application/offset+octet-stream is its first piece."""
        try:
            _check_version(request)
            if request.headers.get("upload-defer-length") is not None:
                raise InvalidArgument("Upload-Defer-Length is not supported; send Upload-Length")
            length = _int_header(request, "upload-length")
            if length is None:
                raise InvalidArgument("Upload-Length is required")
            if length > settings.max_upload_bytes:
                raise TusError(413, f"upload of {length} bytes exceeds the limit of {settings.max_upload_bytes} "
                               "bytes set by MAAS_MAX_UPLOAD_BYTES", {"Tus-Max-Size": str(settings.max_upload_bytes)})
            metadata = parse_metadata(request.headers.get("upload-metadata"))
            _check_options(request, settings, metadata)
            with_body = _body_type(request, required=False)
            up = await run_in_threadpool(store.create, length, metadata, _actor(request))
            if with_body:
                up = await _append(request, up.id, 0, up.length)
        except (TusError, MaasError) as exc:
            return _error(exc)
        headers = _tus_headers(up)
        headers["Location"] = f"{PREFIX}/{up.id}"
        return Response(status_code=201, headers=headers)

    @r.head("/{upload_id}")
    async def offset(upload_id: str, request: Request) -> Response:
        try:
            _check_version(request)
            up = await run_in_threadpool(store.get, check_upload_id(upload_id), _actor(request))
        except (TusError, MaasError) as exc:
            return _error(exc)
        headers = _tus_headers(up)
        if up.metadata:
            headers["Upload-Metadata"] = encode_metadata(up.metadata)
        return Response(status_code=200, headers=headers)

    @r.get("/{upload_id}")
    async def show(upload_id: str, request: Request) -> Any:
        """The upload as JSON (offset, length, metadata, expiry): for people and scripts, not tus."""
        up = await run_in_threadpool(store.get, check_upload_id(upload_id), _actor(request))
        return {"id": up.id, "offset": up.offset, "length": up.length, "complete": up.complete,
                "metadata": up.metadata, "expires": email.utils.formatdate(up.expires_at, usegmt=True)}

    @r.patch("/{upload_id}")
    async def append(upload_id: str, request: Request) -> Response:
        """Append the body at `Upload-Offset`; a body cut short is kept as far as it came."""
        try:
            _check_version(request)
            _body_type(request, required=True)
            at = _int_header(request, "upload-offset")
            if at is None:
                raise InvalidArgument("Upload-Offset is required")
            up = await run_in_threadpool(store.get, check_upload_id(upload_id), _actor(request))
            if at != up.offset:  # refused before a byte of the body is read; checked again under the lock
                raise OffsetConflict(f"Upload-Offset {at} does not match the upload's offset {up.offset}")
            up = await _append(request, up.id, at, up.length - up.offset)
        except (TusError, MaasError) as exc:
            return _error(exc)
        return Response(status_code=204, headers=_tus_headers(up))

    @r.delete("/{upload_id}")
    async def terminate(upload_id: str, request: Request) -> Response:
        try:
            _check_version(request)
            await run_in_threadpool(store.delete, check_upload_id(upload_id), _actor(request))
        except (TusError, MaasError) as exc:
            return _error(exc)
        return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})

    @r.post("/{upload_id}/import")
    async def import_upload(upload_id: str, request: Request, background: bool = False) -> Response:
        """Import a finished upload as the model's next version (201, the version), or with
        `?background=true` as a job (202, the job). An optional JSON body overrides metadata fields
        (`name`, `format`, …); the upload is gone once imported or queued, and kept if the import fails."""
        overrides, asked_background = await _overrides(request)
        up = await run_in_threadpool(store.get, check_upload_id(upload_id), _actor(request))
        metadata = {**up.metadata, **overrides}
        name = _model_name(request, metadata)
        fields = _fields(metadata)
        trust = grant_trust(request, settings, asks_trust(fields.one("trust", "")))
        options = replace(import_options(fields), trust=trust)
        ext = safe_extension(metadata.get("filename", ""))
        queue = (background or asked_background) and jobs is not None

        def work() -> tuple[int, dict[str, Any]]:
            with store.locked(up.id):
                current = store.get(up.id, _actor(request))
                if not current.complete:
                    raise FailedPrecondition(f"the upload has {current.offset} of {current.length} bytes; "
                                             "send the rest before importing it")
                if queue:
                    assert jobs is not None
                    sha = store.assemble(current)
                    params = {"blob": sha, "extension": ext, "name": name, **options.to_params()}
                    job = jobs.submit("import", params, sha)
                    store.discard(up.id)  # the job's input blob is kept by gc from here on
                    return 202, job.to_dict()
                with registry.work_dir("maas-upload-") as tmp:  # memory-backed and private when encrypted
                    path = tmp / f"upload{ext}"
                    with open(path, "wb") as out:
                        store.write_to(current, out)
                    version = run_import(registry, path, name, options)
                store.discard(up.id)
                return 201, dict(version.to_dict())

        try:
            status, body = await run_in_threadpool(work)
        except UploadBusy as exc:
            return _error(exc)
        return JSONResponse(body, status_code=status)

    async def _append(request: Request, upload_id: str, at: int, remaining: int) -> Upload:
        declared = _int_header(request, "content-length")
        if declared is not None and declared > remaining:
            raise TusError(413, f"a body of {declared} bytes runs past the upload's end ({remaining} bytes left)")
        from maas.server.body_pipe import feed_thread

        up, _broken = await feed_thread(
            request.stream(), lambda chunks: store.append(upload_id, at, chunks, _actor(request)))
        return up

    return r


def _body_type(request: Request, *, required: bool) -> bool:
    """Whether the request carries a piece; 415 for a body of another type."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == OFFSET_STREAM:
        return True
    if required or (ctype and request.headers.get("content-length", "0") != "0"):
        raise TusError(415, f"a piece of an upload is sent with 'Content-Type: {OFFSET_STREAM}'")
    return False


def _check_options(request: Request, settings: Settings, metadata: dict[str, str]) -> None:
    """Refuse at creation what would only fail after the whole upload: a bad name, options or trust."""
    if "name" in metadata:
        _model_name(request, metadata)
    fields = _fields(metadata)
    import_options(fields)
    grant_trust(request, settings, asks_trust(fields.one("trust", "")))


async def _overrides(request: Request) -> tuple[dict[str, str], bool]:
    """The import step's optional JSON body: metadata fields to override, and `background`."""
    body = await request.body()
    if not body:
        return {}, False
    doc = json_limits.loads(body.decode("utf-8", "replace"), "the request body (a JSON object)")
    if not isinstance(doc, dict):
        raise InvalidArgument("the request body must be a JSON object of metadata fields")
    background = doc.pop("background", False)
    if not isinstance(background, bool):
        raise InvalidArgument("background must be true or false")
    out: dict[str, str] = {}
    for k, v in doc.items():
        if k == "labels" and isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[k] = json.dumps(v)
        elif k in LIST_KEYS and isinstance(v, list) and all(isinstance(x, str) for x in v):
            out[k] = "\n".join(v)
        elif isinstance(v, bool):
            out[k] = str(v).lower()
        elif isinstance(v, str | int):
            out[k] = str(v)
        else:
            raise InvalidArgument(f"field {str(k)[:40]!r} must be a string")
    return out, background
