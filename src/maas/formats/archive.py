"""Model bundles shipped as one `.zip` or `.tar(.gz)` (an .onnx and its external data, or a SavedModel):
every entry is checked (name, kind, size, compression ratio) before a byte is written, then unpacked into
the import's work dir, so a hostile archive never touches the file system outside it."""

from __future__ import annotations

import gzip
import shutil
import tarfile
import zlib
from pathlib import Path

from maas.errors import InvalidArgument, PayloadTooLarge
from maas.formats import safety

SUFFIXES = (".zip", ".tar.gz", ".tgz", ".tar")
_CHUNK = 1 << 20


def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(SUFFIXES)


def extract(path: Path, dest: Path, limit: int) -> Path:
    """Unpack a checked archive into `dest` and return the bundle's root (a lone top folder is entered)."""
    if path.name.lower().endswith(".zip"):
        safety.extract_zip(path, dest, limit)
    else:
        _extract_tar(path, dest, limit)
    root = dest
    entries = list(root.iterdir())
    while len(entries) == 1 and entries[0].is_dir():
        root = entries[0]
        entries = list(root.iterdir())
    return root


def _gunzipped_size(path: Path, limit: int) -> int:
    """Decompress once, counting, to bound what the tar reader will inflate (a gzip bomb stops here)."""
    total = 0
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise PayloadTooLarge(f"{path.name} expands past {safety.limit_text(limit)}")
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidArgument(f"{path.name} is not a valid gzip file ({exc})") from None
    compressed = max(path.stat().st_size, 1)
    if total > (1 << 20) and total // compressed > safety.MAX_RATIO:
        raise InvalidArgument(f"{path.name} expands {total // compressed}x (a decompression bomb?)")
    return total


def _members(path: Path, limit: int) -> list[tarfile.TarInfo]:
    with path.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    if gzipped:
        _gunzipped_size(path, limit)
    try:
        with tarfile.open(path, "r:*") as tf:
            members = tf.getmembers()
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InvalidArgument(f"{path.name} is not a valid tar archive ({exc})") from None
    total = 0
    for m in members:
        safety.check_member_name(m.name, path.name)
        if not (m.isfile() or m.isdir()):
            raise InvalidArgument(
                f"{path.name}: entry {m.name[:120]!r} is a link or special file; only files and folders are allowed"
            )
        total += m.size
    if total > limit:
        raise PayloadTooLarge(f"{path.name} expands to {total} bytes, over {safety.limit_text(limit)}")
    safety.check_tree(((m.name, m.isdir()) for m in members), path.name)
    return members


def _extract_tar(path: Path, dest: Path, limit: int) -> None:
    """Write the checked members ourselves: regular files and folders only, never tarfile's extractall."""
    members = _members(path, limit)
    dest.mkdir(parents=True, exist_ok=True)
    root = dest.resolve()
    with tarfile.open(path, "r:*") as tf:
        for m in members:
            target = (dest / m.name).resolve()
            if not target.is_relative_to(root):
                raise InvalidArgument(f"{path.name}: unsafe archive entry {m.name[:120]!r}")
            if m.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tf.extractfile(m)
            if src is None:
                raise InvalidArgument(f"{path.name}: cannot read entry {m.name[:120]!r}")
            try:
                with src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, _CHUNK)
            except (*safety.ARCHIVE_READ_ERRORS, tarfile.TarError, OSError) as exc:
                raise InvalidArgument(f"{path.name}: entry {m.name[:120]!r} is damaged ({exc})") from None
