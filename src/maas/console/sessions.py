"""Browser sessions of the console, kept in the registry's database (migration 0008) so that a restart signs
nobody out and every server process on one registry (Ray ingress replicas too) shares them.

A session is a random id (the cookie). The database holds only the id's SHA-256, the key id, and the API key
the browser signed in with sealed (AES-256-GCM) under a key derived from the session id: neither a database
dump nor a memory dump of another process gives a usable cookie or key. The CSRF token is derived from the
session id too, so it is bound to the session and never stored.

A session carries no rights of its own: each request it makes is authorised by its key, so revoking or
expiring the key ends the session at the next request (within the authorizer's cache period). Lookups are
cached in this process for `CACHE_S`, so signing out in one process ends the session in the others within
that time; `last_seen_at` is written at most once per `TOUCH_S`, not on every request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import DateTime, LargeBinary, String, delete, func, select, update
from sqlalchemy.orm import Mapped, mapped_column

from maas.registry.orm import Base
from maas.registry.store import SqlModelStore

COOKIE = "maas_session"
CSRF_HEADER = "x-csrf-token"
IDLE_S = 8 * 3600.0  # a session unused this long is forgotten
MAX_PER_KEY = 1000  # past this a key's least recently used sessions are dropped (a sign-in flood cannot grow)
CACHE_S = 2.0  # how long this process trusts a session it read (as the authorizer trusts its keys)
TOUCH_S = 60.0  # last_seen_at is written at most this often per session
MAX_COOKIE = 128  # a longer cookie is no session of ours (and is not hashed)
_NONCE = 12


class SessionRow(Base):
    __tablename__ = "console_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    sealed_key: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)


@dataclass(frozen=True)
class Session:
    token: str  # the API key it signed in with
    csrf: str
    key_id: str


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _derive(session_id: str, purpose: bytes) -> bytes:
    return hmac.new(session_id.encode(), b"maas console session: " + purpose, hashlib.sha256).digest()


def csrf_of(session_id: str) -> str:
    return base64.urlsafe_b64encode(_derive(session_id, b"csrf")).rstrip(b"=").decode()


def _seal(session_id: str, token: str) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(_derive(session_id, b"seal")).encrypt(nonce, token.encode(), _digest(session_id).encode())


def _unseal(session_id: str, sealed: bytes) -> str | None:
    try:
        plain = AESGCM(_derive(session_id, b"seal")).decrypt(sealed[:_NONCE], sealed[_NONCE:],
                                                             _digest(session_id).encode())
    except (InvalidTag, ValueError):
        return None
    return plain.decode()


def _aware(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at  # SQLite hands back naive UTC


class SessionStore:
    def __init__(self, store: SqlModelStore, idle_s: float = IDLE_S, max_per_key: int = MAX_PER_KEY,
                 cache_s: float = CACHE_S) -> None:
        self.store = store
        self.idle_s = idle_s
        self.max_per_key = max_per_key
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[Session, float]] = {}  # digest -> (session, when read)

    def create(self, token: str, key_id: str) -> tuple[str, Session]:
        """A new session for `token` (already authenticated by the caller): (cookie value, session)."""
        session_id = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self.store.writing(bump=False) as s:
            s.execute(delete(SessionRow).where(SessionRow.last_seen_at < now - timedelta(seconds=self.idle_s)))
            count = s.scalar(select(func.count()).select_from(SessionRow).where(SessionRow.key_id == key_id)) or 0
            if count >= self.max_per_key:
                oldest = select(SessionRow.id_sha256).where(SessionRow.key_id == key_id).order_by(
                    SessionRow.last_seen_at).limit(count - self.max_per_key + 1)
                s.execute(delete(SessionRow).where(SessionRow.id_sha256.in_(list(s.scalars(oldest)))))
            s.add(SessionRow(id_sha256=_digest(session_id), key_id=key_id, sealed_key=_seal(session_id, token),
                             created_at=now, last_seen_at=now))
        return session_id, Session(token, csrf_of(session_id), key_id)

    def cached(self, session_id: str) -> Session | None:
        """The session if this process read it within `cache_s` (no database read: safe on the event loop)."""
        if len(session_id) > MAX_COOKIE:
            return None
        entry = self._cache.get(_digest(session_id))
        if entry is None or time.monotonic() - entry[1] > self.cache_s:
            return None
        return entry[0]

    def get(self, session_id: str) -> Session | None:
        """The live session of a cookie, read from the database (blocking: call it off the event loop)."""
        if len(session_id) > MAX_COOKIE:
            return None
        digest = _digest(session_id)
        mono, now = time.monotonic(), datetime.now(UTC)
        with self.store.reading() as s:
            row = s.get(SessionRow, digest)
            found = None if row is None else (row.key_id, row.sealed_key, _aware(row.last_seen_at))
        if found is None:
            self._forget(digest)
            return None
        key_id, sealed, last_seen = found
        if (now - last_seen).total_seconds() > self.idle_s:
            self.drop(session_id)
            return None
        token = _unseal(session_id, sealed)
        if token is None:  # not sealed under this id: no session of this cookie
            return None
        if (now - last_seen).total_seconds() >= TOUCH_S:
            with self.store.writing(bump=False) as s:
                s.execute(update(SessionRow).where(SessionRow.id_sha256 == digest).values(last_seen_at=now))
        session = Session(token, csrf_of(session_id), key_id)
        with self._lock:
            self._cache[digest] = (session, mono)
            if len(self._cache) > 4 * self.max_per_key:  # a bound on memory: stale entries go first
                for k in [k for k, e in self._cache.items() if mono - e[1] > self.cache_s]:
                    del self._cache[k]
        return session

    def drop(self, session_id: str) -> None:
        digest = _digest(session_id)
        self._forget(digest)
        with self.store.writing(bump=False) as s:
            s.execute(delete(SessionRow).where(SessionRow.id_sha256 == digest))

    def count(self) -> int:
        with self.store.reading() as s:
            return int(s.scalar(select(func.count()).select_from(SessionRow)) or 0)

    def _forget(self, digest: str) -> None:
        with self._lock:
            self._cache.pop(digest, None)


def csrf_matches(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode("latin-1"))
