"""A model's traffic split: arms (version, weight) summing to 100, an optional shadow and sticky header.

Parsing here checks the shape of a split only; whether its versions exist and match is the service's job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from maas.errors import InvalidArgument

# An HTTP header name (RFC 9110 token); kept lower case, as HTTP/2 and gRPC metadata carry it.
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$")


@dataclass(frozen=True)
class Arm:
    version: int
    weight: int


@dataclass(frozen=True)
class Shadow:
    version: int
    fraction: float


@dataclass(frozen=True)
class TrafficSplit:
    arms: tuple[Arm, ...]
    shadow: Shadow | None = None
    sticky_header: str | None = None

    @property
    def versions(self) -> set[int]:
        """Every version this split sends requests to (arms with weight and the shadow)."""
        out = {a.version for a in self.arms if a.weight > 0}
        if self.shadow is not None:
            out.add(self.shadow.version)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "arms": [{"version": a.version, "weight": a.weight} for a in self.arms],
            "shadow": None if self.shadow is None else
            {"version": self.shadow.version, "fraction": self.shadow.fraction},
            "sticky_header": self.sticky_header,
        }

    @classmethod
    def from_dict(cls, doc: Any) -> TrafficSplit:
        """Parse and check a split as the API carries it; InvalidArgument says what is wrong."""
        if not isinstance(doc, dict):
            raise InvalidArgument("a traffic split must be a JSON object")
        unknown = set(doc) - {"arms", "shadow", "sticky_header"}
        if unknown:
            raise InvalidArgument(f"unknown field(s) in traffic split: {', '.join(sorted(unknown))}")
        raw_arms = doc.get("arms")
        if not isinstance(raw_arms, list) or not raw_arms:
            raise InvalidArgument("'arms' must be a non-empty list of {version, weight}")
        arms = tuple(_arm(a) for a in raw_arms)
        shadow = _shadow(doc["shadow"]) if doc.get("shadow") is not None else None
        sticky = doc.get("sticky_header")
        if sticky is not None and (not isinstance(sticky, str) or not _HEADER.match(sticky)):
            raise InvalidArgument("'sticky_header' must be an HTTP header name")
        return cls.checked(arms, shadow, sticky.lower() if sticky else None)

    @classmethod
    def checked(cls, arms: tuple[Arm, ...], shadow: Shadow | None = None,
                sticky_header: str | None = None) -> TrafficSplit:
        if any(a.weight < 0 for a in arms):
            raise InvalidArgument("weights cannot be negative")
        total = sum(a.weight for a in arms)
        if total != 100:
            raise InvalidArgument(f"weights must sum to 100 (they sum to {total})")
        numbers = [a.version for a in arms]
        if len(set(numbers)) != len(numbers):
            raise InvalidArgument("each version may appear in only one arm")
        if shadow is not None and not 0 < shadow.fraction <= 1:
            raise InvalidArgument(f"shadow fraction must be in (0, 1] (got {shadow.fraction})")
        return cls(arms, shadow, sticky_header)


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{what} must be an integer")
    return value


def _arm(doc: Any) -> Arm:
    if not isinstance(doc, dict) or set(doc) != {"version", "weight"}:
        raise InvalidArgument("each arm must be {\"version\": N, \"weight\": W}")
    version = _int(doc["version"], "an arm's version")
    if version < 1:
        raise InvalidArgument("versions are numbered from 1")
    return Arm(version, _int(doc["weight"], "an arm's weight"))


def _shadow(doc: Any) -> Shadow:
    if not isinstance(doc, dict) or set(doc) != {"version", "fraction"}:
        raise InvalidArgument("'shadow' must be {\"version\": N, \"fraction\": F}")
    version = _int(doc["version"], "the shadow's version")
    fraction = doc["fraction"]
    if isinstance(fraction, bool) or not isinstance(fraction, int | float):
        raise InvalidArgument("the shadow's fraction must be a number")
    if version < 1:
        raise InvalidArgument("versions are numbered from 1")
    return Shadow(version, float(fraction))


def parse_arm_text(text: str) -> Arm:
    """`VERSION=WEIGHT` as the CLI takes it (e.g. `2=10`)."""
    version, sep, weight = text.partition("=")
    try:
        if not sep:
            raise ValueError
        return Arm(int(version), int(weight))
    except ValueError:
        raise InvalidArgument(f"invalid arm {text[:40]!r}: expected VERSION=WEIGHT (e.g. 2=10)") from None


def parse_shadow_text(text: str) -> Shadow:
    """`VERSION@FRACTION` as the CLI takes it (e.g. `3@0.25`)."""
    version, sep, fraction = text.partition("@")
    try:
        if not sep:
            raise ValueError
        return Shadow(int(version), float(fraction))
    except ValueError:
        raise InvalidArgument(f"invalid shadow {text[:40]!r}: expected VERSION@FRACTION (e.g. 3@0.25)") from None
