"""Where prediction-log files go: one small seam over fsspec, so encryption (the store's envelope) or
compression can wrap it without the log knowing. Paths are relative to the log's root URL."""

from __future__ import annotations

from typing import Protocol

import fsspec


class LogWriter(Protocol):
    def write(self, path: str, data: bytes) -> None: ...
    def read(self, path: str) -> bytes: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, path: str) -> None: ...


class FsspecLogWriter:
    """Files under `url` (a local folder or any fsspec URL); a file appears whole (written, then renamed)."""

    def __init__(self, url: str) -> None:
        self.fs, root = fsspec.core.url_to_fs(url)
        self.root = root.rstrip("/")
        self.fs.makedirs(self.root, exist_ok=True)

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def write(self, path: str, data: bytes) -> None:
        full = self._full(path)
        self.fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
        temp = f"{full}.tmp"
        with self.fs.open(temp, "wb") as f:
            f.write(data)
        self.fs.mv(temp, full)

    def read(self, path: str) -> bytes:
        with self.fs.open(self._full(path), "rb") as f:
            return bytes(f.read())

    def list(self, prefix: str = "") -> list[str]:
        base = self._full(prefix)
        if not self.fs.exists(base):
            return []
        found = self.fs.find(base)
        cut = len(self.root) + 1
        return sorted(p[cut:] if p.startswith(self.root) else p for p in found if p.endswith(".parquet"))

    def delete(self, path: str) -> None:
        self.fs.rm(self._full(path))
