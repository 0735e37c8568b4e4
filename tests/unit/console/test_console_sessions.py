"""Console sessions in the registry's database: only the id's SHA-256 and the key sealed under the id are
stored, the CSRF token is bound to the session, idle sessions expire, a key's sessions are bounded, and a
second store on the same database (another server process) finds the same session. On SQLite and
PostgreSQL. Also the paths the auth layer opens for the console (the sign-in page and its scripts only)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from maas.console.gate import is_page, session_id
from maas.console.sessions import SessionRow, SessionStore, csrf_matches, csrf_of
from maas.registry.store import SqlModelStore
from maas.security.scopes import Scope
from maas.server.auth import http_need

TOKEN = "maas_0123456789ab_secret-part"


def test_a_session_is_found_by_its_cookie_and_forgotten_when_dropped(database_url: str) -> None:
    store = SqlModelStore(database_url)
    try:
        sessions = SessionStore(store)
        sid, session = sessions.create(TOKEN, "0123456789ab")
        assert session.token == TOKEN and session.csrf == csrf_of(sid)
        found = sessions.get(sid)
        assert found is not None and found.token == TOKEN and found.key_id == "0123456789ab"
        with store.reading() as s:
            rows = list(s.scalars(select(SessionRow)))
        assert [r.id_sha256 for r in rows] == [hashlib.sha256(sid.encode()).hexdigest()]
        assert TOKEN.encode() not in rows[0].sealed_key and sid.encode() not in rows[0].sealed_key
        assert csrf_matches(found, found.csrf) and not csrf_matches(found, "x") and not csrf_matches(found, None)
        other_sid, other = sessions.create(TOKEN, "0123456789ab")
        assert other.csrf != session.csrf  # bound to its session, not to the key
        assert sessions.get("not-" + sid) is None and sessions.get("x" * 4096) is None
        sessions.drop(sid)
        assert sessions.get(sid) is None and sessions.cached(sid) is None
        assert sessions.get(other_sid) is not None
    finally:
        store.close()


def test_another_process_on_the_same_database_shares_the_session(database_url: str) -> None:
    first, second = SqlModelStore(database_url), SqlModelStore(database_url)
    try:
        a, b = SessionStore(first), SessionStore(second, cache_s=0.0)
        sid, session = a.create(TOKEN, "0123456789ab")
        found = b.get(sid)
        assert found is not None and found.token == TOKEN and found.csrf == session.csrf
        a.drop(sid)  # signing out in one process ends the session in the other
        assert b.cached(sid) is None and b.get(sid) is None
    finally:
        first.close()
        second.close()


def test_idle_sessions_expire_and_a_keys_sessions_are_bounded(database_url: str) -> None:
    store = SqlModelStore(database_url)
    try:
        sessions = SessionStore(store, max_per_key=3)
        sid, _ = sessions.create(TOKEN, "0123456789ab")
        idle = datetime.now(UTC) - timedelta(hours=8, minutes=1)
        with store.writing(bump=False) as s:
            s.execute(update(SessionRow).values(last_seen_at=idle))
        assert sessions.get(sid) is None and sessions.count() == 0  # forgotten, row and all
        ids = [sessions.create(TOKEN, "0123456789ab")[0] for _ in range(5)]
        kept = sessions.create(TOKEN, "ffffffffffff")[0]
        assert sessions.count() == 4 and sessions.get(ids[0]) is None and sessions.get(ids[-1]) is not None
        assert sessions.get(kept) is not None
    finally:
        store.close()


def test_a_sealed_key_opens_only_with_its_own_cookie(database_url: str) -> None:
    store = SqlModelStore(database_url)
    try:
        sessions = SessionStore(store)
        sid, _ = sessions.create(TOKEN, "0123456789ab")
        other_sid, _ = sessions.create(TOKEN, "0123456789ab")
        with store.writing(bump=False) as s:  # someone with the database swaps the sealed keys
            rows: dict[str, Any] = {r.id_sha256: r.sealed_key for r in s.scalars(select(SessionRow))}
            first, second = rows[hashlib.sha256(sid.encode()).hexdigest()], rows[
                hashlib.sha256(other_sid.encode()).hexdigest()]
            s.execute(update(SessionRow).where(SessionRow.id_sha256 == hashlib.sha256(sid.encode()).hexdigest())
                      .values(sealed_key=second))
        assert first != second
        assert sessions.get(sid) is None
    finally:
        store.close()


def test_the_cookie_is_read_from_the_header() -> None:
    assert session_id([(b"cookie", b"a=1; maas_session=xyz; b=2")]) == "xyz"
    assert session_id([(b"cookie", b"other=1")]) is None
    assert session_id([(b"cookie", b'bad"cookie')]) is None


def test_console_paths_need_read_keys_admin_and_only_sign_in_is_open() -> None:
    assert http_need("GET", "/console/login") is None
    assert http_need("POST", "/console/login") is None
    assert http_need("GET", "/console/static/console.js") is None
    assert http_need("GET", "/console/static/../keys") is not None
    assert http_need("GET", "/console/LOGIN") is not None  # exact spellings only
    need = http_need("GET", "/console/")
    assert need is not None and need.scope is Scope.READ
    need = http_need("GET", "/console/keys")
    assert need is not None and need.scope is Scope.ADMIN
    need = http_need("GET", "//console//KEYS/")
    assert need is not None and need.scope is Scope.ADMIN
    assert is_page("/console/models/x") and not is_page("/console/static/x.js") and not is_page("/console/login")
