"""JSON from outside, parsed with a depth limit: the stdlib parser recurses once per nesting level, so 30,000
`[` end in a RecursionError (a 500) instead of a clear refusal. The depth is measured before parsing."""

from __future__ import annotations

import json
import re
from typing import Any

from maas.errors import InvalidArgument

MAX_DEPTH = 64  # request bodies and form fields: maas's own documents nest a handful of levels
MAX_FILE_DEPTH = 512  # configs inside model files (a Keras config nests a few dozen levels at most)
# Strings are skipped whole (a bracket inside one is text); what is left that matters is brackets.
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]')
_TOKENS_STR = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def depth(raw: str | bytes) -> int:
    """The deepest nesting of arrays and objects in `raw` (valid JSON or not)."""
    pattern: Any = _TOKENS if isinstance(raw, bytes) else _TOKENS_STR
    deepest = level = 0
    for match in pattern.finditer(raw):
        token = match.group()
        if token in (b"[", b"{", "[", "{"):
            level += 1
            deepest = max(deepest, level)
        elif token in (b"]", b"}", "]", "}"):
            level -= 1
    return deepest


def check_depth(raw: str | bytes, what: str, max_depth: int = MAX_DEPTH) -> None:
    if depth(raw) > max_depth:
        raise InvalidArgument(f"{what} nests deeper than {max_depth} levels")


def loads(raw: str | bytes, what: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON, or InvalidArgument naming `what` (too deep, not UTF-8, not JSON)."""
    check_depth(raw, what, max_depth)
    try:
        return json.loads(raw)
    except RecursionError:  # depth() counted fewer levels than the parser met: refuse all the same
        raise InvalidArgument(f"{what} nests too deeply") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"{what} is not valid UTF-8") from None
    except ValueError as exc:
        raise InvalidArgument(f"{what} is not valid JSON: {str(exc)[:120]}") from None
