"""TrafficService: the verbs behind the API, CLI and SDK — set/show/clear a split, start and steer a rollout.

Every check happens before anything is written (unknown or archived versions, signatures that differ, a
second rollout), so a refused request changes nothing.
"""

from __future__ import annotations

from typing import Any

from maas.errors import FailedPrecondition, InvalidArgument, NotFound
from maas.registry import ModelVersion, Registry, State
from maas.traffic.rollout import Rollout, RolloutState, Thresholds, check_interval, check_steps
from maas.traffic.split import TrafficSplit
from maas.traffic.store import ACTIVE, TrafficStore
from maas.types import ModelRef, check_name

DEFAULT_STEPS = (10, 50, 100)
DEFAULT_INTERVAL_S = 30.0


class TrafficService:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.store = TrafficStore(registry.sql_store())

    @property
    def user(self) -> str:
        return self.registry.settings.user

    # --- splits -----------------------------------------------------------------------------------------
    def get_split(self, name: str) -> TrafficSplit | None:
        return self.store.get_split(check_name(name))

    def describe(self, name: str) -> dict[str, Any]:
        """The split as the API shows it; with no split, the one version bare requests go to."""
        split = self.get_split(name)
        if split is not None:
            return {"model": name, **split.to_dict(), "default": False}
        version = self.registry.get(name).version
        return {"model": name, "arms": [{"version": version, "weight": 100}], "shadow": None,
                "sticky_header": None, "default": True}

    def set_split(self, name: str, split: TrafficSplit, by: str | None = None) -> TrafficSplit:
        check_name(name)
        arms = [self._ready(name, a.version) for a in split.arms]
        shadow = self._ready(name, split.shadow.version) if split.shadow else None
        for other in arms[1:] + ([shadow] if shadow else []):
            check_same_signature(arms[0], other)
        self.store.put_split(name, split, by or self.user)
        return split

    def clear_split(self, name: str, by: str | None = None) -> None:
        self.registry.get_model(check_name(name))
        self.store.put_split(name, None, by or self.user)

    def _ready(self, name: str, number: int) -> ModelVersion:
        try:
            version = self.registry.get(ModelRef(name, version=number))
        except NotFound:
            self.registry.get_model(name)  # an unknown model says so
            raise InvalidArgument(f"version {name}:{number} does not exist") from None
        if version.state != State.READY:
            raise InvalidArgument(f"version {name}:{number} is {version.state}; only ready versions take traffic")
        return version

    # --- rollouts ---------------------------------------------------------------------------------------
    def start_rollout(self, name: str, to: int, *, steps: Any = DEFAULT_STEPS,
                      interval_s: Any = DEFAULT_INTERVAL_S, thresholds: dict[str, Any] | None = None,
                      by: str | None = None) -> Rollout:
        check_name(name)
        if isinstance(to, bool) or not isinstance(to, int):
            raise InvalidArgument("'to' must be a version number")
        checked_steps = check_steps(list(steps))
        interval = check_interval(interval_s)
        limits = Thresholds.from_dict(thresholds or {})
        stable = self.registry.get(name)  # @production, else the newest ready version
        candidate = self._ready(name, to)
        if candidate.version == stable.version:
            raise InvalidArgument(f"version {to} already serves {name!r}; roll out another version")
        check_same_signature(stable, candidate)
        pin = "production" not in stable.aliases
        return self.store.create_rollout(name, stable=stable.version, candidate=candidate.version,
                                         steps=checked_steps, interval_s=interval, thresholds=limits,
                                         by=by or self.user, pin_production=pin)

    def get_rollout(self, name: str) -> Rollout:
        return self.store.get_rollout(check_name(name))

    def pause(self, name: str, by: str | None = None) -> Rollout:
        r = self._active(name, RolloutState.RUNNING)
        return self._command(r, RolloutState.PAUSED, "paused", f"paused at {r.steps[r.step]}% by {by or self.user}",
                             by, None)

    def resume(self, name: str, by: str | None = None) -> Rollout:
        r = self._active(name, RolloutState.PAUSED)
        return self._command(r, RolloutState.RUNNING, "resumed", f"resumed at {r.steps[r.step]}% by {by or self.user}",
                             by, None)

    def abort(self, name: str, by: str | None = None) -> Rollout:
        r = self._active(name)
        return self._command(r, RolloutState.ABORTED, "aborted",
                             f"aborted by {by or self.user}; all traffic back to version {r.stable}", by, 0)

    def promote(self, name: str, by: str | None = None) -> Rollout:
        r = self._active(name)
        return self._command(r, RolloutState.SUCCEEDED, "promoted",
                             f"promoted by {by or self.user}; production is now version {r.candidate}", by, 100,
                             promote=True)

    def _active(self, name: str, want: RolloutState | None = None) -> Rollout:
        r = self.get_rollout(name)
        if not r.state.active or (want is not None and r.state is not want):
            wanted = want.value if want else "running or paused"
            raise FailedPrecondition(f"the rollout of {name!r} is {r.state.value}, not {wanted}")
        return r

    def _command(self, r: Rollout, state: RolloutState, kind: str, reason: str, by: str | None,
                 weight: int | None, promote: bool = False) -> Rollout:
        ok = self.store.transition(r.id, r.generation, state=state, step=r.step, kind=kind, verdict=None,
                                   figures={}, reason=reason, by=by or self.user, candidate_weight=weight,
                                   promote=promote, allowed_from=ACTIVE)
        if not ok:
            raise FailedPrecondition(f"the rollout of {r.model!r} changed meanwhile; look at it and try again")
        return self.get_rollout(r.model)


def check_same_signature(stable: ModelVersion, other: ModelVersion) -> None:
    """Versions sharing traffic must take the same inputs (names, datatypes, shapes)."""
    a, b = stable.signature, other.signature
    if a is None or b is None:
        return  # nothing recorded to compare; the server still validates every request per version
    mine = [(s.name, s.datatype, s.shape) for s in a.inputs]
    theirs = [(s.name, s.datatype, s.shape) for s in b.inputs]
    if mine != theirs:
        raise InvalidArgument(
            f"the signature of {other.ref} differs from {stable.ref}: inputs "
            f"{_show(theirs)} against {_show(mine)}"
        )


def _show(specs: list[tuple[str, str, tuple[int, ...]]]) -> str:
    return ", ".join(f"{n} {d} {list(s)}" for n, d, s in specs) or "(none)"
