"""Who may do what: API keys with scopes, model patterns, expiry and rate limits, checked by one
`Authorizer` that every transport calls, and the audit log of control-plane changes (core: no transport)."""

from maas.security.audit import AuditEntry, AuditLog
from maas.security.authorizer import Authorizer, Principal
from maas.security.keys import ApiKey, KeyStore
from maas.security.scopes import Scope

__all__ = ["ApiKey", "AuditEntry", "AuditLog", "Authorizer", "KeyStore", "Principal", "Scope"]
