"""Token format: `maas_<12 hex id>_<43 url-safe chars>` (256 random bits). The id finds the row; only the
SHA-256 of the whole token is stored (a fast hash is enough for a secret this long) and compared in
constant time."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "maas_"
TOKEN = re.compile(r"maas_([0-9a-f]{12})_[A-Za-z0-9_-]{43}")


def new_token() -> tuple[str, str]:
    """A fresh (key id, token)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"


def key_id_of(token: str) -> str | None:
    """The id inside a well-formed token, else None."""
    m = TOKEN.fullmatch(token)
    return m.group(1) if m else None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def hash_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token).encode(), stored_hash.encode())
