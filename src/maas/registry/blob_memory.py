"""Blobs in a dict, for unit tests: the same content layer as the real stores, no disk."""

from __future__ import annotations

import io
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from maas.registry.blobs import BlobInfo, ContentAddressed, check_digest


class MemoryBlobStore(ContentAddressed):
    def __init__(self, url: str = "memory://") -> None:
        self.url = url
        self.objects: dict[str, tuple[bytes, float]] = {}
        self.temps: dict[str, tuple[bytes, float]] = {}
        self._paths: tempfile.TemporaryDirectory[str] | None = None

    def stage(self, chunks: Iterable[bytes]) -> str:
        name = f"tmp/{uuid.uuid4().hex}"
        self.temps[name] = (b"".join(chunks), time.time())
        return name

    def commit(self, temp: str, sha256: str, *, replace: bool = False) -> None:
        data = self.temps.pop(temp)
        if replace or check_digest(sha256) not in self.objects:
            self.objects[sha256] = data

    def open_raw(self, sha256: str) -> IO[bytes]:
        try:
            return io.BytesIO(self.objects[check_digest(sha256)][0])
        except KeyError:
            raise FileNotFoundError(sha256) from None

    def exists(self, sha256: str) -> bool:
        return check_digest(sha256) in self.objects

    def delete(self, sha256: str) -> None:
        self.objects.pop(check_digest(sha256), None)

    def _verified_path(self, sha256: str) -> Path:
        data = self.open_bytes(sha256)
        if self._paths is None:
            self._paths = tempfile.TemporaryDirectory(prefix="maas-memory-blobs-")
        path = Path(self._paths.name) / sha256
        path.write_bytes(data)
        return path

    def iter_blobs(self) -> Iterator[BlobInfo]:
        for sha, (data, mtime) in list(self.objects.items()):
            yield BlobInfo(sha, len(data), mtime)

    def iter_temp(self) -> Iterator[tuple[str, int, float]]:
        for name, (data, mtime) in list(self.temps.items()):
            yield name, len(data), mtime

    def delete_temp(self, name: str) -> None:
        self.temps.pop(name, None)

    def close(self) -> None:
        if self._paths is not None:
            self._paths.cleanup()
            self._paths = None
