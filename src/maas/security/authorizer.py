"""The one authorisation decision every transport asks for: who is calling (a bearer token), may that key
use this scope on this model, and is it within its rate. Transports only say what a request needs.

Keys are cached in memory and re-read from the registry on one background thread, never on the event loop:
a cache older than `cache_s` seconds is re-read while requests go on deciding with it, so a key revoked by
another process stops working within `cache_s` plus one read; one revoked through this process stops at
once. A key id not in the cache makes the request wait (off the loop, `ready_for`) for a re-read, at most
four a second, shared by every waiting request. Last-used times are collected here and written in batches
by `flush_last_used` (the server calls it off the loop periodically), not once per request.
"""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from maas.errors import PermissionDenied, RateLimited, Unauthenticated
from maas.security.keys import ApiKey, KeyStore
from maas.security.rates import TokenBucket
from maas.security.scopes import Scope
from maas.security.tokens import PREFIX, hash_matches, key_id_of

log = logging.getLogger(__name__)

LAST_USED_EVERY_S = 60.0  # a key's last-used time is written at most this often
_UNKNOWN_RELOAD_S = 0.25


@dataclass(frozen=True)
class Principal:
    """The caller as the core sees it: a key's id, name, scope and models (never its token)."""

    key_id: str
    name: str
    scope: Scope
    models: tuple[str, ...] = ("*",)

    @property
    def actor(self) -> str:
        return f"{self.name} ({self.key_id})" if self.key_id else self.name

    @property
    def is_admin(self) -> bool:
        return self.scope is Scope.ADMIN

    def allows_model(self, model: str) -> bool:
        return any(fnmatch.fnmatchcase(model, p) for p in self.models)

    @property
    def all_models(self) -> bool:
        return "*" in self.models


ANONYMOUS = Principal("", "anonymous", Scope.ADMIN)  # the caller when no key exists at all (loopback use)
ENV_KEY = Principal("env", "MAAS_API_KEY", Scope.ADMIN)


def bearer_token(values: Iterable[str]) -> str | None:
    """The token of exactly one `Authorization: Bearer <token>` value; None when absent or malformed."""
    values = list(values)
    if len(values) != 1:
        return None
    scheme, _, token = values[0].strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 512 or not token.isprintable() or " " in token:
        return None
    return token


