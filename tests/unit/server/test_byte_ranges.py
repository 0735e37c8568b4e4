"""Range on artifact downloads: single byte ranges, suffixes, open ends, and what is ignored or refused."""

from __future__ import annotations

import pytest

from maas.server.byte_ranges import ranged_response, single_range


@pytest.mark.parametrize(("header", "expected"), [
    ("bytes=0-9", (0, 9)), ("bytes=10-", (10, 99)), ("bytes=-5", (95, 99)), ("bytes=90-500", (90, 99)),
    ("bytes=-500", (0, 99)), ("bytes=100-", "unsatisfiable"), ("bytes=-0", "unsatisfiable"),
    (None, None), ("items=0-9", None), ("bytes=0-1,5-6", None), ("bytes=²-9", None), ("bytes=9-3", None),
    ("bytes=abc", None),
])
def test_single_range(header: str | None, expected: object) -> None:
    assert single_range(header, 100) == expected


def test_responses_say_ranges_are_accepted_and_cut_the_body() -> None:
    data = bytes(range(100))
    whole = ranged_response(data, None, {})
    assert whole.status_code == 200 and whole.body == data and whole.headers["accept-ranges"] == "bytes"
    part = ranged_response(data, "bytes=10-19", {})
    assert part.status_code == 206 and part.body == data[10:20]
    assert part.headers["content-range"] == "bytes 10-19/100"
    refused = ranged_response(data, "bytes=200-", {})
    assert refused.status_code == 416 and refused.headers["content-range"] == "bytes */100"
