"""API keys and the audit log over HTTP (admin keys only; `server/auth.py` enforces the scope):
`/api/v1/keys` create/list/revoke and `/api/v1/audit`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from maas.security import AuditLog, Authorizer, KeyStore
from maas.server.auth import principal_of


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    scope: str = Field(max_length=16)
    models: list[str] = Field(default_factory=list, max_length=100)
    expires: str | None = Field(None, max_length=64, description="e.g. 30d, 12h, or an ISO date")
    rate: str | None = Field(None, max_length=32, description="e.g. 50/s, 600/m")


def router(keys: KeyStore, audit: AuditLog, authorizer: Authorizer) -> APIRouter:
    r = APIRouter(prefix="/api/v1", tags=["security"])

    @r.post("/keys", status_code=201)
    async def create_key(body: KeyRequest, request: Request) -> dict[str, Any]:
        """Create a key; the answer carries its `token`, which is never shown again."""
        principal = principal_of(request.scope)
        key, token = await run_in_threadpool(
            keys.create, body.name, body.scope, models=body.models, expires=body.expires, rate=body.rate,
            created_by=principal.actor if principal else "",
        )
        await run_in_threadpool(authorizer.invalidate)
        return {**key.to_dict(), "token": token}

    @r.get("/keys")
    def list_keys() -> list[dict[str, Any]]:
        return [k.to_dict() for k in keys.list()]

    @r.delete("/keys/{key_id}")
    def revoke_key(key_id: str) -> dict[str, Any]:
        key = keys.revoke(key_id)
        authorizer.invalidate()
        return key.to_dict()

    @r.get("/audit")
    def read_audit(limit: int = 100, actor: str | None = None) -> list[dict[str, Any]]:
        return [e.to_dict() for e in audit.list(max(1, min(limit, 10_000)), actor)]

    return r
