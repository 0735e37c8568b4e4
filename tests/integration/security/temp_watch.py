"""Records every name created in a folder (inotify, so a file made and deleted in between is still seen)."""

from __future__ import annotations

import ctypes
import os
import select
import struct
import threading

IN_CREATE, IN_MOVED_TO = 0x100, 0x80


class CreatedNames:
    """`with CreatedNames(folder) as seen:` … `seen.names` lists what appeared directly in `folder`."""

    def __init__(self, folder: str) -> None:
        self.folder, self.names = folder, []  # type: ignore[var-annotated]
        self._libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self._fd = self._libc.inotify_init1(os.O_NONBLOCK)
        if self._fd < 0 or self._libc.inotify_add_watch(self._fd, folder.encode(), IN_CREATE | IN_MOVED_TO) < 0:
            raise OSError(ctypes.get_errno(), "inotify")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def __enter__(self) -> CreatedNames:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._drain()
        os.close(self._fd)

    def _read(self) -> None:
        while not self._stop.is_set():
            if select.select([self._fd], [], [], 0.05)[0]:
                self._drain()

    def _drain(self) -> None:
        try:
            buf = os.read(self._fd, 1 << 16)
        except BlockingIOError:
            return
        i = 0
        while i < len(buf):
            _, _, _, length = struct.unpack_from("iIII", buf, i)
            self.names.append(buf[i + 16 : i + 16 + length].rstrip(b"\0").decode())
            i += 16 + length
