"""Who asked for what: request ids and the access log, one INFO line per inference on `maas.access`, shared by
REST and gRPC.

A line per request is the busiest log there is. `maas serve` sends these lines to a block-buffered copy of
stderr flushed every 0.2 s (`buffer_access_log`) instead of one write system call per line, and while that
handler is the access logger's only destination `log_access` hands it the line directly: no `LogRecord` (its
constructor looks up the thread, process and module names), no filters, and the date formatted once a
second, in exactly the format's layout. Other destinations (a test's capture, a user's handler) get ordinary
records. 16 µs a line became 7 with the buffer, then about 2 without the record.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

access_log = logging.getLogger("maas.access")

REQUEST_ID = b"x-request-id"
_MAX_ID = 128
# Generated ids: a random per-process prefix and a counter (uuid4 cost 2% of a request in the profile).
_ID_PREFIX = os.urandom(6).hex()
_ID_COUNTER = itertools.count(1)


EXCHANGE = "maas.exchange"  # the ASGI scope key under which REST routes find the request's `Exchange`
# The ASGI scope key of the `time.perf_counter()` at which the protocol read the request's first bytes (the
# access log's latency counts from there: the wait for the ASGI task to start is the server's too).
ARRIVED = "maas.arrived"
# The scope key of the seconds an infer request waited unread in the kernel's socket buffer (http_limits.py).
UNREAD = "maas.unread_s"


@dataclass(slots=True)
class Exchange:
    """One HTTP request as the REST edge records it; routes fill in what they learn (model, version, outcome).
    `status` and the byte counts are the edge's, except on the infer route, which sends the request id itself
    and sets them (the status before the response starts, so that nothing adds a second id)."""

    request_id: str
    started: float
    content_length: bytes | None = None
    model: str = ""
    version: str = ""
    outcome: str = ""  # empty: derived from the status
    status: int = 0  # no response started yet
    request_bytes: int = 0
    response_bytes: int = 0


def exchange_of(scope: Any) -> Exchange | None:
    exchange: Exchange | None = scope.get(EXCHANGE)
    return exchange


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID when it is short printable ASCII, else a fresh one."""
    for key, value in headers:
        if key == REQUEST_ID:
            if 0 < len(value) <= _MAX_ID and value.isascii() and value.decode("ascii").isprintable():
                return value.decode("ascii")
            break
    return f"{_ID_PREFIX}-{next(_ID_COUNTER):x}"


def log_access(
    protocol: str, rid: str, model: str, version: str, outcome: str, status: int | str, started: float,
    *, key: str = "", request_bytes: int = 0, response_bytes: int = 0,
) -> None:
    """One INFO record: `started` is the request's `time.perf_counter()` at arrival; `key` is the caller's key
    id (never its token); the sizes are the body bytes read and written (gRPC: the messages)."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    message = (
        f"request_id={rid} protocol={protocol} key={key or '-'} model={model or '-'} version={version or '-'} "
        f"outcome={outcome} status={status} latency_ms={(time.perf_counter() - started) * 1e3:.3f} "
        f"request_bytes={request_bytes} response_bytes={response_bytes}"
    )
    direct = _direct
    if direct is not None and access_log.handlers == [direct] and not access_log.filters and not access_log.propagate:
        direct.write_line(message)
    else:
        access_log.handle(logging.LogRecord(access_log.name, logging.INFO, __file__, 0, message, None, None))


# The format fields a line written without a record can fill (anything else takes the record path).
_DIRECT_FIELDS = frozenset({"asctime", "levelname", "name", "message"})


class _BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes into a 1 MiB buffer over stderr's file descriptor; a daemon thread flushes it every `interval`
    seconds and logging's shutdown flushes the rest, so a line is late by at most `interval`."""

    def __init__(self, interval: float) -> None:
        raw = io.FileIO(os.dup(2), "w")
        super().__init__(io.TextIOWrapper(io.BufferedWriter(raw, 1 << 20), encoding="utf-8", errors="replace"))
        self._interval = interval
        self._second = -1  # the second whose date `_date` holds
        self._date = ""
        threading.Thread(target=self._flush_every, name="maas-access-log", daemon=True).start()

    def direct(self) -> bool:
        """Whether `write_line` can produce exactly what the formatter would: a plain `logging.Formatter` in
        %-style whose fields are among `_DIRECT_FIELDS`, with the default date layout, and no filters."""
        fmt = self.formatter
        if type(fmt) is not logging.Formatter or self.filters or fmt.datefmt is not None:
            return False
        if not isinstance(fmt._style, logging.PercentStyle) or type(fmt._style) is not logging.PercentStyle:
            return False
        return set(re.findall(r"%\((\w+)\)", fmt._fmt or "")) <= _DIRECT_FIELDS

    def write_line(self, message: str) -> None:
        """`message` as the formatter would lay out its INFO record on `maas.access`, written to the buffer."""
        now = time.time()
        second = int(now)
        if second != self._second:  # Formatter.formatTime's layout: local time, then ",mmm"
            self._date = time.strftime(logging.Formatter.default_time_format, time.localtime(now))
            self._second = second
        assert self.formatter is not None and self.formatter._fmt is not None
        line = self.formatter._fmt % {"asctime": f"{self._date},{int((now - second) * 1000):03d}",
                                      "levelname": "INFO", "name": access_log.name, "message": message}
        with self.lock:  # type: ignore[union-attr]  # the flushing thread writes the buffer out under it
            try:
                self.stream.write(line + self.terminator)
            except Exception:
                self.handleError(logging.LogRecord(access_log.name, logging.INFO, __file__, 0, message, None, None))

    def emit(self, record: logging.LogRecord) -> None:  # StreamHandler.emit without the flush per line
        try:
            self.stream.write(self.format(record) + self.terminator)
        except Exception:
            self.handleError(record)

    def _flush_every(self) -> None:
        while True:
            time.sleep(self._interval)
            self.flush()


def buffer_access_log(fmt: str, interval: float = 0.2) -> None:
    """For `maas serve`: access lines go to their own buffered stderr handler (other logs stay unbuffered)."""
    global _direct
    handler = _BufferedStderrHandler(interval)
    handler.setFormatter(logging.Formatter(fmt))
    access_log.addHandler(handler)
    access_log.propagate = False
    _direct = handler if handler.direct() else None


_direct: _BufferedStderrHandler | None = None  # the handler `log_access` writes to without a record
