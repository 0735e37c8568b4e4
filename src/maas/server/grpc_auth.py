"""gRPC's door to the one `Authorizer`: the scope each v2 method needs and the model its request names.

The key and scope are checked before the message is parsed (an unauthenticated caller costs no decoding);
the model, which lives in the message, right after. Repository load/unload are audited like REST changes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from maas.security import AuditLog, Authorizer, Principal
from maas.security.authorizer import bearer_token
from maas.security.scopes import Scope

log = logging.getLogger(__name__)

# method -> (scope, request field naming the model or None, spans every model)
NEEDS: dict[str, tuple[Scope, str | None, bool]] = {
    "ServerMetadata": (Scope.INFER, None, False),
    "ModelReady": (Scope.INFER, "name", False),
    "ModelMetadata": (Scope.INFER, "name", False),
    "ModelConfig": (Scope.INFER, "name", False),
    "ModelInfer": (Scope.INFER, "model_name", False),
    "RepositoryIndex": (Scope.READ, None, True),
    "RepositoryModelLoad": (Scope.WRITE, "model_name", False),
    "RepositoryModelUnload": (Scope.WRITE, "model_name", False),
}
OPEN = frozenset({"ServerLive", "ServerReady"})
AUDITED = frozenset({"RepositoryModelLoad", "RepositoryModelUnload"})


class GrpcAuth:
    def __init__(self, authorizer: Authorizer, audit: AuditLog | None = None) -> None:
        self.authorizer = authorizer
        self.audit_log = audit

    async def before(self, method: str, metadata: Iterable[tuple[str, Any]]) -> Principal | None:
        """The caller of `method`, from its `authorization` metadata; raises when not let in."""
        if method in OPEN:
            return None
        scope, _, every = NEEDS.get(method, (Scope.ADMIN, None, True))
        values = [v if isinstance(v, str) else bytes(v).decode("latin-1")
                  for k, v in metadata if k == "authorization"]
        token = bearer_token(values)
        await self.authorizer.ready_for(token)
        return self.authorizer.check(token, scope, every_model=every)

    def after(self, method: str, principal: Principal | None, request: Any) -> None:
        need = NEEDS.get(method)
        if principal is None or need is None or need[1] is None:
            return
        self.authorizer.authorize(principal, need[0], str(getattr(request, need[1])))

    async def audit(self, method: str, principal: Principal, request: Any, peer: str, outcome: str) -> None:
        if self.audit_log is None or method not in AUDITED:
            return
        model = str(getattr(request, "model_name", "")) if request is not None else ""
        try:
            await asyncio.to_thread(self.audit_log.record, principal.actor, f"grpc {method}", target=model,
                                    source=peer, outcome=outcome)
        except Exception:
            log.error("could not write the audit record of %s", method, exc_info=True)