class Authorizer:
    def __init__(self, keys: KeyStore | None, api_key: str = "", cache_s: float = 2.0) -> None:
        self.keys = keys
        self._env_hash = hashlib.sha256(api_key.encode()).digest() if api_key else None
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self._cache: dict[str, ApiKey] = {}
        self._any_key = False
        self._loaded = False
        self._loaded_at = -1e9
        self._worker: ThreadPoolExecutor | None = None  # the one thread that reads keys (off the event loop)
        self._pending: Future[None] | None = None  # the reload in flight, shared by everyone waiting for it
        self._buckets: dict[str, TokenBucket] = {}
        self._used: dict[str, datetime] = {}
        self._written: dict[str, float] = {}

    # --- the cache of keys ------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Re-read the keys now and wait for it (a change made through this process counts at once); blocks,
        so call it from a thread."""
        if self.keys is not None:
            self._reload_soon().result()

    async def ready_for(self, token: str | None) -> None:
        """For transports, before `check`: waits (off the loop) for the first read of the keys, or for a re-read
        when `token` names a key id not cached yet (made by another process a moment ago; at most one
        re-read per `_UNKNOWN_RELOAD_S`, shared by every request waiting). Otherwise returns at once."""
        if self.keys is None:
            return
        if not self._loaded:
            await asyncio.wrap_future(self._reload_soon())
            return
        if token is None or not self._unknown(token):
            return
        wait = self._loaded_at + _UNKNOWN_RELOAD_S - time.monotonic()
        if wait > 0:  # the last read was a moment ago: wait for the next one allowed, rather than refuse
            await asyncio.sleep(wait)
        if self._unknown(token) and time.monotonic() - self._loaded_at >= _UNKNOWN_RELOAD_S:
            await asyncio.wrap_future(self._reload_soon())

    def close(self) -> None:
        if self._worker is not None:
            self._worker.shutdown(wait=True)

    def _unknown(self, token: str) -> bool:
        key_id = key_id_of(token) if token.startswith(PREFIX) else None
        return key_id is not None and key_id not in self._cache

    def _reload_soon(self) -> Future[None]:
        with self._lock:
            if self._pending is None or self._pending.done():
                if self._worker is None:
                    self._worker = ThreadPoolExecutor(1, thread_name_prefix="maas-keys")
                self._pending = self._worker.submit(self._reload)
            return self._pending

    def _reload(self) -> None:
        assert self.keys is not None
        try:
            keys = self.keys.list()
        except Exception:  # a busy database: keep deciding on the keys we have; the next request retries
            log.warning("could not re-read the API keys", exc_info=True)
            if not self._loaded:
                raise
            return
        self._cache = {k.id: k for k in keys}
        self._any_key = bool(keys)  # revoked keys count: revoking the last key does not open the server
        self._loaded_at = time.monotonic()
        self._loaded = True

    def _fresh(self) -> None:
        """Never waits once keys were read: a stale cache is re-read in the background and used meanwhile."""
        if self.keys is None:
            return
        if not self._loaded:
            self._reload_soon().result()  # the first decision needs keys (transports awaited `ready_for`)
        elif time.monotonic() - self._loaded_at > self.cache_s:
            self._reload_soon()

    @property
    def required(self) -> bool:
        """Whether callers must present a key: MAAS_API_KEY is set, or a key was ever created."""
        if self._env_hash is not None:
            return True
        self._fresh()
        return self._any_key

    @property
    def open_now(self) -> bool:
        """Whether no key is required, known without waiting (False until the keys have been read once)."""
        if self._env_hash is not None or (self.keys is not None and not self._loaded):
            return False
        return not self.required

    # --- decisions --------------------------------------------------------------------------------------
    def authenticate(self, token: str | None) -> Principal:
        """The principal of a token, charged one request against its rate; raises when it lets nobody in."""
        if not self.required:
            return ANONYMOUS
        if token is None:
            raise Unauthenticated("missing or invalid API key: send 'Authorization: Bearer <key>'")
        if self._env_hash is not None and hmac.compare_digest(hashlib.sha256(token.encode()).digest(),
                                                              self._env_hash):
            return ENV_KEY
        key = self._lookup(token)
        now = datetime.now(UTC)
        if key is None or not hash_matches(token, key.token_sha256):
            raise Unauthenticated("missing or invalid API key")
        if key.revoked_at is not None:
            raise Unauthenticated(f"API key {key.id} is revoked")
        if key.expired(now):
            raise Unauthenticated(f"API key {key.id} expired at {key.expires_at:%Y-%m-%d %H:%M} UTC")
        if key.rate is not None:
            wait = self._bucket(key).take()
            if wait > 0:
                raise RateLimited(f"API key {key.id} is over its rate of {key.rate}", wait)
        self._note_use(key.id, now)
        return Principal(key.id, key.name, key.scope, key.models)

    def authorize(self, principal: Principal, scope: Scope, model: str | None = None,
                  *, every_model: bool = False) -> None:
        """Raise PermissionDenied unless `principal` holds `scope` (and may use `model`, or all models)."""
        who = principal.actor
        if not principal.scope.allows(scope):
            raise PermissionDenied(f"API key {principal.key_id or principal.name} has scope "
                                   f"{principal.scope.value!r}; this needs {scope.value!r}", who)
        if model is not None and not principal.allows_model(model):
            raise PermissionDenied(f"API key {principal.key_id} may not use model {model[:64]!r}", who)
        if every_model and not principal.all_models:
            raise PermissionDenied(f"API key {principal.key_id} is limited to some models; this covers all", who)

    def check(self, token: str | None, scope: Scope, model: str | None = None,
              *, every_model: bool = False) -> Principal:
        principal = self.authenticate(token)
        self.authorize(principal, scope, model, every_model=every_model)
        return principal

    def _lookup(self, token: str) -> ApiKey | None:
        if not token.startswith(PREFIX):
            return None
        key_id = key_id_of(token)
        if key_id is None:
            return None
        self._fresh()
        key = self._cache.get(key_id)
        if key is None and time.monotonic() - self._loaded_at > _UNKNOWN_RELOAD_S:
            self._reload_soon()  # perhaps made by another process a moment ago: known to the next request
        return key

    def _bucket(self, key: ApiKey) -> TokenBucket:
        bucket = self._buckets.get(key.id)
        if bucket is None or bucket.rate != key.rate:
            assert key.rate is not None
            bucket = self._buckets[key.id] = TokenBucket(key.rate)
        return bucket

    # --- last used --------------------------------------------------------------------------------------
    def _note_use(self, key_id: str, at: datetime) -> None:
        self._used[key_id] = at

    def flush_last_used(self, force: bool = False) -> int:
        """Write the last-used time of keys not written for LAST_USED_EVERY_S (all with `force`)."""
        if self.keys is None or not self._used:
            return 0
        now = time.monotonic()
        due = {k: at for k, at in list(self._used.items())
               if force or now - self._written.get(k, -1e9) >= LAST_USED_EVERY_S}
        if not due:
            return 0
        for k in due:
            self._used.pop(k, None)
            self._written[k] = now
        try:
            self.keys.record_last_used(due)
        except Exception:  # a busy database must not fail requests; the next flush retries
            log.warning("could not record key last-used times", exc_info=True)
            for k, at in due.items():
                self._used.setdefault(k, at)
        return len(due)
