"""`maas.numbers` and `maas.json_limits`: the one way numbers and JSON from the wire are read."""

from __future__ import annotations

import math

import pytest

from maas import json_limits
from maas.errors import InvalidArgument
from maas.numbers import is_ascii_int, parse_finite, parse_int
from maas.types import parse_version


@pytest.mark.parametrize("text", ["²", "٣", "１", "1²", " 1", "1\n", "", "-1", "+1", "1.0", "1e3", "0x10", "9" * 19])
def test_only_ascii_digits_are_integers(text: str) -> None:
    assert not is_ascii_int(text) and not is_ascii_int(text.encode())
    with pytest.raises(InvalidArgument):
        parse_int(text, "n")


def test_integers_in_range() -> None:
    assert parse_int("42", "n") == 42 and parse_int(b"7", "n") == 7 and parse_int(3, "n") == 3
    with pytest.raises(InvalidArgument, match="between"):
        parse_int("11", "n", maximum=10)
    with pytest.raises(InvalidArgument):
        parse_int(True, "n")
    with pytest.raises(InvalidArgument):
        parse_version("²")


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 0.0, -1.0, 1e300, "5", None, True])
def test_finite_numbers_in_range(value: object) -> None:
    with pytest.raises(InvalidArgument):
        parse_finite(value, "timeout", minimum=0, maximum=1e9, above_minimum=True)


def test_depth_is_counted_outside_strings() -> None:
    assert json_limits.depth('{"a": [1, {"b": "[[[[{{{{"}]}') == 3
    assert json_limits.depth(b"[ " * 1000) == 1000
    assert json_limits.loads('{"a": [1]}', "x") == {"a": [1]}
    for bad, fragment in (("[" * 30_000, "nests deeper"), ("[1,", "not valid JSON"), (b"\xff", "UTF-8")):
        with pytest.raises(InvalidArgument, match=fragment):
            json_limits.loads(bad, "x")
