"""API keys in the registry database: created with a token shown once, listed without it, revoked by id."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from maas.errors import FailedPrecondition, InvalidArgument, NotFound
from maas.registry.store import SqlModelStore
from maas.security.rates import Rate
from maas.security.rows import ApiKeyRow
from maas.security.scopes import Scope
from maas.security.tokens import new_token, token_hash

_DURATION = re.compile(r"\s*(\d+)\s*([smhdw])\s*", re.IGNORECASE)
_UNIT = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PATTERN = re.compile(r"[a-z0-9._*?\[\]-]{1,64}")
_KEY_ID = re.compile(r"[0-9a-f]{12}")


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `2w`… from now, or an ISO-8601 date/time."""
    m = _DURATION.fullmatch(str(text))
    now = now or _now()
    if m:
        delta = timedelta(**{_UNIT[m.group(2).lower()]: int(m.group(1))})
        if delta <= timedelta(0) or delta > timedelta(days=3660):
            raise InvalidArgument("an expiry must be in the future and at most 10 years away")
        return now + delta
    try:
        at = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise InvalidArgument(f"invalid expiry {str(text)[:40]!r}: expected e.g. 30d, 12h or an ISO date") from None
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    if at <= now:
        raise InvalidArgument("the expiry is in the past")
    return at


def check_patterns(patterns: list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """Model name globs (`digits*`, `resnet-?`); none means every model."""
    out = tuple(p.strip() for p in (patterns or ()) if p and p.strip())
    for p in out:
        if not _PATTERN.fullmatch(p):
            raise InvalidArgument(f"invalid model pattern {p[:70]!r}: lower-case model name characters and * ? [ ]")
    return out or ("*",)


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise InvalidArgument(f"invalid key id {str(key_id)[:40]!r}")
    return key_id


@dataclass(frozen=True)
class ApiKey:
    """A key as listed: everything but the token, which only `KeyStore.create` returns, once."""

    id: str
    name: str
    scope: Scope
    models: tuple[str, ...] = ("*",)
    rate: Rate | None = None
    created_at: datetime | None = None
    created_by: str = ""
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
    token_sha256: str = field(default="", repr=False, compare=False)

    def allows_model(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, p) for p in self.models)

    @property
    def all_models(self) -> bool:
        return "*" in self.models

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or _now())

    def to_dict(self) -> dict[str, Any]:
        def iso(dt: datetime | None) -> str | None:
            return dt.isoformat() if dt else None

        state = "revoked" if self.revoked_at else "expired" if self.expired() else "active"
        return {
            "id": self.id, "name": self.name, "scope": self.scope.value, "models": list(self.models),
            "rate": str(self.rate) if self.rate else None, "state": state,
            "created_at": iso(self.created_at), "created_by": self.created_by, "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at), "last_used_at": iso(self.last_used_at),
        }


def _key(r: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=r.id, name=r.name, scope=Scope(r.scope), models=tuple(r.models), rate=Rate.parse(r.rate) if r.rate else None,
        created_at=_aware(r.created_at), created_by=r.created_by, expires_at=_aware(r.expires_at),
        revoked_at=_aware(r.revoked_at), last_used_at=_aware(r.last_used_at), token_sha256=r.token_sha256,
    )


class KeyStore:
    def __init__(self, store: SqlModelStore) -> None:
        self.store = store

    def create(
        self, name: str, scope: Scope | str, *, models: list[str] | tuple[str, ...] | None = None,
        expires: str | datetime | None = None, rate: str | None = None, created_by: str = "",
    ) -> tuple[ApiKey, str]:
        """A new key and its token (shown to the caller once; only its hash is kept)."""
        name = str(name).strip()
        if not 1 <= len(name) <= 64 or not name.isprintable():
            raise InvalidArgument("a key name is 1 to 64 printable characters")
        scope = scope if isinstance(scope, Scope) else Scope.parse(scope)
        expires_at = expires if isinstance(expires, datetime) else parse_expiry(expires) if expires else None
        parsed_rate = Rate.parse(rate) if rate else None
        key_id, token = new_token()
        row = ApiKeyRow(
            id=key_id, name=name, token_sha256=token_hash(token), scope=scope.value,
            models=list(check_patterns(models)), rate=str(parsed_rate) if parsed_rate else None,
            created_at=_now(), created_by=created_by[:128], expires_at=expires_at,
        )
        with self.store.writing(bump=False) as s:
            s.add(row)
        return self.get(key_id), token

    def get(self, key_id: str) -> ApiKey:
        with self.store.reading() as s:
            row = s.get(ApiKeyRow, check_key_id(key_id))
            if row is None:
                raise NotFound(f"key {key_id} not found")
            return _key(row)

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        q = select(ApiKeyRow).order_by(ApiKeyRow.created_at)
        if not include_revoked:
            q = q.where(ApiKeyRow.revoked_at.is_(None))
        with self.store.reading() as s:
            return [_key(r) for r in s.scalars(q)]

    def revoke(self, key_id: str) -> ApiKey:
        with self.store.writing(bump=False) as s:
            row = s.get(ApiKeyRow, check_key_id(key_id))
            if row is None:
                raise NotFound(f"key {key_id} not found")
            if row.revoked_at is not None:
                raise FailedPrecondition(f"key {key_id} is already revoked")
            row.revoked_at = _now()
        return self.get(key_id)

    def record_last_used(self, used: dict[str, datetime]) -> None:
        """Write the newest use of each key (batched by the caller, so a busy key costs one write a minute)."""
        if not used:
            return
        with self.store.writing(bump=False) as s:
            for key_id, at in used.items():
                s.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=at))
