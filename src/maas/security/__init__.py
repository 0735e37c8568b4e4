"""Security core (no transport): who may do what — API keys with scopes, model patterns, expiry and rate limits,
checked by one `Authorizer` that every transport calls, and the audit log of control-plane changes — and how
stored bytes are kept secret (key providers and the envelope cipher)."""

from maas.security.audit import AuditEntry, AuditLog
from maas.security.authorizer import Authorizer, Principal
from maas.security.keys import ApiKey, KeyStore
from maas.security.scopes import Scope

__all__ = ["ApiKey", "AuditEntry", "AuditLog", "Authorizer", "KeyStore", "Principal", "Scope"]
