"""The audit log: one row per control-plane change (who, what, when, from where, outcome), newest first."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from maas.registry.store import SqlModelStore
from maas.security.rows import AuditRow


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str = ""
    source: str = ""
    outcome: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "target": self.target, "source": self.source, "outcome": self.outcome, "details": self.details}


def _entry(r: AuditRow) -> AuditEntry:
    at = r.at if r.at.tzinfo else r.at.replace(tzinfo=UTC)
    return AuditEntry(r.id, at, r.actor, r.action, r.target, r.source, r.outcome, dict(r.details or {}))


class AuditLog:
    def __init__(self, store: SqlModelStore) -> None:
        self.store = store

    def record(self, actor: str, action: str, *, target: str = "", source: str = "", outcome: str = "",
               details: dict[str, Any] | None = None) -> None:
        row = AuditRow(at=datetime.now(UTC), actor=actor[:128], action=action[:255], target=target[:2000],
                       source=source[:128], outcome=outcome[:32], details=details or {})
        with self.store.writing(bump=False) as s:
            s.add(row)

    def list(self, limit: int = 100, actor: str | None = None) -> list[AuditEntry]:
        q = select(AuditRow).order_by(AuditRow.id.desc()).limit(max(1, min(int(limit), 10_000)))
        if actor:
            q = q.where(AuditRow.actor == actor)
        with self.store.reading() as s:
            return [_entry(r) for r in s.scalars(q)]
