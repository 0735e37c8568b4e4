"""The access log: one line per request with its id, and `maas serve`'s buffered stderr handler."""

from __future__ import annotations

import logging
import time

import pytest

from maas.server import access


def test_request_id_is_the_clients_when_printable_else_generated() -> None:
    assert access.request_id([(b"x-request-id", b"trace-1")]) == "trace-1"
    for bad in (b"", b"\x01\x02", b"x" * 200, "é".encode()):
        generated = access.request_id([(b"x-request-id", bad)])
        assert generated != bad.decode("utf-8", "replace") and generated.isascii()
    assert access.request_id([]) != access.request_id([])


def test_buffered_handler_writes_whole_lines_on_flush(capfd: pytest.CaptureFixture[str]) -> None:
    logger = access.access_log
    before = (list(logger.handlers), logger.propagate, logger.level)
    logger.setLevel(logging.INFO)
    try:
        access.buffer_access_log("%(levelname)s %(name)s: %(message)s", interval=3600)
        handler = logger.handlers[-1]
        for i in range(3):
            access.log_access("rest", f"r{i}", "cnn", "2", "ok", 200, time.perf_counter())
        assert "request_id=r0" not in capfd.readouterr().err  # still in the buffer
        handler.flush()
        lines = capfd.readouterr().err.splitlines()
        assert lines[0].startswith("INFO maas.access: request_id=r0 protocol=rest key=- model=cnn version=2 outcome=ok")
        assert len(lines) == 3 and all("latency_ms=" in line for line in lines)
    finally:
        for h in logger.handlers[len(before[0]):]:
            logger.removeHandler(h)
        logger.propagate, logger.level = before[1], before[2]
