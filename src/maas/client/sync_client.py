"""Client: the synchronous facade of AsyncClient, running it on a private event-loop thread."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from maas.client.async_client import AsyncClient
from maas.registry.entities import Model, ModelVersion

T = TypeVar("T")


class Client:
    """Same verbs as `maas.Registry`, over HTTP. Use as a context manager or call `close()`."""

    def __init__(self, url: str = "http://127.0.0.1:8000", **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="maas-client", daemon=True)
        self._thread.start()
        self._async: AsyncClient = self._run(self._make(url, kwargs))

    @staticmethod
    async def _make(url: str, kwargs: dict[str, Any]) -> AsyncClient:
        return AsyncClient(url, **kwargs)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # The same verbs as AsyncClient, spelled out so that they are typed (no __getattr__ forwarding).
    def list_models(self) -> list[Model]:
        return self._run(self._async.list_models())

    def get_model(self, name: str) -> Model:
        return self._run(self._async.get_model(name))

    def update_model(self, name: str, *, description: str | None = None, tags: dict[str, str] | None = None,
                     remove_tags: list[str] | None = None) -> Model:
        return self._run(self._async.update_model(name, description=description, tags=tags, remove_tags=remove_tags))

    def delete_model(self, name: str) -> None:
        self._run(self._async.delete_model(name))

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self._run(self._async.list_versions(name))

    def get(self, ref: str) -> ModelVersion:
        return self._run(self._async.get(ref))

    def archive(self, ref: str) -> ModelVersion:
        return self._run(self._async.archive(ref))

    def tag(self, ref: str, tags: dict[str, str] | None = None, remove: list[str] | None = None) -> ModelVersion:
        return self._run(self._async.tag(ref, tags, remove))

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        return self._run(self._async.set_alias(name, alias, version))

    def remove_alias(self, name: str, alias: str) -> None:
        self._run(self._async.remove_alias(name, alias))

    def import_file(self, path: str | os.PathLike[str], *, name: str, format: str = "auto", description: str = "",
                    tags: dict[str, str] | None = None, aliases: tuple[str, ...] | list[str] = (),
                    labels: list[str] | None = None, trust: bool = False,
                    allow_mismatch: bool = False, resumable: bool | None = None) -> ModelVersion:
        """Upload a model file; the server converts, verifies and registers it as the next version (large
        files over the resumable protocol, which survives a broken connection)."""
        return self._run(self._async.import_file(
            path, name=name, format=format, description=description, tags=tags, aliases=aliases, labels=labels,
            trust=trust, allow_mismatch=allow_mismatch, resumable=resumable))

    def upload_resumable(self, path: str | os.PathLike[str], *, name: str, fields: dict[str, str] | None = None,
                         background: bool = False, chunk_bytes: int = 32 * 1024 * 1024) -> dict[str, Any]:
        """Upload over tus and import: the version's record, or with `background` the job's."""
        return self._run(self._async.upload_resumable(path, name=name, fields=fields, background=background,
                                                      chunk_bytes=chunk_bytes))

    def download(self, ref: str, out: str | os.PathLike[str], role: str = "model.onnx") -> Path:
        return self._run(self._async.download(ref, out, role))

    # --- keys and audit (admin keys) ---
    def create_key(self, name: str, scope: str, *, models: list[str] | None = None,
                   expires: str | None = None, rate: str | None = None) -> dict[str, Any]:
        return self._run(self._async.create_key(name, scope, models=models, expires=expires, rate=rate))

    def list_keys(self) -> list[dict[str, Any]]:
        return self._run(self._async.list_keys())

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._run(self._async.revoke_key(key_id))

    def audit(self, limit: int = 100, actor: str | None = None) -> list[dict[str, Any]]:
        return self._run(self._async.audit(limit, actor))

    # --- traffic and rollouts ---
    def get_traffic(self, name: str) -> dict[str, Any]:
        return self._run(self._async.get_traffic(name))

    def set_traffic(self, name: str, arms: dict[int, int], *, shadow: tuple[int, float] | None = None,
                    sticky_header: str | None = None) -> dict[str, Any]:
        return self._run(self._async.set_traffic(name, arms, shadow=shadow, sticky_header=sticky_header))

    def clear_traffic(self, name: str) -> dict[str, Any]:
        return self._run(self._async.clear_traffic(name))

    def start_rollout(self, name: str, to: int, *, steps: list[int] | None = None,
                      interval_s: float | None = None, **thresholds: float) -> dict[str, Any]:
        return self._run(self._async.start_rollout(name, to, steps=steps, interval_s=interval_s, **thresholds))

    def rollout_status(self, name: str) -> dict[str, Any]:
        return self._run(self._async.rollout_status(name))

    def pause_rollout(self, name: str) -> dict[str, Any]:
        return self._run(self._async.pause_rollout(name))

    def resume_rollout(self, name: str) -> dict[str, Any]:
        return self._run(self._async.resume_rollout(name))

    def abort_rollout(self, name: str) -> dict[str, Any]:
        return self._run(self._async.abort_rollout(name))

    def promote_rollout(self, name: str) -> dict[str, Any]:
        return self._run(self._async.promote_rollout(name))

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self._async.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
