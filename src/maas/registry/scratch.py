"""Work folders for conversions, optimizations, exports and uploads, which hold model bytes in the clear.

In an encrypted home they live in this process's private memory-backed folder (`plaintext_dir`: /dev/shm,
mode 0700), so plaintext never reaches ordinary disk. The libraries doing the work (torch.onnx,
onnxruntime.quantization, tf2onnx, …) make temporary files of their own in `tempfile.gettempdir()`; while
a private work folder is open, that too points at the private folder (and child processes get it as
TMPDIR). The switch is process-wide, so another thread's temporary files also land there meanwhile: in
RAM, private, and removed at exit like everything in that folder.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from maas.registry import plaintext_dir

_lock = threading.Lock()
_open = 0  # private work folders open now, in any thread
_saved: str | None = None  # tempfile.tempdir before the first of them
_root: Path | None = None


def private_root() -> Path:
    """This process's private folder (created on first use, removed at exit; a crashed process's folder
    goes at the next start, as `plaintext_dir.clean_stale` finds it)."""
    global _root
    with _lock:
        if _root is None or not _root.is_dir():
            _root = plaintext_dir.PlaintextDir().path
            atexit.register(shutil.rmtree, _root, True)
        return _root


def temp_dir(prefix: str, *, private: bool) -> tempfile.TemporaryDirectory[str]:
    """A folder for plaintext that outlives one call (a loaded language model's weights)."""
    return tempfile.TemporaryDirectory(prefix=prefix, dir=private_root() if private else None)


@contextmanager
def work_dir(prefix: str, *, private: bool) -> Iterator[Path]:
    """A fresh folder, removed on every exit path; private (and the libraries' temp files with it) when
    `private` is true."""
    if not private:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            yield Path(tmp)
        return
    root = private_root()
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    _redirect(root)
    try:
        yield path
    finally:
        _restore()
        shutil.rmtree(path, ignore_errors=True)


def child_env() -> dict[str, str]:
    """Environment for a child process doing conversion work: its temporary files go where ours go."""
    return {**os.environ, "TMPDIR": tempfile.gettempdir()}


def _redirect(root: Path) -> None:
    global _open, _saved
    with _lock:
        if _open == 0:
            _saved = tempfile.tempdir
            tempfile.tempdir = str(root)
        _open += 1


def _restore() -> None:
    global _open
    with _lock:
        _open -= 1
        if _open == 0:
            tempfile.tempdir = _saved
