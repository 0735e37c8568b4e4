"""Streamed multipart upload of a model file: written to a temp dir as it arrives, capped at a size limit.

The client's filename is never used as a path; only its extension (from an allow-list) survives, so the
importer can tell `.h5` from `.onnx`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header
from starlette.requests import Request

from maas.errors import InvalidArgument, PayloadTooLarge
from maas.numbers import is_ascii_int

ALLOWED_EXTENSIONS = (
    ".onnx", ".keras", ".h5", ".hdf5", ".pt", ".pth", ".pt2", ".ts", ".torchscript", ".skops", ".pkl",
    ".joblib", ".tflite", ".zip", ".tar", ".tar.gz", ".tgz", ".txt", ".yaml", ".yml", ".json",
)
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS = 64
_BOUNDARY_RE = re.compile(rb"[ -~]{1,70}")  # fullmatch: `$` would let a trailing newline through


def safe_extension(filename: str) -> str:
    lower = filename.lower()
    for ext in sorted(ALLOWED_EXTENSIONS, key=len, reverse=True):
        if lower.endswith(ext):
            return ext
    return ""


@dataclass
class Upload:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # form field name -> saved file
    filenames: dict[str, str] = field(default_factory=dict)  # form field name -> client's filename (display)

    def one(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else default

    def many(self, name: str) -> list[str]:
        return self.fields.get(name, [])


async def receive_upload(request: Request, limit: int, tmpdir: Path) -> Upload:
    """Parse a multipart/form-data body as it streams in; PayloadTooLarge as soon as `limit` is passed."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidArgument("expected a multipart/form-data body with a file part named 'file'")
    boundary = params[b"boundary"]
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise InvalidArgument("invalid multipart boundary")
    declared = request.headers.get("content-length")
    if declared is not None and is_ascii_int(declared) and int(declared) > limit:
        raise PayloadTooLarge(
            f"upload of {int(declared)} bytes exceeds the limit of {limit} bytes set by MAAS_MAX_UPLOAD_BYTES"
        )

    out = Upload()
    part: dict[str, object] = {}
    header_name = bytearray()
    header_value = bytearray()
    sink: list[IO[bytes] | bytearray | None] = [None]
    counter = [0]

    def on_part_begin() -> None:
        part.clear()
        part["headers"] = {}

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part["headers"][bytes(header_name).lower()] = bytes(header_value)  # type: ignore[index]
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        disp = part["headers"].get(b"content-disposition", b"")  # type: ignore[attr-defined]
        _, opts = parse_options_header(disp)
        name = opts.get(b"name", b"").decode("utf-8", "replace")
        if not name or len(name) > 64:
            raise InvalidArgument("multipart part without a valid name")
        part["name"] = name
        if b"filename" in opts:
            if len(out.files) >= 4:
                raise InvalidArgument("too many files in the upload")
            filename = opts[b"filename"].decode("utf-8", "replace")
            path = tmpdir / f"upload{len(out.files)}{safe_extension(filename)}"
            out.files[name] = path
            out.filenames[name] = filename[:255]
            sink[0] = open(path, "wb")  # noqa: SIM115 - closed in on_part_end / finally
        else:
            if sum(len(v) for v in out.fields.values()) >= MAX_FIELDS:
                raise InvalidArgument("too many form fields")
            sink[0] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        s = sink[0]
        if isinstance(s, bytearray):
            if len(s) + (end - start) > MAX_FIELD_BYTES:
                raise InvalidArgument(f"form field {part.get('name')!r} is too long")
            s.extend(data[start:end])
        elif s is not None:
            s.write(data[start:end])

    def on_part_end() -> None:
        s = sink[0]
        if isinstance(s, bytearray):
            try:
                value = s.decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidArgument(f"form field {part.get('name')!r} is not UTF-8") from None
            out.fields.setdefault(str(part["name"]), []).append(value)
        elif s is not None:
            s.close()
        sink[0] = None

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin, "on_header_field": on_header_field,
            "on_header_value": on_header_value, "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    try:
        async for chunk in request.stream():
            counter[0] += len(chunk)
            if counter[0] > limit:
                raise PayloadTooLarge(f"upload exceeds the limit of {limit} bytes set by MAAS_MAX_UPLOAD_BYTES")
            try:
                parser.write(chunk)
            except InvalidArgument:
                raise
            except Exception as exc:  # the parser's own errors on malformed bodies
                raise InvalidArgument(f"malformed multipart body: {exc}") from None
        parser.finalize()
    finally:
        s = sink[0]
        if s is not None and not isinstance(s, bytearray):
            s.close()
    return out
