"""The access log: one line per request with its id, and `maas serve`'s buffered stderr handler."""

from __future__ import annotations

import logging
import os
import re
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


def test_lines_written_without_a_record_look_as_the_formatter_lays_them_out(
    capfd: pytest.CaptureFixture[str],
) -> None:
    logger = access.access_log
    before = (list(logger.handlers), logger.propagate, logger.level)
    fmt = "%(asctime)s %(levelname)s %(name)s: %(message)s"
    logger.setLevel(logging.INFO)
    try:
        access.buffer_access_log(fmt, interval=3600)
        handler = logger.handlers[-1]
        assert access._direct is handler  # `maas serve`'s format takes the direct way
        access.log_access("rest", "direct-1", "cnn", "2", "ok", 200, time.perf_counter(), key="k1",
                          request_bytes=10, response_bytes=20)
        handler.flush()
        [line] = capfd.readouterr().err.splitlines()
        record = logging.LogRecord("maas.access", logging.INFO, __file__, 0, line.split(": ", 1)[1], None, None)
        expected = logging.Formatter(fmt).format(record)
        assert line.split(" ", 2)[2] == expected.split(" ", 2)[2]  # all but the time, which moved on
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}", " ".join(line.split(" ", 2)[:2]))
        assert "request_id=direct-1 protocol=rest key=k1 model=cnn version=2 outcome=ok status=200" in line
        assert line.endswith("request_bytes=10 response_bytes=20")
    finally:
        for h in logger.handlers[len(before[0]):]:
            logger.removeHandler(h)
        logger.propagate, logger.level = before[1], before[2]


def test_a_format_with_other_fields_takes_the_record_way(capfd: pytest.CaptureFixture[str]) -> None:
    logger = access.access_log
    before = (list(logger.handlers), logger.propagate, logger.level)
    logger.setLevel(logging.INFO)
    try:
        access.buffer_access_log("%(levelname)s %(process)d %(message)s", interval=3600)
        assert access._direct is None
        access.log_access("rest", "rec-1", "cnn", "2", "ok", 200, time.perf_counter())
        logger.handlers[-1].flush()
        assert capfd.readouterr().err.startswith(f"INFO {os.getpid()} request_id=rec-1 ")
    finally:
        for h in logger.handlers[len(before[0]):]:
            logger.removeHandler(h)
        logger.propagate, logger.level = before[1], before[2]
