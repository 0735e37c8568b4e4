"""The metadata store seam: what `Registry` asks of the store that keeps models, versions and aliases.

Chosen by URL scheme: `sqlite://…` and `postgresql…://…` are SQL stores; `memory://` is SQLite in memory,
for unit tests. (MLflow picks its tracking and registry stores the same way.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from maas.errors import InvalidArgument
from maas.registry.entities import Artifact, Lineage, Model, ModelVersion, State
from maas.types import ModelRef, Signature


class MetadataStore(Protocol):
    def close(self) -> None: ...
    def list_models(self) -> list[Model]: ...
    def get_model(self, name: str) -> Model: ...
    def update_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None,
        remove_tags: list[str] | None = None,
    ) -> Model: ...
    def delete_model(self, name: str) -> None: ...
    def insert_version(
        self, name: str, *, artifacts: list[Artifact], description: str, tags: dict[str, str],
        source_format: str, signature: Signature | None, config: dict[str, Any], metrics: dict[str, Any],
        lineage: Lineage, parity: dict[str, Any], created_by: str, aliases: tuple[str, ...] = (),
    ) -> int: ...
    def list_versions(self, name: str) -> list[ModelVersion]: ...
    def resolve(self, ref: ModelRef) -> ModelVersion: ...
    def set_state(self, ref: ModelRef, state: State) -> None: ...
    def update_version(
        self, name: str, number: int, *, tags: dict[str, str] | None = None,
        remove_tags: list[str] | None = None, metrics: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> None: ...
    def set_alias(self, name: str, alias: str, number: int) -> None: ...
    def remove_alias(self, name: str, alias: str) -> None: ...
    def referenced_blobs(self) -> set[str]: ...
    def delete_stale_pending(self, older_than: timedelta) -> int: ...
    def revision(self) -> int: ...


def open_metadata_store(url: str) -> MetadataStore:
    from maas.registry.store import SqlModelStore

    if url in ("memory://", "memory:"):
        return SqlModelStore("sqlite://")
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme in ("sqlite", "postgresql", "postgres"):
        return SqlModelStore(url)
    raise InvalidArgument(f"unsupported database URL scheme {scheme[:40]!r}: expected sqlite, postgresql or memory")
