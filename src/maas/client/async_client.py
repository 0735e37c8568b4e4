"""AsyncClient: the control API of a maas server, with the same verbs as the in-process `maas.Registry`."""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from maas.client.resumable import CHUNK_BYTES, ResumableUpload
from maas.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    MaasError,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from maas.registry.entities import Model, ModelVersion

REQUESTED_WITH = "X-Requested-With"
RESUMABLE_FROM = 64 * 1024 * 1024  # files this large go up over tus, in pieces, resumable

_BY_STATUS: dict[int, type[MaasError]] = {
    400: InvalidArgument, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound, 409: FailedPrecondition,
    413: PayloadTooLarge, 429: ResourceExhausted, 503: Unavailable, 504: DeadlineExceeded,
}


def _q(part: str) -> str:
    return quote(str(part), safe="")


def _error_of(resp: httpx.Response) -> MaasError:
    """The maas error an HTTP error response stands for."""
    try:
        message = resp.json().get("error", resp.text)
    except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
        message = resp.text or f"HTTP {resp.status_code}"
    error = _BY_STATUS.get(resp.status_code, Internal)
    if resp.status_code == 409 and resp.headers.get("maas-error-code") == "ALREADY_EXISTS":
        error = AlreadyExists  # 409 is also FAILED_PRECONDITION; the server's code header tells them apart
    elif resp.status_code in (410, 412, 415):
        error = NotFound if resp.status_code == 410 else InvalidArgument
    elif resp.status_code == 423:
        error = Unavailable
    return error(str(message))


def _import_fields(format: str, description: str, tags: dict[str, str] | None, aliases: tuple[str, ...] | list[str],
                   labels: list[str] | None, trust: bool, allow_mismatch: bool) -> dict[str, str | list[str]]:
    """import_file's options as the multipart form's fields (a list for a repeated field)."""
    fields: dict[str, str | list[str]] = {"format": format, "description": description,
                                          "tag": [f"{k}={v}" for k, v in (tags or {}).items()],
                                          "alias": list(aliases)}
    if labels is not None:
        fields["labels"] = json.dumps(labels)
    if trust:
        fields["trust"] = "true"
    if allow_mismatch:
        fields["allow_mismatch"] = "true"
    return fields


def _metadata(fields: dict[str, str | list[str]]) -> dict[str, str]:
    """The same fields as an upload's metadata: a repeated field's values one per line, empty ones left out."""
    joined = {k: "\n".join(v) if isinstance(v, list) else v for k, v in fields.items()}
    return {k: v for k, v in joined.items() if v or k == "format"}


