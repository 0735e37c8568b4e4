"""Browser sessions of the console: a random session id (the cookie) -> the API key it signed in with and a
per-session CSRF token. Kept in memory only: a restart signs everyone out, and no token is ever written out.

A session carries no rights of its own: each request it makes is authorised by the key, so revoking or
expiring the key ends the session at the next request (within the authorizer's cache period)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field

COOKIE = "maas_session"
CSRF_HEADER = "x-csrf-token"
IDLE_S = 8 * 3600.0  # a session unused this long is forgotten
MAX_SESSIONS = 10_000  # past this the least recently used are dropped (a sign-in flood cannot grow memory)


@dataclass
class Session:
    token: str  # the API key it signed in with
    csrf: str
    key_id: str
    last_seen: float = field(default_factory=time.monotonic)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()  # a memory dump shows no usable cookie


class SessionStore:
    def __init__(self, idle_s: float = IDLE_S, max_sessions: int = MAX_SESSIONS) -> None:
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self, token: str, key_id: str) -> tuple[str, Session]:
        """A new session for `token` (already authenticated by the caller): (cookie value, session)."""
        session_id = secrets.token_urlsafe(32)
        session = Session(token, secrets.token_urlsafe(32), key_id)
        with self._lock:
            self._expire(time.monotonic())
            while len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].last_seen)
                del self._sessions[oldest]
            self._sessions[_digest(session_id)] = session
        return session_id, session

    def get(self, session_id: str) -> Session | None:
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(_digest(session_id))
            if session is None:
                return None
            if now - session.last_seen > self.idle_s:
                del self._sessions[_digest(session_id)]
                return None
            session.last_seen = now
            return session

    def drop(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(_digest(session_id), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self, now: float) -> None:
        for k in [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_s]:
            del self._sessions[k]


def csrf_matches(session: Session, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(session.csrf.encode(), sent.encode("latin-1"))
