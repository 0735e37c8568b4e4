"""Per-key rate limits: `50/s`, `600/m`, `10000/h` parsed into a token bucket (burst = one period's count)."""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass

from maas.errors import InvalidArgument

_RATE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*", re.IGNORECASE)
_PERIOD_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rate:
    count: float
    period_s: float

    @property
    def per_second(self) -> float:
        return self.count / self.period_s

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.period_s]
        return f"{self.count:g}/{unit}"

    @classmethod
    def parse(cls, text: str) -> Rate:
        m = _RATE.fullmatch(str(text))
        if m is None:
            raise InvalidArgument(f"invalid rate {str(text)[:40]!r}: expected COUNT/s, COUNT/m or COUNT/h")
        count = float(m.group(1))
        if not 0 < count <= 1e9:
            raise InvalidArgument("a rate must be above 0 and at most 1e9 per period")
        return cls(count, _PERIOD_S[m.group(2)[0].lower()])


class TokenBucket:
    """Thread-safe: the gRPC and REST doors may share one key's bucket."""

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate.count)
        self.tokens = self.capacity
        self._now = time.monotonic
        self.updated = self._now()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token; returns 0 when granted, else the seconds until one will be there."""
        with self._lock:
            now = self._now()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate.per_second)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate.per_second


def retry_after_header(seconds: float) -> str:
    """HTTP's Retry-After takes whole seconds; round up so a client that obeys it is let in."""
    return str(max(1, math.ceil(seconds)))