class AsyncClient:
    """Talks to `maas serve` over HTTP; raises the same `maas.errors` exceptions as the registry."""

    def __init__(self, url: str = "http://127.0.0.1:8000", *, api_key: str | None = None,
                 timeout: float = 300.0, transport: httpx.AsyncBaseTransport | None = None,
                 ca_cert: str | os.PathLike[str] | None = None, client_cert: str | os.PathLike[str] | None = None,
                 client_key: str | os.PathLike[str] | None = None) -> None:
        """`ca_cert` verifies an https server signed by a private CA; `client_cert`/`client_key` answer mTLS."""
        key = api_key if api_key is not None else os.environ.get("MAAS_API_KEY", "")
        # The custom header marks a request no plain HTML form can send (the server's cross-site guard).
        headers = {REQUESTED_WITH: "maas-sdk"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        verify: ssl.SSLContext | bool = True
        if ca_cert is not None or client_cert is not None:
            verify = ssl.create_default_context(cafile=str(ca_cert) if ca_cert is not None else None)
            if client_cert is not None:
                verify.load_cert_chain(str(client_cert), str(client_key) if client_key is not None else None)
        self._http = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=timeout,
                                       transport=transport, verify=verify)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the maas server: {exc}") from None
        if resp.status_code >= 400:
            raise _error_of(resp)
        return resp.json() if resp.headers.get("content-type", "").startswith("application/json") else resp

    # --- models ----------------------------------------------------------------------------------------
    async def list_models(self) -> list[Model]:
        return [Model.from_dict(m) for m in await self._call("GET", "/api/v1/models")]

    async def get_model(self, name: str) -> Model:
        return Model.from_dict(await self._call("GET", f"/api/v1/models/{_q(name)}"))

    async def update_model(self, name: str, *, description: str | None = None,
                           tags: dict[str, str] | None = None, remove_tags: list[str] | None = None) -> Model:
        body = {"description": description, "tags": tags or {}, "remove_tags": remove_tags or []}
        return Model.from_dict(await self._call("PATCH", f"/api/v1/models/{_q(name)}", json=body))

    async def delete_model(self, name: str) -> None:
        await self._call("DELETE", f"/api/v1/models/{_q(name)}")

    # --- versions --------------------------------------------------------------------------------------
    async def list_versions(self, name: str) -> list[ModelVersion]:
        data = await self._call("GET", f"/api/v1/models/{_q(name)}/versions")
        return [ModelVersion.from_dict(v) for v in data]

    async def get(self, ref: str) -> ModelVersion:
        return ModelVersion.from_dict(await self._call("GET", f"/api/v1/versions/{_q(ref)}"))

    async def archive(self, ref: str) -> ModelVersion:
        return ModelVersion.from_dict(await self._call("POST", f"/api/v1/versions/{_q(ref)}/archive"))

    async def tag(self, ref: str, tags: dict[str, str] | None = None,
                  remove: list[str] | None = None) -> ModelVersion:
        body = {"tags": tags or {}, "remove": remove or []}
        return ModelVersion.from_dict(await self._call("PATCH", f"/api/v1/versions/{_q(ref)}/tags", json=body))

    async def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        data = await self._call("PUT", f"/api/v1/models/{_q(name)}/aliases/{_q(alias)}",
                                json={"version": int(version)})
        return ModelVersion.from_dict(data)

    async def remove_alias(self, name: str, alias: str) -> None:
        await self._call("DELETE", f"/api/v1/models/{_q(name)}/aliases/{_q(alias)}")

    async def import_file(self, path: str | os.PathLike[str], *, name: str, format: str = "auto",
                          description: str = "", tags: dict[str, str] | None = None,
                          aliases: tuple[str, ...] | list[str] = (), labels: list[str] | None = None,
                          trust: bool = False, allow_mismatch: bool = False,
                          resumable: bool | None = None) -> ModelVersion:
        """Upload a model file; the server converts, verifies and registers it as the next version.

        Files of `RESUMABLE_FROM` bytes or more (or any, with `resumable=True`) go up over the resumable
        protocol (tus), in pieces, resuming where the server stands after a broken connection."""
        p = Path(path)
        size = p.stat().st_size
        data = _import_fields(format, description, tags, aliases, labels, trust, allow_mismatch)
        if resumable or (resumable is None and size >= RESUMABLE_FROM):
            return ModelVersion.from_dict(await self.upload_resumable(p, name=name, fields=_metadata(data)))
        with p.open("rb") as f:
            result = await self._call("POST", f"/api/v1/models/{_q(name)}/versions", data=data,
                                      files={"file": (p.name, f, "application/octet-stream")})
        return ModelVersion.from_dict(result)

    async def upload_resumable(self, path: str | os.PathLike[str], *, name: str,
                               fields: dict[str, str] | None = None, background: bool = False,
                               chunk_bytes: int = CHUNK_BYTES) -> dict[str, Any]:
        """Upload `path` over tus and import it as `name`: the version's record, or with `background` the
        job's. `fields` are the multipart route's import options (`format`, `description`, `tag`, …)."""
        p = Path(path)
        size = p.stat().st_size
        up = ResumableUpload(self._http, _error_of, chunk_bytes=chunk_bytes)
        await up.create(size, {"name": name, "filename": p.name, **(fields or {})})
        await up.send(p, size)
        result: dict[str, Any] = await up.import_({}, background=background)
        return result

    async def download(self, ref: str, out: str | os.PathLike[str], role: str = "model.onnx") -> Path:
        resp = await self._call("GET", f"/api/v1/versions/{_q(ref)}/artifacts/{_q(role)}")
        target = Path(out)
        target.write_bytes(resp.content)
        return target

    # --- keys and audit (admin keys) -----------------------------------------------------------------
    async def create_key(self, name: str, scope: str, *, models: list[str] | None = None,
                         expires: str | None = None, rate: str | None = None) -> dict[str, Any]:
        """A new key as a dict; its `token` is in this answer only."""
        body = {"name": name, "scope": scope, "models": models or [], "expires": expires, "rate": rate}
        return dict(await self._call("POST", "/api/v1/keys", json=body))

    async def list_keys(self) -> list[dict[str, Any]]:
        return list(await self._call("GET", "/api/v1/keys"))

    async def revoke_key(self, key_id: str) -> dict[str, Any]:
        return dict(await self._call("DELETE", f"/api/v1/keys/{_q(key_id)}"))

    async def audit(self, limit: int = 100, actor: str | None = None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit, **({"actor": actor} if actor else {})}
        return list(await self._call("GET", "/api/v1/audit", params=params))

    # --- traffic ---------------------------------------------------------------------------------------
    async def get_traffic(self, name: str) -> dict[str, Any]:
        """The model's split: `arms`, `shadow`, `sticky_header` (and `default` when there is none)."""
        return await self._call("GET", f"/api/v1/models/{_q(name)}/traffic")  # type: ignore[no-any-return]

    async def set_traffic(self, name: str, arms: dict[int, int], *, shadow: tuple[int, float] | None = None,
                          sticky_header: str | None = None) -> dict[str, Any]:
        """Split bare requests over versions, e.g. `set_traffic("m", {1: 90, 2: 10}, shadow=(3, 0.25))`."""
        body = {"arms": [{"version": int(v), "weight": int(w)} for v, w in arms.items()],
                "shadow": None if shadow is None else {"version": int(shadow[0]), "fraction": float(shadow[1])},
                "sticky_header": sticky_header}
        return await self._call("PUT", f"/api/v1/models/{_q(name)}/traffic", json=body)  # type: ignore[no-any-return]

    async def clear_traffic(self, name: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/api/v1/models/{_q(name)}/traffic")  # type: ignore[no-any-return]

    async def start_rollout(self, name: str, to: int, *, steps: list[int] | None = None,
                            interval_s: float | None = None, **thresholds: float) -> dict[str, Any]:
        """Start a progressive rollout to version `to` (thresholds: max_error_rate, max_p99_ratio, …)."""
        body: dict[str, Any] = {"to": int(to), **thresholds}
        if steps is not None:
            body["steps"] = list(steps)
        if interval_s is not None:
            body["interval_s"] = interval_s
        return await self._call("POST", f"/api/v1/models/{_q(name)}/rollout", json=body)  # type: ignore[no-any-return]

    async def rollout_status(self, name: str) -> dict[str, Any]:
        return await self._call("GET", f"/api/v1/models/{_q(name)}/rollout")  # type: ignore[no-any-return]

    async def pause_rollout(self, name: str) -> dict[str, Any]:
        return await self._call("POST", f"/api/v1/models/{_q(name)}/rollout/pause")  # type: ignore[no-any-return]

    async def resume_rollout(self, name: str) -> dict[str, Any]:
        return await self._call("POST", f"/api/v1/models/{_q(name)}/rollout/resume")  # type: ignore[no-any-return]

    async def abort_rollout(self, name: str) -> dict[str, Any]:
        return await self._call("POST", f"/api/v1/models/{_q(name)}/rollout/abort")  # type: ignore[no-any-return]

    async def promote_rollout(self, name: str) -> dict[str, Any]:
        return await self._call("POST", f"/api/v1/models/{_q(name)}/rollout/promote")  # type: ignore[no-any-return]
