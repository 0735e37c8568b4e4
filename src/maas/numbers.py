"""Numbers from the wire, parsed one way everywhere: ASCII digits only (`str.isdigit()` also says yes to '²'
and '٣', which `int()` then refuses or reads differently), a bounded length, and floats that are finite and in
range. Every version, length, count and numeric parameter a client sends goes through here."""

from __future__ import annotations

import math
import re

from maas.errors import InvalidArgument

_DIGITS = re.compile(r"[0-9]{1,18}")
_DIGITS_BYTES = re.compile(rb"[0-9]{1,18}")


def is_ascii_int(text: object) -> bool:
    """Whether `text` (str or bytes) is 1-18 ASCII digits, the only spelling of a wire integer maas reads."""
    if isinstance(text, bytes):
        return _DIGITS_BYTES.fullmatch(text) is not None
    return isinstance(text, str) and _DIGITS.fullmatch(text) is not None


def parse_int(text: object, what: str, *, minimum: int = 0, maximum: int = 2**62) -> int:
    """A non-negative wire integer (str, bytes, or an int that is not a bool) within [minimum, maximum]."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    elif is_ascii_int(text):
        value = int(text)  # type: ignore[call-overload]
    else:
        shown = text.decode("latin-1") if isinstance(text, bytes) else str(text)
        raise InvalidArgument(f"{what} must be an integer written in ASCII digits, got {shown[:40]!r}")
    if not minimum <= value <= maximum:
        raise InvalidArgument(f"{what} must be between {minimum} and {maximum}, got {value}")
    return value


def parse_finite(value: object, what: str, *, minimum: float, maximum: float, above_minimum: bool = False) -> float:
    """A JSON/protobuf number that is finite and within range (`above_minimum`: strictly greater)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{what} must be a number")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgument(f"{what} must be a finite number, got {number}")
    if number < minimum or (above_minimum and number == minimum) or number > maximum:
        low = f"above {minimum:g}" if above_minimum else f"at least {minimum:g}"
        raise InvalidArgument(f"{what} must be {low} and at most {maximum:g}, got {number:g}")
    return number
