"""Blobs on a local filesystem: written to a temp name, fsynced, renamed into `sha256/ab/cdef…`.

Paths inside the store are built from hex digests and random temp names only, never from user strings.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from maas.registry.blobs import BlobInfo, ContentAddressed, check_digest, is_digest


class LocalBlobStore(ContentAddressed):
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self.url = str(self.root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _blob(self, sha256: str) -> Path:
        check_digest(sha256)
        return self.root / "sha256" / sha256[:2] / sha256[2:]

    # --- raw layer -------------------------------------------------------------------------------------
    def stage(self, chunks: Iterable[bytes]) -> str:
        tmp = self.root / "tmp" / uuid.uuid4().hex
        tmp.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return str(tmp)

    def commit(self, temp: str, sha256: str, *, replace: bool = False) -> None:
        final = self._blob(sha256)
        if not replace and final.exists():
            self.delete_temp(temp)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._temp_path(temp), final)  # atomic: readers see the old blob or the new, never half
        _fsync_dir(final.parent)

    def open_raw(self, sha256: str) -> IO[bytes]:
        return open(self._blob(sha256), "rb")

    def exists(self, sha256: str) -> bool:
        return self._blob(sha256).is_file()

    def delete(self, sha256: str) -> None:
        self._blob(sha256).unlink(missing_ok=True)

    def _verified_path(self, sha256: str) -> Path:
        self.verify(sha256)
        return self._blob(sha256)

    # --- housekeeping ----------------------------------------------------------------------------------
    def iter_blobs(self) -> Iterator[BlobInfo]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        with os.scandir(base) as it:
            prefixes = sorted((e.name, e.path) for e in it if e.is_dir() and len(e.name) == 2)
        for name, path in prefixes:
            with os.scandir(path) as it:
                found = [(name + e.name, e.stat()) for e in it if is_digest(name + e.name) and e.is_file()]
            for sha, st in found:
                yield BlobInfo(sha, st.st_size, st.st_mtime)

    def iter_temp(self) -> Iterator[tuple[str, int, float]]:
        base = self.root / "tmp"
        if not base.is_dir():
            return
        with os.scandir(base) as it:
            found = [(e.path, e.stat()) for e in it if e.is_file()]
        for path, st in found:
            yield path, st.st_size, st.st_mtime

    def _temp_path(self, name: str) -> Path:
        path = Path(name)
        if path.parent != self.root / "tmp":
            raise ValueError(f"{name!r} is not a temp file of this store")
        return path

    def delete_temp(self, name: str) -> None:
        self._temp_path(name).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
