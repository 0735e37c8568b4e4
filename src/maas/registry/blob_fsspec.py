"""Blobs on any fsspec filesystem (`s3://`, `gs://`, `memory` of fsspec…): temp name, then a move.

Reads that need a local path are copied into a cache directory and verified there.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import fsspec

from maas.errors import IntegrityError
from maas.registry.blobs import CHUNK, BlobInfo, ContentAddressed, check_digest, is_digest, sha256_file


class FsspecBlobStore(ContentAddressed):
    def __init__(self, url: str, cache_dir: Path) -> None:
        self.url = url
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.cache_dir = cache_dir

    def _blob(self, sha256: str) -> str:
        check_digest(sha256)
        return f"{self.root}/sha256/{sha256[:2]}/{sha256[2:]}"

    # --- raw layer -------------------------------------------------------------------------------------
    def stage(self, chunks: Iterable[bytes]) -> str:
        tmp = f"{self.root}/tmp/{uuid.uuid4().hex}"
        self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)  # a no-op on object stores
        try:
            with self.fs.open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
        except BaseException:
            self.delete_temp(tmp)
            raise
        return tmp

    def commit(self, temp: str, sha256: str, *, replace: bool = False) -> None:
        final = self._blob(sha256)
        if not replace and self.fs.exists(final):
            self.delete_temp(temp)
            return
        self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(temp, final)

    def open_raw(self, sha256: str) -> IO[bytes]:
        path = self._blob(sha256)
        if not self.fs.exists(path):
            raise FileNotFoundError(path)
        f: IO[bytes] = self.fs.open(path, "rb")
        return f

    def exists(self, sha256: str) -> bool:
        return bool(self.fs.exists(self._blob(sha256)))

    def delete(self, sha256: str) -> None:
        path = self._blob(sha256)
        if self.fs.exists(path):
            self.fs.rm(path)

    def _verified_path(self, sha256: str) -> Path:
        target = self.cache_dir / sha256[:2] / sha256[2:]
        if not (target.exists() and sha256_file(target)[0] == sha256):
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part")
            with self._open(sha256) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            if sha256_file(part)[0] != sha256:
                part.unlink()
                raise IntegrityError(f"blob {sha256[:12]}… is corrupt")
            os.replace(part, target)
        return target

    # --- housekeeping ----------------------------------------------------------------------------------
    def iter_blobs(self) -> Iterator[BlobInfo]:
        base = f"{self.root}/sha256"
        if not self.fs.exists(base):
            return
        for path, info in self.fs.find(base, detail=True).items():
            parts = path.rstrip("/").split("/")
            sha = parts[-2] + parts[-1]
            if is_digest(sha):
                yield BlobInfo(sha, int(info.get("size", 0)), _mtime(info))

    def iter_temp(self) -> Iterator[tuple[str, int, float]]:
        base = f"{self.root}/tmp"
        if not self.fs.exists(base):
            return
        for path, info in self.fs.find(base, detail=True).items():
            yield path, int(info.get("size", 0)), _mtime(info)

    def delete_temp(self, name: str) -> None:
        if name.startswith(f"{self.root}/tmp/") and self.fs.exists(name):
            self.fs.rm(name)


def _mtime(info: dict[str, Any]) -> float:
    m = info.get("mtime") or info.get("LastModified") or info.get("created")
    if m is None:
        return time.time()
    return m.timestamp() if hasattr(m, "timestamp") else float(m)
