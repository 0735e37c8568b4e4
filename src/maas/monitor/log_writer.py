"""Where prediction-log files go: one small seam over fsspec, so encryption (the store's envelope, on when the
home is encrypted) or compression wraps it without the log knowing. Paths are relative to the log's root URL."""

from __future__ import annotations

import io
import threading
from typing import Any, Protocol

from maas.security import envelope
from maas.security.key_provider import KeyProvider


class LogWriter(Protocol):
    def write(self, path: str, data: bytes) -> None: ...
    def read(self, path: str) -> bytes: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, path: str) -> None: ...


class FsspecLogWriter:
    """Files under `url` (a local folder or any fsspec URL); a file appears whole (written, then renamed).

    A local folder is opened on first use, not when the server starts: the log is idle until a version samples
    predictions, and fsspec's import was a few percent of `maas serve`'s start to ready. A remote URL is opened
    at once, so that a wrong one fails the start as before."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._opened: tuple[Any, str] | None = None
        self._lock = threading.Lock()
        if "://" in url and not url.startswith("file://"):
            self._open()

    def _open(self) -> tuple[Any, str]:
        with self._lock:
            if self._opened is None:
                import fsspec

                fs, root = fsspec.core.url_to_fs(self.url)
                root = root.rstrip("/")
                fs.makedirs(root, exist_ok=True)
                self._opened = fs, root
            return self._opened

    @property
    def fs(self) -> Any:
        return (self._opened or self._open())[0]

    @property
    def root(self) -> str:
        return (self._opened or self._open())[1]

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


class SealedLogWriter:
    """Prediction-log files sealed with the store's envelope (AES-256-GCM under the home's master key), each
    bound to its path so a file cannot be passed off under another partition; files written before encryption
    was enabled are read as they are."""

    def __init__(self, inner: LogWriter, keys: KeyProvider) -> None:
        self.inner = inner
        self.keys = keys

    def write(self, path: str, data: bytes) -> None:
        key_id, kek = self.keys.current()
        self.inner.write(path, b"".join(envelope.seal([data], key_id, kek, path.encode())))

    def read(self, path: str) -> bytes:
        raw = self.inner.read(path)
        if not envelope.is_sealed(raw[:envelope.HEADER]):
            return raw
        return b"".join(envelope.unseal(io.BytesIO(raw), self.keys.lookup, path.encode()))

    def list(self, prefix: str = "") -> list[str]:
        return self.inner.list(prefix)

    def delete(self, path: str) -> None:
        self.inner.delete(path)


def open_log_writer(url: str, keys: KeyProvider | None) -> LogWriter:
    """The prediction log's files under `url`, sealed when the registry's home is encrypted (`keys`)."""
    plain = FsspecLogWriter(url)
    return plain if keys is None else SealedLogWriter(plain, keys)
