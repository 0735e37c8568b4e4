"""Keys, scopes, rates and the Authorizer over a real SQLite registry (no sockets)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from maas.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, RateLimited, Unauthenticated
from maas.registry.store import SqlModelStore
from maas.security import AuditLog, Authorizer, KeyStore, Scope
from maas.security.authorizer import ANONYMOUS, ENV_KEY, bearer_token
from maas.security.keys import ApiKey, parse_expiry
from maas.security.last_used import flush_last_used
from maas.security.rates import Rate, TokenBucket, retry_after_header
from maas.security.tokens import TOKEN, key_id_of


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
def store(database_url: str) -> Iterator[SqlModelStore]:
    """On SQLite and on the real PostgreSQL service (migration 0005_security on both)."""
    s = SqlModelStore(database_url)
    yield s
    s.close()


@pytest.fixture
def keys(store: SqlModelStore) -> KeyStore:
    return KeyStore(store)


def test_token_has_prefix_256_random_bits_and_is_stored_only_hashed(db: Path) -> None:
    store = SqlModelStore(f"sqlite:///{db}")
    keys = KeyStore(store)
    key, token = keys.create("ci", "infer")
    assert TOKEN.fullmatch(token) and token.startswith("maas_") and key_id_of(token) == key.id
    secret = token[len("maas_") + 12 + 1:]  # the secret may itself hold "_"
    assert len(secret) == 43  # 32 bytes of secrets.token_urlsafe = 256 bits
    _, other = keys.create("ci2", "infer")
    assert other != token
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in db.parent.glob("registry.db-*"))
    assert secret.encode() not in raw and token.encode() not in raw
    rows = sqlite3.connect(db).execute("select token_sha256 from api_keys").fetchall()
    assert all(re.fullmatch(r"[0-9a-f]{64}", r[0]) for r in rows)
    assert "token" not in key.to_dict()
    store.close()


def test_scopes_imply_the_lower_ones() -> None:
    assert Scope.ADMIN.allows(Scope.WRITE) and Scope.WRITE.allows(Scope.READ) and Scope.READ.allows(Scope.INFER)
    assert not Scope.INFER.allows(Scope.READ) and not Scope.WRITE.allows(Scope.ADMIN)
    with pytest.raises(InvalidArgument):
        Scope.parse("root")


def test_create_validates_its_inputs(keys: KeyStore) -> None:
    for kwargs in ({"models": ["Bad/Name"]}, {"expires": "yesterday"}, {"expires": "0d"}, {"rate": "5/year"},
                   {"rate": "0/s"}, {"expires": "2001-01-01"}):
        with pytest.raises(InvalidArgument):
            keys.create("k", "read", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        keys.create("", "read")
    with pytest.raises(InvalidArgument):
        keys.revoke("../../etc")
    with pytest.raises(NotFound):
        keys.revoke("0123456789ab")


def test_expiry_and_rate_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_expiry("30d", now) == now + timedelta(days=30)
    assert parse_expiry("2w", now) == now + timedelta(weeks=2)
    assert parse_expiry("2027-01-01", now) == datetime(2027, 1, 1, tzinfo=UTC)
    assert Rate.parse("50/s").per_second == 50 and Rate.parse("600 / m").per_second == 10
    assert str(Rate.parse("10/h")) == "10/h"
    assert retry_after_header(0.01) == "1" and retry_after_header(1.2) == "2"


def test_token_bucket_allows_a_burst_then_refills() -> None:
    bucket = TokenBucket(Rate.parse("3/s"))
    assert [bucket.take() for _ in range(3)] == [0, 0, 0]
    wait = bucket.take()
    assert 0 < wait <= 1 / 3 + 1e-6
    time.sleep(wait + 0.01)
    assert bucket.take() == 0


def test_bearer_token_parsing() -> None:
    assert bearer_token(["Bearer abc"]) == "abc" and bearer_token(["bearer  abc "]) == "abc"
    for bad in ([], ["Basic abc"], ["Bearer"], ["Bearer "], ["Bearer a b"], ["Bearer a", "Bearer a"],
                ["Bearer " + "x" * 600], ["Bearer a\x00b"]):
        assert bearer_token(bad) is None, bad


def test_authorizer_decisions(keys: KeyStore) -> None:
    auth = Authorizer(keys)
    assert not auth.required and auth.authenticate(None) is ANONYMOUS  # no key anywhere: loopback use stays open
    _, infer_digits = keys.create("digits", "infer", models=["digits*"])
    _, writer = keys.create("w", "write")
    revoked, revoked_token = keys.create("r", "admin")
    keys.revoke(revoked.id)
    _, expired_token = keys.create("e", "admin", expires=datetime.now(UTC) - timedelta(seconds=1))
    auth.invalidate()
    assert auth.required
    assert auth.check(infer_digits, Scope.INFER, "digits-cnn").name == "digits"
    with pytest.raises(PermissionDenied, match="model"):
        auth.check(infer_digits, Scope.INFER, "resnet")
    with pytest.raises(PermissionDenied, match="scope"):
        auth.check(infer_digits, Scope.READ)
    with pytest.raises(PermissionDenied):
        auth.check(infer_digits, Scope.INFER, every_model=True)
    assert auth.check(writer, Scope.READ, "anything").scope is Scope.WRITE
    with pytest.raises(PermissionDenied):
        auth.check(writer, Scope.ADMIN)
    for token, match in ((None, "missing"), ("garbage", "invalid"), (revoked_token, "revoked"),
                         (expired_token, "expired"), (writer[:-1] + ("A" if writer[-1] != "A" else "B"), "invalid"),
                         ("maas_0123456789ab_" + "A" * 43, "invalid")):
        with pytest.raises(Unauthenticated, match=match):
            auth.authenticate(token)
    with pytest.raises(FailedPrecondition):
        keys.revoke(revoked.id)


def test_revocation_through_another_store_is_seen_after_the_cache_time(keys: KeyStore, database_url: str) -> None:
    key, token = keys.create("k", "read")
    auth = Authorizer(keys, cache_s=0.2)
    auth.check(token, Scope.READ)
    other = SqlModelStore(database_url)
    KeyStore(other).revoke(key.id)  # as `maas keys revoke` in another process
    other.close()
    time.sleep(0.3)
    deadline = time.monotonic() + 5  # the stale cache is re-read in the background: within cache_s + one read
    while time.monotonic() < deadline:
        try:
            auth.check(token, Scope.READ)
        except Unauthenticated as exc:
            assert "revoked" in exc.message
            break
        time.sleep(0.02)
    else:
        raise AssertionError("the revocation was never seen")
    auth.close()


def test_rate_limit_and_last_used(keys: KeyStore) -> None:
    key, token = keys.create("slow", "infer", rate="2/s")
    auth = Authorizer(keys)
    auth.check(token, Scope.INFER)
    auth.check(token, Scope.INFER)
    with pytest.raises(RateLimited) as info:
        auth.check(token, Scope.INFER)
    assert 0 < info.value.retry_after_s <= 0.5
    assert keys.get(key.id).last_used_at is None  # not written per request
    assert auth.flush_last_used() == 1
    assert keys.get(key.id).last_used_at is not None
    assert auth.flush_last_used() == 0


def test_env_key_is_an_admin_key(keys: KeyStore) -> None:
    auth = Authorizer(keys, api_key="s3cret")
    assert auth.required and auth.check("s3cret", Scope.ADMIN) is ENV_KEY
    with pytest.raises(Unauthenticated):
        auth.check("s3cre", Scope.INFER)


def test_audit_log_newest_first(store: SqlModelStore) -> None:
    log = AuditLog(store)
    log.record("alice (k1)", "PUT /api/v1/models/a/aliases/prod", target="a", source="10.0.0.1:5", outcome="200")
    log.record("bob (k2)", "DELETE /api/v1/models/a", target="a", source="10.0.0.2:6", outcome="403")
    entries = log.list()
    assert [e.actor for e in entries] == ["bob (k2)", "alice (k1)"]
    assert entries[0].to_dict()["outcome"] == "403" and log.list(actor="alice (k1)")[0].source == "10.0.0.1:5"


class Watched(KeyStore):
    """A KeyStore that notes on which thread each read or write ran."""

    def __init__(self, store: SqlModelStore) -> None:
        super().__init__(store)
        self.reads: list[str] = []
        self.writes: list[str] = []

    def list(self, include_revoked: bool = True) -> list[ApiKey]:
        self.reads.append(threading.current_thread().name)
        return super().list(include_revoked)

    def record_last_used(self, used: dict[str, datetime]) -> None:
        self.writes.append(threading.current_thread().name)
        super().record_last_used(used)


def test_a_stale_cache_is_reread_in_the_background_never_on_the_callers_thread(store: SqlModelStore) -> None:
    keys = Watched(store)
    _, token = keys.create("k", "read")
    auth = Authorizer(keys, cache_s=0.05)
    asyncio.run(auth.ready_for(token))  # the first read, awaited off the loop
    assert keys.reads == ["maas-keys_0"]
    time.sleep(0.1)
    assert auth.check(token, Scope.READ).name == "k"  # decided on the stale cache, a re-read started
    deadline = time.monotonic() + 5
    while len(keys.reads) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    auth.close()
    assert set(keys.reads) == {"maas-keys_0"}, keys.reads


def test_an_unknown_key_waits_for_one_shared_reread(store: SqlModelStore, database_url: str) -> None:
    keys = Watched(store)
    keys.create("first", "read")
    auth = Authorizer(keys)
    asyncio.run(auth.ready_for(None))
    other = SqlModelStore(database_url)
    _, fresh = KeyStore(other).create("fresh", "read")  # as `maas keys create` in another process
    other.close()
    time.sleep(0.3)

    async def many() -> None:
        await asyncio.gather(*(auth.ready_for(fresh) for _ in range(20)))

    asyncio.run(many())
    assert len(keys.reads) == 2  # twenty waiting requests, one re-read
    assert auth.check(fresh, Scope.READ).name == "fresh"
    bogus = fresh[:5] + "0000000000ab" + fresh[17:]
    started = time.monotonic()

    async def flood() -> None:  # a flood of unknown ids: they wait for a shared re-read, one per quarter second
        for _ in range(3):
            await asyncio.gather(*(auth.ready_for(bogus) for _ in range(10)))

    asyncio.run(flood())
    assert len(keys.reads) - 2 <= 1 + (time.monotonic() - started) / 0.25
    with pytest.raises(Unauthenticated):
        auth.check(bogus, Scope.READ)
    auth.close()


def test_last_used_times_are_written_off_the_event_loop(store: SqlModelStore) -> None:
    keys = Watched(store)
    key, token = keys.create("k", "read")
    auth = Authorizer(keys)
    auth.invalidate()
    auth.check(token, Scope.READ)

    async def one_flush() -> str:
        task = asyncio.create_task(flush_last_used(auth, every_s=0.01))
        while not keys.writes:
            await asyncio.sleep(0.01)
        task.cancel()
        return threading.current_thread().name

    loop_thread = asyncio.run(one_flush())
    assert keys.writes and loop_thread not in keys.writes
    assert keys.get(key.id).last_used_at is not None
    auth.close()
