"""Console sessions: random ids kept only as digests, a CSRF token each, idle expiry and a bound on their
number; and the paths the auth layer opens for the console (the sign-in page and its scripts only)."""

from __future__ import annotations

from maas.console.gate import is_page, session_id
from maas.console.sessions import SessionStore, csrf_matches
from maas.security.scopes import Scope
from maas.server.auth import http_need


def test_a_session_is_found_by_its_cookie_and_forgotten_when_dropped() -> None:
    store = SessionStore()
    sid, session = store.create("maas_abc_secret", "abc")
    assert store.get(sid) is session
    assert sid not in store._sessions  # only the digest is a key
    assert csrf_matches(session, session.csrf) and not csrf_matches(session, "x") and not csrf_matches(session, None)
    store.drop(sid)
    assert store.get(sid) is None


def test_idle_sessions_expire_and_the_number_is_bounded() -> None:
    store = SessionStore(idle_s=0.0)
    sid, _ = store.create("t", "k")
    assert store.get(sid) is None
    bounded = SessionStore(max_sessions=3)
    ids = [bounded.create("t", "k")[0] for _ in range(5)]
    assert len(bounded) == 3 and bounded.get(ids[0]) is None and bounded.get(ids[-1]) is not None


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
