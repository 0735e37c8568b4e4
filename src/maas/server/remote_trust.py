"""Whether a remote request may load code-running formats (pickles, unsafe SavedModels): never by a field of
the request alone, only for an admin-key caller of a server started with `MAAS_ALLOW_REMOTE_TRUST=true`."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from maas.config import Settings
from maas.errors import PermissionDenied
from maas.server.auth import is_admin

TRUTHY = frozenset({"1", "true", "yes", "on"})


def asks_trust(value: object) -> bool:
    """A form field or JSON value that asks for trust (any truthy spelling, so none slips past as 'no')."""
    if isinstance(value, str):
        return value.strip().lower() in TRUTHY
    return bool(value)


def grant_trust(request: HTTPConnection, settings: Settings, asked: bool) -> bool:
    """`asked` when the caller may have it; PermissionDenied (403) when it asked and may not."""
    if not asked:
        return False
    if not settings.allow_remote_trust:
        raise PermissionDenied(
            "trust (loading formats that run code) is not granted to remote requests on this server; import "
            "the file with the CLI on the server, or start it with MAAS_ALLOW_REMOTE_TRUST=true and use an "
            "admin key"
        )
    if not is_admin(request, settings):
        raise PermissionDenied("trust (loading formats that run code) needs an admin key")
    return True
