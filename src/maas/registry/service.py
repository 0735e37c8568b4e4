"""Registry: the one entry point for models and versions, combining the metadata store and the blob store.

Publishing is crash-safe by ordering: blobs are written (temp, fsync, rename) and verified first; then a
single transaction allocates the version number and inserts the row as `ready`. A crash before the commit
leaves only unreferenced blobs or temp files, which `gc` removes; it can never leave a visible half version.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from maas.config import Settings
from maas.errors import FailedPrecondition, InvalidArgument
from maas.registry import explain_backgrounds
from maas.registry.artifacts import ArtifactStore
from maas.registry.entities import Artifact, GcReport, Lineage, Model, ModelVersion, State
from maas.registry.explain_backgrounds import ExplainBackground
from maas.registry.store import SqlModelStore
from maas.types import ModelRef, Signature, check_alias, check_name, check_tags

ROLE_RE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789._-")
MODEL_ROLE = "model.onnx"


def _check_role(role: str) -> str:
    if not role or len(role) > 128 or not set(role) <= ROLE_RE_CHARS or role.startswith("."):
        raise InvalidArgument(f"invalid artifact role {role[:80]!r}")
    return role


def as_ref(ref: str | ModelRef) -> ModelRef:
    return ref if isinstance(ref, ModelRef) else ModelRef.parse(ref)


class Registry:
    """Models, numbered immutable versions, aliases, tags, lineage and their verified artifacts."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.store = SqlModelStore(self.settings.database_url)
        self.artifacts = ArtifactStore(self.settings.artifacts_url, cache_dir=self.settings.home / "cache")

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, **overrides: Any) -> Registry:
        """Open (creating if needed) the registry under `home`, or as the MAAS_* environment says."""
        if home is not None:
            overrides["home"] = Path(home)
        return cls(Settings(**overrides))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- models ----------------------------------------------------------------------------------------
    def list_models(self) -> list[Model]:
        return self.store.list_models()

    def get_model(self, name: str) -> Model:
        return self.store.get_model(check_name(name))

    def update_model(
        self, name: str, *, description: str | None = None, tags: dict[str, str] | None = None,
        remove_tags: list[str] | None = None,
    ) -> Model:
        return self.store.update_model(
            check_name(name), description, check_tags(tags or {}), remove_tags
        )

    def delete_model(self, name: str) -> None:
        """Remove a model and all its versions; their blobs go at the next `gc`."""
        self.store.delete_model(check_name(name))

    # --- versions --------------------------------------------------------------------------------------
    def publish(
        self,
        name: str,
        files: Mapping[str, str | os.PathLike[str] | bytes],
        *,
        description: str = "",
        tags: dict[str, str] | None = None,
        signature: Signature | None = None,
        source_format: str = "",
        config: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        lineage: Lineage | None = None,
        parity: dict[str, Any] | None = None,
        aliases: tuple[str, ...] | list[str] = (),
    ) -> ModelVersion:
        """Store `files` (role -> path or bytes) and publish them as the model's next version."""
        check_name(name)
        tags = check_tags(tags or {})
        aliases = tuple(check_alias(a) for a in aliases)
        if not files:
            raise InvalidArgument("a version needs at least one artifact")
        stored: list[Artifact] = []
        for role, src in files.items():
            _check_role(role)
            sha, size = (
                self.artifacts.put_bytes(src) if isinstance(src, bytes) else self.artifacts.put_file(src)
            )
            self.artifacts.verify(sha)
            stored.append(Artifact(role, sha, size))
        number = self.store.insert_version(
            name, artifacts=stored, description=description, tags=tags, source_format=source_format,
            signature=signature, config=config or {}, metrics=metrics or {}, lineage=lineage or Lineage(),
            parity=parity or {}, created_by=self.settings.user, aliases=aliases,
        )
        return self.get(ModelRef(name, version=number))

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self.store.list_versions(check_name(name))

    def get(self, ref: str | ModelRef) -> ModelVersion:
        """Resolve `name`, `name:3` or `name@alias` to a version."""
        return self.store.resolve(as_ref(ref))

    def archive(self, ref: str | ModelRef) -> ModelVersion:
        """Retire a version: it stays readable by number but is no longer the default nor aliasable."""
        v = self.get(ref)
        if v.aliases:
            raise FailedPrecondition(
                f"{v.ref} is aliased as {', '.join(v.aliases)}; move or remove the alias first"
            )
        self.store.set_state(ModelRef(v.model, version=v.version), State.ARCHIVED)
        return self.get(ModelRef(v.model, version=v.version))

    def tag(
        self, ref: str | ModelRef, tags: dict[str, str] | None = None, remove: list[str] | None = None
    ) -> ModelVersion:
        v = self.get(ref)
        self.store.update_version(v.model, v.version, tags=check_tags(tags or {}), remove_tags=remove)
        return self.get(ModelRef(v.model, version=v.version))

    def add_metrics(self, ref: str | ModelRef, metrics: dict[str, Any]) -> ModelVersion:
        """Merge metrics into a version's record (metrics are measurements, not part of the artifact)."""
        v = self.get(ref)
        self.store.update_version(v.model, v.version, metrics=metrics)
        return self.get(ModelRef(v.model, version=v.version))

    # --- aliases ---------------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersion:
        from maas.types import parse_version

        number = parse_version(version)
        self.store.set_alias(check_name(name), check_alias(alias), number)
        return self.get(ModelRef(name, version=number))

    def remove_alias(self, name: str, alias: str) -> None:
        self.store.remove_alias(check_name(name), check_alias(alias))

    # --- artifacts -------------------------------------------------------------------------------------
    def artifact_path(self, version: ModelVersion, role: str = MODEL_ROLE) -> Path:
        """A local, digest-verified path to one of the version's files."""
        return self.artifacts.local_path(version.artifact(role).sha256)

    def read_artifact(self, version: ModelVersion, role: str = MODEL_ROLE) -> bytes:
        return self.artifacts.read_bytes(version.artifact(role).sha256)

    def verify(self, version: ModelVersion) -> None:
        for a in version.artifacts:
            self.artifacts.verify(a.sha256)

    # --- explanation background sets -------------------------------------------------------------------
    def set_explain_background(
        self, ref: str | ModelRef, arrays: Mapping[str, Any], *, source: str = ""
    ) -> ExplainBackground:
        """Store (or replace) the background set SHAP explanations of this version are measured against."""
        v = self.get(ref)
        return explain_backgrounds.put(self.store, self.artifacts, v.model, v.version, dict(arrays), source)

    def explain_background(self, ref: str | ModelRef) -> ExplainBackground | None:
        """The version's background set, or None when none was stored."""
        v = self.get(ref)
        return explain_backgrounds.get(self.store, self.artifacts, v.model, v.version)

    def revision(self) -> int:
        """A counter that changes on every registry write (for servers that follow changes)."""
        return self.store.revision()

    # --- housekeeping ----------------------------------------------------------------------------------
    def gc(self, grace: timedelta = timedelta(hours=1)) -> GcReport:
        """Remove what crashes and deletions left behind: temp files, unreferenced blobs, stale pending rows.

        Only files older than `grace` are touched, so a publish in flight in another process is safe.
        """
        cutoff = time.time() - grace.total_seconds()
        pending = self.store.delete_stale_pending(grace)
        temps = freed = blobs = 0
        for path, size, mtime in list(self.artifacts.iter_temp()):
            if mtime <= cutoff:
                self.artifacts.delete_temp(path)
                temps += 1
                freed += size
        referenced = self.store.referenced_blobs() | explain_backgrounds.referenced(self.store)
        for sha, size, mtime in list(self.artifacts.iter_blobs()):
            if sha not in referenced and mtime <= cutoff:
                self.artifacts.delete(sha)
                blobs += 1
                freed += size
        return GcReport(blobs, temps, pending, freed)
