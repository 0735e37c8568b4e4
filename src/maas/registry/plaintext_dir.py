"""A private, memory-backed folder for the rare reader that needs decrypted plaintext as a file.

It lives under /dev/shm (RAM, never written to disk) when that exists, mode 0700, one per process; it is
removed when the registry closes, and folders left by processes that died are removed at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_PREFIX = "maas-plain"


def _base() -> Path:
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    log.warning("no /dev/shm here: decrypted files needed as paths go to %s", tempfile.gettempdir())
    return Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(base: Path | None = None) -> int:
    """Remove this user's folders whose process is gone; returns how many."""
    base = base or _base()
    removed, uid = 0, os.getuid()
    for entry in base.glob(f"{_PREFIX}-{uid}-*"):
        parts = entry.name.split("-")
        with contextlib.suppress(ValueError, IndexError):
            if not _alive(int(parts[3])):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
    return removed


class PlaintextDir:
    """Created on first use; `path_for` names a file inside it, `discard` and `close` remove them."""

    def __init__(self) -> None:
        self._path: Path | None = None

    @property
    def path(self) -> Path:
        if self._path is None:
            base = _base()
            clean_stale(base)
            self._path = Path(tempfile.mkdtemp(prefix=f"{_PREFIX}-{os.getuid()}-{os.getpid()}-", dir=base))
            os.chmod(self._path, 0o700)
        return self._path

    def path_for(self, name: str) -> Path:
        return self.path / name

    def discard(self, name: str) -> None:
        if self._path is not None:
            (self._path / name).unlink(missing_ok=True)

    def close(self) -> None:
        if self._path is not None:
            shutil.rmtree(self._path, ignore_errors=True)
            self._path = None
