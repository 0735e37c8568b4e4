"""Who asked for what: request ids and the access log, one INFO line per inference on `maas.access`, shared by
REST and gRPC.

A line per request is the busiest log there is. `log_access` builds the record itself (no caller lookup, no
%-formatting at emit), and `maas serve` sends these records to a block-buffered copy of stderr flushed every
0.2 s (`buffer_access_log`) instead of one write system call per line: 16 µs a line became 7 in a
micro-benchmark, where the profile had put the access log at a fifth of the infer route's CPU.
"""

from __future__ import annotations

import io
import itertools
import logging
import os
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


@dataclass
class Exchange:
    """One HTTP request as the REST edge records it; routes fill in what they learn (model, version, outcome)."""

    request_id: str
    started: float
    content_length: bytes | None = None
    model: str = ""
    version: str = ""
    outcome: str = ""  # empty: derived from the status


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
    access_log.handle(logging.LogRecord(access_log.name, logging.INFO, __file__, 0, message, None, None))


class _BufferedStderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes into a 1 MiB buffer over stderr's file descriptor; a daemon thread flushes it every `interval`
    seconds and logging's shutdown flushes the rest, so a line is late by at most `interval`."""

    def __init__(self, interval: float) -> None:
        raw = io.FileIO(os.dup(2), "w")
        super().__init__(io.TextIOWrapper(io.BufferedWriter(raw, 1 << 20), encoding="utf-8", errors="replace"))
        self._interval = interval
        threading.Thread(target=self._flush_every, name="maas-access-log", daemon=True).start()

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
    handler = _BufferedStderrHandler(interval)
    handler.setFormatter(logging.Formatter(fmt))
    access_log.addHandler(handler)
    access_log.propagate = False
