"""Content-addressed blob store behind fsspec: `sha256/ab/cdef…`, written to a temp name, fsynced, renamed.

Paths inside the store are built from hex digests and random temp names only, never from user strings.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from maas.errors import IntegrityError, NotFound

CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")


def _check_digest(sha256: str) -> str:
    if len(sha256) != 64 or not set(sha256) <= _HEX:
        raise IntegrityError(f"malformed digest {sha256[:80]!r}")
    return sha256


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


class ArtifactStore:
    """Blobs by SHA-256. Identical content is stored once; every read is verified against its digest."""

    def __init__(self, url: str, cache_dir: Path | None = None) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.local = isinstance(self.fs, LocalFileSystem)
        self.cache_dir = cache_dir
        if self.local:
            os.makedirs(self.root, exist_ok=True)

    # --- paths -----------------------------------------------------------------------------------------
    def _blob(self, sha256: str) -> str:
        _check_digest(sha256)
        return f"{self.root}/sha256/{sha256[:2]}/{sha256[2:]}"

    def _tmp(self) -> str:
        return f"{self.root}/tmp/{uuid.uuid4().hex}"

    # --- writing ---------------------------------------------------------------------------------------
    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        with open(path, "rb") as f:
            return self.put_stream(f)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        import io

        return self.put_stream(io.BytesIO(data))

    def put_stream(self, src: IO[bytes]) -> tuple[str, int]:
        """Copy a stream into the store; returns (sha256, size). Durable once this returns."""
        tmp = self._tmp()
        h, size = hashlib.sha256(), 0
        try:
            if self.local:
                os.makedirs(os.path.dirname(tmp), exist_ok=True)
                with open(tmp, "wb") as out:
                    while chunk := src.read(CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
                    out.flush()
                    os.fsync(out.fileno())
            else:
                with self.fs.open(tmp, "wb") as out:
                    while chunk := src.read(CHUNK):
                        h.update(chunk)
                        size += len(chunk)
                        out.write(chunk)
            sha = h.hexdigest()
            final = self._blob(sha)
            if self.fs.exists(final) and self._digest_of(final) == sha:
                self.fs.rm(tmp)  # already stored once
                return sha, size
            if self.local:
                os.makedirs(os.path.dirname(final), exist_ok=True)
                os.replace(tmp, final)
                _fsync_dir(os.path.dirname(final))
            else:
                self.fs.mv(tmp, final)
            return sha, size
        except BaseException:
            if self.fs.exists(tmp):
                self.fs.rm(tmp)
            raise

    # --- reading ---------------------------------------------------------------------------------------
    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._blob(sha256)))

    def _digest_of(self, path: str) -> str:
        h = hashlib.sha256()
        with self.fs.open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
        return h.hexdigest()

    def verify(self, sha256: str) -> None:
        path = self._blob(sha256)
        if not self.fs.exists(path):
            raise NotFound(f"blob {sha256[:12]}… is missing from the artifact store")
        actual = self._digest_of(path)
        if actual != sha256:
            raise IntegrityError(f"blob {sha256[:12]}… is corrupt (its content hashes to {actual[:12]}…)")

    def read_bytes(self, sha256: str) -> bytes:
        with self.fs.open(self._blob(sha256), "rb") as f:
            data: bytes = f.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"blob {sha256[:12]}… is corrupt")
        return data

    def local_path(self, sha256: str) -> Path:
        """A verified local file with the blob's content (remote stores are cached under cache_dir)."""
        if self.local:
            self.verify(sha256)
            return Path(self._blob(sha256))
        if self.cache_dir is None:
            raise NotFound("a remote artifact store needs a local cache directory")
        target = self.cache_dir / sha256[:2] / sha256[2:]
        if not (target.exists() and sha256_file(target)[0] == sha256):
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
            with self.fs.open(self._blob(sha256), "rb") as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            if sha256_file(part)[0] != sha256:
                part.unlink()
                raise IntegrityError(f"blob {sha256[:12]}… is corrupt")
            os.replace(part, target)
        return target

    # --- housekeeping ----------------------------------------------------------------------------------
    def iter_blobs(self) -> Iterator[tuple[str, int, float]]:
        """(sha256, size, mtime) of every stored blob."""
        base = f"{self.root}/sha256"
        if not self.fs.exists(base):
            return
        for path, info in self.fs.find(base, detail=True).items():
            parts = path.rstrip("/").split("/")
            sha = parts[-2] + parts[-1]
            if len(sha) == 64 and set(sha) <= _HEX:
                yield sha, int(info.get("size", 0)), _mtime(info)

    def iter_temp(self) -> Iterator[tuple[str, int, float]]:
        base = f"{self.root}/tmp"
        if not self.fs.exists(base):
            return
        for path, info in self.fs.find(base, detail=True).items():
            yield path, int(info.get("size", 0)), _mtime(info)

    def delete(self, sha256: str) -> None:
        path = self._blob(sha256)
        if self.fs.exists(path):
            self.fs.rm(path)

    def delete_temp(self, path: str) -> None:
        if path.startswith(f"{self.root}/tmp/") and self.fs.exists(path):
            self.fs.rm(path)


def _mtime(info: dict[str, Any]) -> float:
    m = info.get("mtime") or info.get("LastModified") or info.get("created")
    if m is None:
        return time.time()
    return m.timestamp() if hasattr(m, "timestamp") else float(m)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
