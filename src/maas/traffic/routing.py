"""Choosing an arm for one request: weighted random, or weighted rendezvous hashing of a sticky key.

Rendezvous (highest random weight) hashing with the logarithmic score `-w / ln(h)` gives each arm a share of
keys proportional to its weight, and when weights change only keys whose winning arm changed move: a key
leaves an arm only if that arm lost weight, and joins one only if it gained (no ring, no table to rebuild).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

from maas.traffic.rollout import Rollout
from maas.traffic.split import TrafficSplit

_SCALE = float(1 << 64)


def _unit(key: bytes, version: int) -> float:
    """A stable uniform number in (0, 1) for (key, version)."""
    digest = hashlib.blake2b(key, digest_size=8, salt=version.to_bytes(8, "little")).digest()
    return (int.from_bytes(digest, "little") + 0.5) / _SCALE


class ArmChooser:
    """Picks the version serving one request of a split; one per split, cheap to call on the hot path."""

    def __init__(self, split: TrafficSplit, rng: random.Random | None = None) -> None:
        self.split = split
        self._arms = [(a.version, a.weight) for a in split.arms if a.weight > 0]
        self._rng = rng or random.Random()
        total = 0
        self._cumulative: list[tuple[int, int]] = []
        for version, weight in self._arms:
            total += weight
            self._cumulative.append((total, version))

    def choose(self, key: str | None = None) -> int:
        if len(self._arms) == 1:
            return self._arms[0][0]
        if key is not None:
            return sticky_arm(self._arms, key)
        point = self._rng.random() * 100
        for bound, version in self._cumulative:
            if point < bound:
                return version
        return self._cumulative[-1][1]

    def mirror(self, fraction: float) -> bool:
        """Whether this request is also sent to a shadow (or mirrored to a rollout's candidate)."""
        return fraction >= 1 or self._rng.random() < fraction


def sticky_arm(arms: list[tuple[int, int]], key: str) -> int:
    """The arm of `key` among (version, weight) pairs: the same key always gets the same arm."""
    raw = key.encode("utf-8", "surrogatepass")
    best, best_score = arms[0][0], -math.inf
    for version, weight in arms:
        score = -weight / math.log(_unit(raw, version))
        if score > best_score:
            best, best_score = version, score
    return best


@dataclass(frozen=True)
class ActiveSplit:
    """A split as a server applies it: the stored split, its chooser and the rollout that owns it, if any."""

    split: TrafficSplit
    chooser: ArmChooser
    rollout: Rollout | None = None
