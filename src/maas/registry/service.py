"""Registry: the one entry point for models and versions, combining the metadata store and the blob store.

Publishing is crash-safe by ordering: blobs are written (temp, fsync, rename) and verified first; then a
single transaction allocates the version number and inserts the row as `ready`. A crash before the commit
leaves only unreferenced blobs or temp files, which `gc` removes; it can never leave a visible half version.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas.config import Settings
from maas.errors import FailedPrecondition, InvalidArgument, MaasError
from maas.registry import encryption, explain_backgrounds, plaintext_dir, scratch
from maas.registry.blob_encrypted import EncryptedBlobStore
from maas.registry.blobs import BlobStore
from maas.registry.entities import Artifact, GcReport, Lineage, Model, ModelVersion, State
from maas.registry.explain_backgrounds import ExplainBackground
from maas.registry.metadata import MetadataStore, open_metadata_store
from maas.registry.sealed_records import RecordSealer
from maas.registry.uploads import UploadStore
from maas.types import ModelRef, Signature, check_alias, check_name, check_tags

if TYPE_CHECKING:
    from maas.registry.store import SqlModelStore
    from maas.security.key_provider import KeyProvider

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

    def __init__(
        self, settings: Settings | None = None, *, metadata: MetadataStore | None = None,
        blobs: BlobStore | None = None,
    ) -> None:
        """Stores default to those the settings' URLs name (artifacts sealed when the home is encrypted)."""
        self.settings = settings or Settings()
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.store: MetadataStore = metadata or open_metadata_store(self.settings.database_url)
        try:
            self.artifacts: BlobStore = blobs or encryption.open_artifacts(self.settings)
            if isinstance(self.artifacts, EncryptedBlobStore):
                plaintext_dir.clean_stale()  # decrypted files left by processes that died
        except BaseException:
            self.store.close()
            raise

    @classmethod
    def open(cls, home: str | os.PathLike[str] | None = None, **overrides: Any) -> Registry:
        """Open (creating if needed) the registry under `home`, or as the MAAS_* environment says."""
        if home is not None:
            overrides["home"] = Path(home)
        return cls(Settings(**overrides))

    def close(self) -> None:
        self.artifacts.close()
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
            sha, size = self._put(src)
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

    # --- reference statistics (monitor) ----------------------------------------------------------------
    def set_reference(self, ref: str | ModelRef, data: dict[str, Any], source: str = "") -> ModelVersion:
        """Store the reference statistics drift is judged against (replacing earlier ones)."""
        v = self.get(ref)
        self.store.set_reference(v.model, v.version, data, source)
        return v

    def get_reference(self, ref: str | ModelRef) -> tuple[dict[str, Any], str] | None:
        """The version's reference statistics and where they came from, or None if it has none."""
        v = self.get(ref)
        found = self.store.get_reference(v.model, v.version)
        return None if found is None else (found[0], found[1])

    # --- aliases ---------------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: int | str) -> ModelVersion:
        from maas.types import parse_version

        number = parse_version(version)
        self.store.set_alias(check_name(name), check_alias(alias), number)
        return self.get(ModelRef(name, version=number))

    def remove_alias(self, name: str, alias: str) -> None:
        self.store.remove_alias(check_name(name), check_alias(alias))

    # --- artifacts -------------------------------------------------------------------------------------
    def _put(self, src: str | os.PathLike[str] | bytes) -> tuple[str, int]:
        if isinstance(src, bytes):
            return self.artifacts.put_stream(io.BytesIO(src))
        with open(src, "rb") as f:
            return self.artifacts.put_stream(f)

    def artifact_path(self, version: ModelVersion, role: str = MODEL_ROLE) -> Path:
        """A local, digest-verified path to one of the version's files (for readers that need a file; an
        encrypted home decrypts it into a private memory-backed folder, so prefer `read_artifact`)."""
        return self._named(version, lambda: self.artifacts.open_path(version.artifact(role).sha256))

    def release_paths(self, version: ModelVersion) -> None:
        """Remove the decrypted copies `artifact_path` made of the version's files (an encrypted home keeps
        them in its private folder until then, or until the registry closes)."""
        if isinstance(self.artifacts, EncryptedBlobStore):
            for a in version.artifacts:
                self.artifacts.release_path(a.sha256)

    def read_artifact(self, version: ModelVersion, role: str = MODEL_ROLE) -> bytes:
        """The verified content of one of the version's files, in memory."""
        return self._named(version, lambda: self.artifacts.open_bytes(version.artifact(role).sha256))

    def verify(self, version: ModelVersion) -> None:
        for a in version.artifacts:
            self._named(version, lambda a=a: self.artifacts.verify(a.sha256))  # type: ignore[misc]

    def _named(self, version: ModelVersion, read: Callable[[], Any]) -> Any:
        """Run a read; a failure (tampered blob, wrong or missing key) names the version it concerns."""
        try:
            return read()
        except MaasError as exc:
            exc.message = f"{version.ref}: {exc.message}"
            exc.args = (exc.message,)
            raise

    # --- work folders -----------------------------------------------------------------------------------
    def work_dir(self, prefix: str) -> AbstractContextManager[Path]:
        """A folder for work on model bytes in the clear (conversion, optimization, export, upload staging),
        removed afterwards; memory-backed and private when the home is encrypted (see `scratch`)."""
        return scratch.work_dir(prefix, private=self.encrypted)

    def temp_dir(self, prefix: str) -> tempfile.TemporaryDirectory[str]:
        """Like `work_dir`, for plaintext that outlives one call (a loaded language model's weights)."""
        return scratch.temp_dir(prefix, private=self.encrypted)

    # --- staged inputs (uploads waiting for a background job) -------------------------------------------
    def stage_input(self, path: str | os.PathLike[str]) -> str:
        """Keep an upload as a blob (sealed like any artifact) until a job reads it; returns its id.

        Pass the id as the job's `input_blob`, so `gc` keeps it while the job is queued or running."""
        return self._put(path)[0]

    @contextmanager
    def staged_input(self, blob: str, filename: str) -> Iterator[Path]:
        """The staged upload as a file named `filename` in a private folder, removed afterwards."""
        private = plaintext_dir.PlaintextDir()
        try:
            path = private.path_for(Path(filename).name)
            with open(path, "wb") as out:
                if isinstance(self.artifacts, EncryptedBlobStore):
                    for chunk in self.artifacts.iter_plaintext(blob):
                        out.write(chunk)
                else:
                    shutil.copyfile(self.artifacts.open_path(blob), path)
            yield path
        finally:
            private.close()

    def uploads(self) -> UploadStore:
        """Resumable uploads staged in this home (their pieces are blobs, sealed when encrypted)."""
        return UploadStore(self.settings.home / "uploads", self.artifacts, RecordSealer(self.sealing_keys()),
                           self.settings.upload_expiry_s)

    def job_store(self) -> Any:
        """The jobs kept in this registry's database (parameters and results sealed when encrypted)."""
        from maas.jobs.store import JobStore

        return JobStore(self.sql_store(), RecordSealer(self.sealing_keys()))

    def sql_store(self) -> SqlModelStore:
        """The SQL store, for the records that live beside the models in the same database (jobs, API keys,
        the audit log, traffic); other metadata stores keep none of these."""
        from maas.registry.store import SqlModelStore

        if not isinstance(self.store, SqlModelStore):
            raise FailedPrecondition("this registry's metadata store is not a SQL database")
        return self.store

    def key_store(self) -> Any:
        """The API keys kept in this registry's database (maas.security.KeyStore)."""
        from maas.security.keys import KeyStore

        return KeyStore(self.sql_store())

    def audit_log(self) -> Any:
        """The audit log of control-plane changes kept in this registry's database."""
        from maas.security.audit import AuditLog

        return AuditLog(self.sql_store())

    # --- encryption at rest -----------------------------------------------------------------------------
    @property
    def encrypted(self) -> bool:
        return isinstance(self.artifacts, EncryptedBlobStore)

    def sealing_keys(self) -> KeyProvider | None:
        """The master keys that seal what this home stores beside its blobs (job records, prediction logs);
        None when the home is not encrypted."""
        return self.artifacts.keys if isinstance(self.artifacts, EncryptedBlobStore) else None

    def encryption_status(self) -> encryption.EncryptionStatus:
        return encryption.status(self.settings, self.artifacts)

    def enable_encryption(self, progress: encryption.Progress | None = None) -> int:
        """Seal every plaintext blob (resumable); new blobs are sealed from now on. Returns how many."""
        self.artifacts, sealed = encryption.enable(self.settings, self.artifacts, progress)
        return sealed

    def rotate_master_key(self, progress: encryption.Progress | None = None) -> tuple[str, int, list[str]]:
        """New master key; every data key re-wrapped under it (data untouched); old keys retired."""
        return encryption.rotate(self.artifacts, progress)

    # --- explanation background sets -------------------------------------------------------------------
    def set_explain_background(
        self, ref: str | ModelRef, arrays: Mapping[str, Any], *, source: str = ""
    ) -> ExplainBackground:
        """Store (or replace) the background set SHAP explanations of this version are measured against."""
        v = self.get(ref)
        return explain_backgrounds.put(self.sql_store(), self.artifacts, v.model, v.version, dict(arrays), source)

    def explain_background(self, ref: str | ModelRef) -> ExplainBackground | None:
        """The version's background set, or None when none was stored."""
        v = self.get(ref)
        return explain_backgrounds.get(self.sql_store(), self.artifacts, v.model, v.version)

    def revision(self) -> int:
        """A counter that changes on every registry write (for servers that follow changes)."""
        return self.store.revision()

    # --- housekeeping ----------------------------------------------------------------------------------
    def gc(self, grace: timedelta = timedelta(hours=1)) -> GcReport:
        """Remove what crashes and deletions left behind: temp files, unreferenced blobs, stale pending rows,
        resumable uploads past their expiry.

        Only files older than `grace` are touched, so a publish in flight in another process is safe; the
        pieces of uploads still on record, like the inputs of unfinished jobs, are kept whatever their age.
        """
        cutoff = time.time() - grace.total_seconds()
        pending = self.store.delete_stale_pending(grace)
        uploads = self.uploads()
        expired = uploads.expire()
        temps = freed = blobs = 0
        for path, size, mtime in list(self.artifacts.iter_temp()):
            if mtime <= cutoff:
                self.artifacts.delete_temp(path)
                temps += 1
                freed += size
        referenced = self.store.referenced_blobs()  # versions' blobs and the inputs of unfinished jobs
        referenced |= explain_backgrounds.referenced(self.sql_store())
        referenced |= uploads.referenced_blobs()
        for info in list(self.artifacts.iter_blobs()):
            if info.sha256 not in referenced and info.mtime <= cutoff:
                self.artifacts.delete(info.sha256)
                blobs += 1
                freed += info.size
        return GcReport(blobs, temps, pending, freed, expired)
