"""Rollouts as a state machine: what a rollout is, its thresholds, and the next state after a verdict.

As in Argo Rollouts' AnalysisRun, every measurement is a recorded result with a verdict (successful, failed,
inconclusive); the state follows from the results and the limits: a pass moves to the next step (the last
one promotes), a failure rolls back at once, too many inconclusive results in a row pause for a person.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from maas.errors import InvalidArgument


class RolloutState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"

    @property
    def active(self) -> bool:
        return self in (RolloutState.RUNNING, RolloutState.PAUSED)


class Verdict(StrEnum):
    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Thresholds:
    """How far the candidate may fall behind the stable arm measured over the same interval."""

    max_error_rate: float = 0.05  # candidate failure rate minus stable's
    max_p99_ratio: float = 1.5  # candidate p99 / stable p99 …
    min_p99_delta_ms: float = 5.0  # … unless they differ by less than this (sub-millisecond noise)
    min_agreement: float = 0.95  # share of mirrored inputs where both answer the same
    max_psi: float = 0.25  # population stability index of the predicted classes (0.25: a major shift)
    min_requests: int = 20  # per arm (and of mirrored pairs) per interval, else inconclusive
    max_inconclusive: int = 10  # inconclusive results in a row at one step before pausing
    mirror_fraction: float = 0.2  # share of the stable arm's requests also sent to the candidate
    regression_tolerance: float = 0.01  # relative error under which two regression answers agree

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Thresholds:
        known = {f.name: f.type for f in fields(cls)}
        unknown = set(doc) - set(known)
        if unknown:
            raise InvalidArgument(f"unknown threshold(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for key, value in doc.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidArgument(f"threshold {key} must be a number")
            values[key] = int(value) if known[key] == "int" else float(value)
        t = cls(**values)
        t.check()
        return t

    def check(self) -> None:
        unit = {"max_error_rate": self.max_error_rate, "min_agreement": self.min_agreement,
                "mirror_fraction": self.mirror_fraction}
        for key, value in unit.items():
            if not 0 <= value <= 1:
                raise InvalidArgument(f"{key} must be between 0 and 1 (got {value})")
        if self.max_p99_ratio < 1:
            raise InvalidArgument(f"max_p99_ratio must be at least 1 (got {self.max_p99_ratio})")
        if self.max_psi < 0 or self.min_p99_delta_ms < 0 or self.regression_tolerance < 0:
            raise InvalidArgument("max_psi, min_p99_delta_ms and regression_tolerance cannot be negative")
        if not 1 <= self.min_requests <= 1_000_000 or not 1 <= self.max_inconclusive <= 100_000:
            raise InvalidArgument("min_requests and max_inconclusive must be positive")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_steps(steps: Any) -> tuple[int, ...]:
    if not isinstance(steps, list | tuple) or not steps or len(steps) > 20:
        raise InvalidArgument("steps must be a list of 1 to 20 percentages, e.g. [10, 50, 100]")
    out: list[int] = []
    for s in steps:
        if isinstance(s, bool) or not isinstance(s, int) or not 1 <= s <= 100:
            raise InvalidArgument(f"each step must be a whole percentage from 1 to 100 (got {s!r})")
        if out and s <= out[-1]:
            raise InvalidArgument("steps must increase")
        out.append(s)
    return tuple(out)


def check_interval(interval_s: Any) -> float:
    if isinstance(interval_s, bool) or not isinstance(interval_s, int | float) or not 0.5 <= interval_s <= 86400:
        raise InvalidArgument("interval_s must be between 0.5 and 86400 seconds")
    return float(interval_s)


@dataclass(frozen=True)
class RolloutEvent:
    at: datetime | None
    step: int
    kind: str  # measurement, started, paused, resumed, aborted, promoted, rolled_back, succeeded, held
    verdict: str | None
    state: str
    figures: dict[str, Any]
    reason: str
    decided_by: str

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["at"] = self.at.isoformat() if self.at else None
        return d


@dataclass(frozen=True)
class Rollout:
    id: int
    model: str
    stable: int
    candidate: int
    steps: tuple[int, ...]
    interval_s: float
    thresholds: Thresholds
    state: RolloutState
    step: int  # index into steps
    reason: str
    generation: int
    step_started_at: datetime | None
    created_at: datetime | None
    created_by: str
    events: tuple[RolloutEvent, ...] = field(default=())

    @property
    def candidate_weight(self) -> int:
        if self.state is RolloutState.SUCCEEDED:
            return 100
        if self.state.active:
            return self.steps[self.step]
        return 0

    def weights(self) -> dict[str, int]:
        return {"stable": 100 - self.candidate_weight, "candidate": self.candidate_weight}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "model": self.model, "state": self.state.value, "stable": self.stable,
            "candidate": self.candidate, "to": self.candidate, "steps": list(self.steps),
            "step": self.step, "current_step": self.steps[min(self.step, len(self.steps) - 1)],
            "weights": self.weights(), "interval_s": self.interval_s, "thresholds": self.thresholds.to_dict(),
            "reason": self.reason, "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by, "decisions": [e.to_dict() for e in self.events],
        }


@dataclass(frozen=True)
class Transition:
    """What a verdict does: the new state and step, and whether traffic moves (None keeps the split)."""

    state: RolloutState
    step: int
    kind: str
    reason: str
    candidate_weight: int | None  # the candidate's new weight; None: unchanged
    promote: bool = False


def after_verdict(r: Rollout, verdict: Verdict, reason: str, inconclusive_in_row: int) -> Transition:
    """The next state of a running rollout after one measurement (`inconclusive_in_row` counts this one)."""
    if verdict is Verdict.FAILED:
        return Transition(RolloutState.ROLLED_BACK, r.step, "rolled_back", reason, 0)
    if verdict is Verdict.INCONCLUSIVE:
        if inconclusive_in_row >= r.thresholds.max_inconclusive:
            why = f"{inconclusive_in_row} inconclusive measurements in a row at step {r.steps[r.step]}%: {reason}"
            return Transition(RolloutState.PAUSED, r.step, "paused", why, None)
        return Transition(RolloutState.RUNNING, r.step, "held", reason, None)
    nxt = r.step + 1
    if nxt >= len(r.steps) or r.steps[nxt] >= 100:
        return Transition(RolloutState.SUCCEEDED, len(r.steps) - 1, "succeeded",
                          f"step {r.steps[r.step]}% passed; production is now version {r.candidate}", 100,
                          promote=True)
    return Transition(RolloutState.RUNNING, nxt, "step",
                      f"step {r.steps[r.step]}% passed; candidate now at {r.steps[nxt]}%", r.steps[nxt])
