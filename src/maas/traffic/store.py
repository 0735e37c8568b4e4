"""TrafficStore: splits, rollouts and their events in the registry database. A rollout's decision, the split
it implies and (on success) the `production` alias change in one transaction, so traffic is never left
split in a state nobody recorded; a decision is written only if the rollout has not moved since it was read
(its `generation`), so two server processes never both decide one step."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from maas.errors import AlreadyExists, NotFound
from maas.registry.orm import AliasRow, ModelRow
from maas.registry.store import SqlModelStore
from maas.traffic.orm import RolloutEventRow, RolloutRow, SplitRow
from maas.traffic.rollout import Rollout, RolloutEvent, RolloutState, Thresholds
from maas.traffic.split import Arm, Shadow, TrafficSplit

ACTIVE = (RolloutState.RUNNING.value, RolloutState.PAUSED.value)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _model_id(s: Session, name: str, lock: bool = False) -> int:
    q = select(ModelRow.id).where(ModelRow.name == name)
    if lock:
        q = q.with_for_update()
    found = s.scalar(q)
    if found is None:
        raise NotFound(f"model {name!r} not found")
    return int(found)


def _split(row: SplitRow) -> TrafficSplit:
    shadow = Shadow(int(row.shadow["version"]), float(row.shadow["fraction"])) if row.shadow else None
    return TrafficSplit(tuple(Arm(int(a["version"]), int(a["weight"])) for a in row.arms), shadow, row.sticky_header)


def _event(row: RolloutEventRow) -> RolloutEvent:
    return RolloutEvent(_aware(row.at), row.step, row.kind, row.verdict, row.state, dict(row.figures or {}),
                        row.reason, row.decided_by)


def _rollout(row: RolloutRow, model: str, events: list[RolloutEventRow] | None = None) -> Rollout:
    return Rollout(
        id=row.id, model=model, stable=row.stable, candidate=row.candidate, steps=tuple(row.steps),
        interval_s=row.interval_s, thresholds=Thresholds(**row.thresholds), state=RolloutState(row.state),
        step=row.step, reason=row.reason, generation=row.generation,
        step_started_at=_aware(row.step_started_at), created_at=_aware(row.created_at),
        created_by=row.created_by, events=tuple(_event(e) for e in events or ()),
    )


class TrafficStore:
    def __init__(self, store: SqlModelStore) -> None:
        self.store = store

    # --- splits -----------------------------------------------------------------------------------------
    def get_split(self, name: str) -> TrafficSplit | None:
        with self.store.reading() as s:
            row = s.get(SplitRow, _model_id(s, name))
            return _split(row) if row is not None else None

    def all_splits(self) -> dict[str, TrafficSplit]:
        with self.store.reading() as s:
            rows = s.execute(select(ModelRow.name, SplitRow).join(SplitRow, SplitRow.model_id == ModelRow.id))
            return {name: _split(row) for name, row in rows}

    def put_split(self, name: str, split: TrafficSplit | None, by: str) -> None:
        """Store (or with None remove) the split; refused while a rollout owns the model's traffic."""
        with self.store.writing() as s:
            model_id = _model_id(s, name, lock=True)
            active = self._active(s, model_id)
            if active is not None:
                raise AlreadyExists(f"model {name!r} has a {active.state} rollout to version {active.candidate}; "
                                    "abort or promote it before changing its traffic")
            _write_split(s, model_id, split, by, None)

    # --- rollouts ---------------------------------------------------------------------------------------
    def _active(self, s: Session, model_id: int) -> RolloutRow | None:
        return s.scalar(select(RolloutRow).where(RolloutRow.model_id == model_id, RolloutRow.state.in_(ACTIVE)))

    def create_rollout(self, name: str, *, stable: int, candidate: int, steps: tuple[int, ...], interval_s: float,
                       thresholds: Thresholds, by: str, pin_production: bool) -> Rollout:
        with self.store.writing() as s:
            model_id = _model_id(s, name, lock=True)
            active = self._active(s, model_id)
            if active is not None:
                raise AlreadyExists(f"model {name!r} already has a {active.state} rollout "
                                    f"(to version {active.candidate})")
            if s.get(SplitRow, model_id) is not None:
                raise AlreadyExists(f"model {name!r} has a traffic split; clear it before starting a rollout")
            now = datetime.now(UTC)
            row = RolloutRow(model_id=model_id, stable=stable, candidate=candidate, steps=list(steps),
                             interval_s=interval_s, thresholds=thresholds.to_dict(),
                             state=RolloutState.RUNNING.value, step=0, reason="started", generation=0,
                             step_started_at=now, created_at=now, updated_at=now, created_by=by)
            s.add(row)
            s.flush()
            if pin_production:  # the stable arm must stay the default when the split is cleared
                s.add(AliasRow(model_id=model_id, alias="production", version=stable))
            _write_split(s, model_id, _rollout_split(stable, candidate, steps[0]), by, row.id)
            reason = f"rollout to version {candidate} started at {steps[0]}% (stable {stable})"
            _add_event(s, row, "started", None, {}, reason, by)
            row.reason = reason
        return self.get_rollout(name)

    def get_rollout(self, name: str) -> Rollout:
        """The model's newest rollout with its events; NotFound if it never had one."""
        with self.store.reading() as s:
            model_id = _model_id(s, name)
            row = s.scalar(select(RolloutRow).where(RolloutRow.model_id == model_id).order_by(RolloutRow.id.desc()))
            if row is None:
                raise NotFound(f"model {name!r} has no rollout")
            events = list(s.scalars(select(RolloutEventRow).where(RolloutEventRow.rollout_id == row.id)
                                    .order_by(RolloutEventRow.id)))
            return _rollout(row, name, events)

    def active_rollouts(self) -> list[Rollout]:
        with self.store.reading() as s:
            rows = s.execute(select(ModelRow.name, RolloutRow).join(RolloutRow, RolloutRow.model_id == ModelRow.id)
                             .where(RolloutRow.state.in_(ACTIVE)))
            return [_rollout(row, name) for name, row in rows]

    def inconclusive_in_row(self, rollout_id: int, step: int) -> int:
        """Inconclusive measurements at `step` since the last other measurement or command."""
        with self.store.reading() as s:
            kinds = s.scalars(select(RolloutEventRow.kind).where(RolloutEventRow.rollout_id == rollout_id)
                              .order_by(RolloutEventRow.id.desc()).limit(100_000))
            count = 0
            for kind in kinds:
                if kind != "held":
                    break
                count += 1
            return count

    def transition(self, rollout_id: int, generation: int, *, state: RolloutState, step: int, kind: str,
                   verdict: str | None, figures: dict[str, Any], reason: str, by: str,
                   candidate_weight: int | None, promote: bool = False,
                   allowed_from: tuple[str, ...] = ACTIVE) -> bool:
        """Record one decision and apply it; False (nothing written) if the rollout moved meanwhile. Servers
        follow (the registry's revision moves) when the traffic or the state changes, not on a "held"."""
        with self.store.writing(bump=False) as s:
            row = s.get(RolloutRow, rollout_id, with_for_update=True)
            if row is None or row.generation != generation or row.state not in allowed_from:
                return False
            now = datetime.now(UTC)
            moved = step != row.step or state.value != row.state
            if candidate_weight is not None or promote or state.value != row.state:
                self.store.changed(s)
            row.state, row.step, row.reason, row.updated_at = state.value, step, reason, now
            row.generation += 1
            if moved:
                row.step_started_at = now
            if promote:
                alias = s.scalar(select(AliasRow).where(AliasRow.model_id == row.model_id,
                                                        AliasRow.alias == "production"))
                if alias is None:
                    s.add(AliasRow(model_id=row.model_id, alias="production", version=row.candidate))
                else:
                    alias.version = row.candidate
                _write_split(s, row.model_id, None, by, None)
            elif candidate_weight is not None:
                split = None if candidate_weight == 0 else _rollout_split(row.stable, row.candidate, candidate_weight)
                _write_split(s, row.model_id, split, by, row.id if split else None)
            _add_event(s, row, kind, verdict, figures, reason, by)
            return True


def _rollout_split(stable: int, candidate: int, weight: int) -> TrafficSplit:
    return TrafficSplit((Arm(stable, 100 - weight), Arm(candidate, weight)))


def _write_split(s: Session, model_id: int, split: TrafficSplit | None, by: str, rollout_id: int | None) -> None:
    if split is None:
        s.execute(delete(SplitRow).where(SplitRow.model_id == model_id))
        return
    doc = split.to_dict()
    row = s.get(SplitRow, model_id)
    if row is None:
        row = SplitRow(model_id=model_id)
        s.add(row)
    row.arms, row.shadow, row.sticky_header = doc["arms"], doc["shadow"], split.sticky_header
    row.rollout_id, row.updated_at, row.updated_by = rollout_id, datetime.now(UTC), by


def _add_event(s: Session, row: RolloutRow, kind: str, verdict: str | None, figures: dict[str, Any],
               reason: str, by: str) -> None:
    s.add(RolloutEventRow(rollout_id=row.id, at=datetime.now(UTC), step=row.step, kind=kind, verdict=verdict,
                          state=row.state, figures=figures, reason=reason, decided_by=by))
