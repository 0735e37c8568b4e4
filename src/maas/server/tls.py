"""TLS for both doors from the same three files: uvicorn's ssl options for HTTPS and grpc's server
credentials for gRPC over TLS, with client certificates required when a client CA is given (mTLS)."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from maas.config import Settings
from maas.errors import FailedPrecondition


def tls_enabled(settings: Settings) -> bool:
    return settings.tls_cert is not None or settings.tls_key is not None


def check_tls(settings: Settings) -> None:
    """Fail before anything starts when the files are missing, unreadable or do not belong together."""
    if not tls_enabled(settings) and settings.tls_client_ca is None:
        return
    if settings.tls_cert is None or settings.tls_key is None:
        raise FailedPrecondition("TLS needs both --tls-cert and --tls-key (MAAS_TLS_CERT, MAAS_TLS_KEY)")
    for flag, path in (("--tls-cert", settings.tls_cert), ("--tls-key", settings.tls_key),
                       ("--tls-client-ca", settings.tls_client_ca)):
        if path is not None and not Path(path).is_file():
            raise FailedPrecondition(f"{flag} {path}: no such file")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        ctx.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (ssl.SSLError, OSError) as exc:
        raise FailedPrecondition(f"cannot use {settings.tls_cert} with {settings.tls_key}: {exc}") from None
    if settings.tls_client_ca is not None:
        try:
            ctx.load_verify_locations(cafile=str(settings.tls_client_ca))
        except (ssl.SSLError, OSError) as exc:
            raise FailedPrecondition(f"cannot use {settings.tls_client_ca} as a client CA: {exc}") from None


def uvicorn_ssl(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of `uvicorn.Config` (empty without TLS)."""
    if not tls_enabled(settings):
        return {}
    options: dict[str, Any] = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
    if settings.tls_client_ca is not None:
        options |= {"ssl_ca_certs": str(settings.tls_client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    return options


def grpc_credentials(settings: Settings) -> Any:
    """`grpc.ServerCredentials`, or None for a plain-text port."""
    if not tls_enabled(settings):
        return None
    import grpc

    assert settings.tls_cert is not None and settings.tls_key is not None
    ca = Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca is not None else None
    return grpc.ssl_server_credentials(
        [(Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes())],
        root_certificates=ca, require_client_auth=ca is not None,
    )
