"""The blob store seam: content-addressed, verified blobs (`sha256/ab/cdef…`), chosen by URL scheme.

A store is two layers. The raw layer (`stage`, `commit`, `open_raw`, …) keeps named objects durably; the
content layer (`put_stream`, `open_bytes`, `open_path`, `verify`) addresses them by the SHA-256 of their
plaintext and checks that digest on every read. Wrappers such as `EncryptedBlobStore` change what the raw
layer holds and keep the content layer's promises, so `Registry` never knows which stack it was handed.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from maas.errors import IntegrityError, InvalidArgument, NotFound

CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class BlobInfo:
    sha256: str
    size: int  # bytes as stored (ciphertext for an encrypted store)
    mtime: float


def check_digest(sha256: str) -> str:
    if not isinstance(sha256, str) or len(sha256) != 64 or not set(sha256) <= _HEX:
        raise IntegrityError(f"malformed digest {str(sha256)[:80]!r}")
    return sha256


def is_digest(name: str) -> bool:
    return len(name) == 64 and set(name) <= _HEX


def sha256_file(path: str | os.PathLike[str]) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
            size += len(chunk)
    return h.hexdigest(), size


def read_chunks(src: IO[bytes]) -> Iterator[bytes]:
    while chunk := src.read(CHUNK):
        yield chunk


class BlobStore(Protocol):
    """What `Registry` needs from a blob store (plus the raw layer that wrappers stack on)."""

    url: str

    # content layer
    def put_stream(self, src: IO[bytes]) -> tuple[str, int]: ...
    def open_bytes(self, sha256: str) -> bytes: ...
    def open_path(self, sha256: str) -> Path: ...
    def verify(self, sha256: str) -> None: ...
    def exists(self, sha256: str) -> bool: ...
    def delete(self, sha256: str) -> None: ...
    def iter_blobs(self) -> Iterator[BlobInfo]: ...
    def iter_temp(self) -> Iterator[tuple[str, int, float]]: ...
    def delete_temp(self, name: str) -> None: ...
    def close(self) -> None: ...

    # raw layer
    def stage(self, chunks: Iterable[bytes]) -> str: ...
    def commit(self, temp: str, sha256: str, *, replace: bool = False) -> None: ...
    def open_raw(self, sha256: str) -> IO[bytes]: ...


class ContentAddressed:
    """The content layer over a raw layer that stores plaintext as is (local disk, fsspec, memory)."""

    url: str

    # raw layer, supplied by each store
    def stage(self, chunks: Iterable[bytes]) -> str:
        raise NotImplementedError

    def commit(self, temp: str, sha256: str, *, replace: bool = False) -> None:
        raise NotImplementedError

    def delete_temp(self, name: str) -> None:
        raise NotImplementedError

    def open_raw(self, sha256: str) -> IO[bytes]:
        raise NotImplementedError

    def exists(self, sha256: str) -> bool:
        raise NotImplementedError

    def _verified_path(self, sha256: str) -> Path:
        raise NotImplementedError

    # content layer
    def put_stream(self, src: IO[bytes]) -> tuple[str, int]:
        """Copy a stream into the store; returns (sha256, size). Durable once this returns."""
        h = hashlib.sha256()
        size = 0

        def hashed() -> Iterator[bytes]:
            nonlocal size
            for chunk in read_chunks(src):
                h.update(chunk)
                size += len(chunk)
                yield chunk

        temp = self.stage(hashed())
        sha = h.hexdigest()
        try:
            if self.exists(sha) and self._intact(sha):
                self.delete_temp(temp)  # already stored once
            else:
                self.commit(temp, sha, replace=True)
        except BaseException:
            self.delete_temp(temp)
            raise
        return sha, size

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        return self.put_stream(io.BytesIO(data))

    def _intact(self, sha256: str) -> bool:
        try:
            self.verify(sha256)
            return True
        except IntegrityError:
            return False

    def _open(self, sha256: str) -> IO[bytes]:
        check_digest(sha256)
        try:
            return self.open_raw(sha256)
        except FileNotFoundError:
            raise NotFound(f"blob {sha256[:12]}… is missing from the artifact store") from None

    def verify(self, sha256: str) -> None:
        h = hashlib.sha256()
        with self._open(sha256) as f:
            for chunk in read_chunks(f):
                h.update(chunk)
        if h.hexdigest() != sha256:
            raise IntegrityError(f"blob {sha256[:12]}… is corrupt (its content hashes to {h.hexdigest()[:12]}…)")

    def open_bytes(self, sha256: str) -> bytes:
        with self._open(sha256) as f:
            data: bytes = f.read()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise IntegrityError(f"blob {sha256[:12]}… is corrupt")
        return data

    def open_path(self, sha256: str) -> Path:
        """A verified local file with the blob's content."""
        return self._verified_path(check_digest(sha256))

    def close(self) -> None:
        return None


def open_blob_store(url: str, cache_dir: Path) -> BlobStore:
    """The plaintext store for `url`: a path or `file://` → local disk, `memory://` → in memory, else fsspec."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme in ("", "file"):
        from maas.registry.blob_local import LocalBlobStore

        return LocalBlobStore(url.removeprefix("file://"))
    if scheme == "memory":
        from maas.registry.blob_memory import MemoryBlobStore

        return MemoryBlobStore(url)
    try:
        from maas.registry.blob_fsspec import FsspecBlobStore

        return FsspecBlobStore(url, cache_dir=cache_dir)
    except (ValueError, ImportError) as exc:
        raise InvalidArgument(f"unsupported artifact store URL {url[:200]!r}: {exc}") from None
