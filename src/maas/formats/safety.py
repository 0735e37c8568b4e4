"""Checks made before any byte of a model file is deserialized: size limits, archive member names and sizes
(path traversal, decompression bombs), and refusing formats whose loading runs arbitrary code."""

from __future__ import annotations

import stat
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from maas.errors import InvalidArgument, PayloadTooLarge

PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".joblib"})
# A member compressed more than this, once past BOMB_MIN_BYTES, is treated as a decompression bomb.
MAX_RATIO = 200
BOMB_MIN_BYTES = 1 << 20


def refuse_code_loading(path: Path, what: str, trust: bool) -> None:
    """Files that execute code when loaded are accepted only when the caller explicitly trusts them."""
    if not trust:
        raise InvalidArgument(
            f"refusing {path.name}: {what} can run arbitrary code when loaded; "
            "re-run with --trust (trust=True) only if you trust its author"
        )


def limit_text(limit: int) -> str:
    """How a size refusal names its limit: the number and the setting that raises it."""
    return f"the limit of {limit} bytes set by MAAS_MAX_UPLOAD_BYTES"


def check_size(path: Path, limit: int) -> int:
    """Total bytes of a file or directory, refused past `limit` (the server's upload limit)."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    total = sum(p.stat().st_size for p in files)
    if total > limit:
        raise PayloadTooLarge(f"{path.name} is {total} bytes, over {limit_text(limit)}")
    return total


def check_member_name(name: str, archive: str) -> None:
    """Reject names that would land outside the extraction directory."""
    p = PurePosixPath(name.replace("\\", "/"))
    if (
        not name
        or name.startswith(("/", "\\"))
        or p.is_absolute()
        or ".." in p.parts
        or (len(name) > 1 and name[1] == ":")
        or "\x00" in name
    ):
        raise InvalidArgument(f"{archive}: unsafe archive entry {name[:120]!r} (absolute or escaping path)")


# What zipfile can inflate; any other method (or a legacy one) would fail only half-way through extraction.
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
# The errors a damaged archive raises while it is read (bad CRC, truncated data, mismatched headers…).
ARCHIVE_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError, ValueError,
                       NotADirectoryError, FileExistsError, IsADirectoryError)


def check_tree(entries: Iterable[tuple[str, bool]], archive: str) -> None:
    """Refuse an archive whose (name, is_dir) entries cannot all be unpacked: a name used twice, or a file
    that is also a folder of another entry (`a` and `a/model.onnx`)."""
    files: set[str] = set()
    dirs: set[str] = set()
    for name, is_dir in entries:
        parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
        if not parts:
            continue
        dirs.update("/".join(parts[:i]) for i in range(1, len(parts)))
        key = "/".join(parts)
        if is_dir:
            dirs.add(key)
        elif key in files:
            raise InvalidArgument(f"{archive}: entry {key[:120]!r} appears twice")
        else:
            files.add(key)
    clash = files & dirs
    if clash:
        name = min(clash)
        raise InvalidArgument(f"{archive}: {name[:120]!r} is both a file and a folder of other entries")


def check_zip(path: Path, limit: int) -> list[zipfile.ZipInfo]:
    """Validate every member of a zip archive from its central directory, before anything is extracted.

    Python's zipfile never yields more than a member's declared size, so checking declared sizes bounds
    what extraction can write.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InvalidArgument(f"{path.name} is not a valid zip archive ({exc})") from None
    total = 0
    for info in infos:
        check_member_name(info.filename, path.name)
        shown = info.filename[:120]
        if stat.S_ISLNK(info.external_attr >> 16):
            raise InvalidArgument(f"{path.name}: entry {shown!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise InvalidArgument(f"{path.name}: entry {shown!r} is encrypted; maas reads only plain archives")
        if info.compress_type not in ZIP_METHODS:
            raise InvalidArgument(
                f"{path.name}: entry {shown!r} uses compression method {info.compress_type}, which maas cannot "
                "read (use deflate)"
            )
        total += info.file_size
        ratio = info.file_size // max(info.compress_size, 1)
        if info.file_size > BOMB_MIN_BYTES and ratio > MAX_RATIO:
            raise InvalidArgument(
                f"{path.name}: entry {info.filename!r} expands {ratio}x "
                "(a decompression bomb?)"
            )
    if total > limit:
        raise PayloadTooLarge(f"{path.name} expands to {total} bytes, over {limit_text(limit)}")
    check_tree(((i.filename, i.is_dir()) for i in infos), path.name)
    return infos


def extract_zip(path: Path, dest: Path, limit: int) -> Path:
    """Extract a checked archive into `dest`."""
    check_zip(path, limit)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            target = (dest / info.filename).resolve()
            if not target.is_relative_to(root):
                raise InvalidArgument(f"{path.name}: unsafe archive entry {info.filename!r}")
            try:
                zf.extract(info, dest)
            except ARCHIVE_READ_ERRORS as exc:
                raise InvalidArgument(f"{path.name}: entry {info.filename[:120]!r} is damaged ({exc})") from None
    return dest


def is_pickle(head: bytes) -> bool:
    """A raw pickle stream starts with the PROTO opcode (protocol 2+) or a classic opcode."""
    return len(head) >= 2 and head[0] == 0x80 and head[1] <= 5
