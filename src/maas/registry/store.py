"""SqlModelStore: the registry's metadata in SQL. Every write is one transaction; readers see only `ready`
and `archived` versions, never `pending` ones."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from maas.errors import FailedPrecondition, NotFound
from maas.registry.database import make_engine, migrate
from maas.registry.entities import Artifact, Lineage, Model, ModelVersion, State
from maas.registry.orm import AliasRow, ArtifactRow, ModelRow, ReferenceRow, RevisionRow, VersionRow
from maas.types import ModelRef, Signature

VISIBLE = (State.READY.value, State.ARCHIVED.value)


class SqlModelStore:
    def __init__(self, url: str) -> None:
        self.engine: Engine = make_engine(url)
        migrate(self.engine)
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(write=True), expire_on_commit=False)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self._read() as s, s.begin():
            yield s

    @contextmanager
    def writing(self, bump: bool = True) -> Iterator[Session]:
        """A write transaction; `bump` marks a registry change that servers should follow."""
        with self._write() as s, s.begin():
            yield s
            if bump:
                _bump_revision(s)

    @staticmethod
    def changed(s: Session) -> None:
        """Inside a `writing(bump=False)` transaction: it turned out to be a change servers should follow."""
        _bump_revision(s)

    # --- models ----------------------------------------------------------------------------------------
    def list_models(self) -> list[Model]:
        with self.reading() as s:
            rows = s.scalars(select(ModelRow).options(selectinload(ModelRow.aliases)).order_by(ModelRow.name))
            latest = dict(
                s.execute(
                    select(VersionRow.model_id, func.max(VersionRow.version))
                    .where(VersionRow.state.in_(VISIBLE))
                    .group_by(VersionRow.model_id)
                ).all()
            )
            return [_model(r, latest.get(r.id)) for r in rows]

    def get_model(self, name: str) -> Model:
        with self.reading() as s:
            row = _model_row(s, name)
            latest = s.scalar(
                select(func.max(VersionRow.version)).where(
                    VersionRow.model_id == row.id, VersionRow.state.in_(VISIBLE)
                )
            )
            return _model(row, latest)

    def update_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None,
        remove_tags: list[str] | None = None,
    ) -> Model:
        with self.writing() as s:
            row = _model_row(s, name, lock=True)
            if description is not None:
                row.description = description
            if tags or remove_tags:
                merged = {**row.tags, **(tags or {})}
                for k in remove_tags or []:
                    merged.pop(k, None)
                row.tags = merged
        return self.get_model(name)

    def delete_model(self, name: str) -> None:
        with self.writing() as s:
            row = _model_row(s, name, lock=True)
            ids = select(VersionRow.id).where(VersionRow.model_id == row.id)
            s.execute(delete(ArtifactRow).where(ArtifactRow.version_id.in_(ids)))
            s.execute(delete(VersionRow).where(VersionRow.model_id == row.id))
            s.execute(delete(AliasRow).where(AliasRow.model_id == row.id))
            s.delete(row)

    def ensure_model(self, name: str) -> None:
        """Create the model row if absent; concurrent creators all succeed."""
        with self.reading() as s:
            if s.scalar(select(ModelRow.id).where(ModelRow.name == name)) is not None:
                return
        try:
            with self.writing() as s:
                if s.scalar(select(ModelRow.id).where(ModelRow.name == name)) is None:
                    s.add(ModelRow(name=name, description="", tags={}))
        except SqlIntegrityError:
            pass  # another writer created it first

    # --- versions --------------------------------------------------------------------------------------
    def insert_version(
        self, name: str, *, artifacts: list[Artifact], description: str, tags: dict[str, str],
        source_format: str, signature: Signature | None, config: dict[str, Any], metrics: dict[str, Any],
        lineage: Lineage, parity: dict[str, Any], created_by: str, aliases: tuple[str, ...] = (),
    ) -> int:
        """Allocate the next number and insert a `ready` version in one transaction (gap-free)."""
        self.ensure_model(name)
        with self.writing() as s:
            model = _model_row(s, name, lock=True)  # serialises writers of this model
            if lineage.parent is not None:
                _version_row(s, model, lineage.parent)
            number = (s.scalar(select(func.max(VersionRow.version)).where(VersionRow.model_id == model.id)) or 0) + 1
            row = VersionRow(
                model_id=model.id, version=number, state=State.READY.value, description=description,
                tags=tags, source_format=source_format,
                signature=signature.to_dict() if signature else None, config=config, metrics=metrics,
                parent_version=lineage.parent, transform=lineage.transform, transform_params=lineage.params,
                parity=parity, created_by=created_by,
            )
            row.artifacts = [ArtifactRow(role=a.role, sha256=a.sha256, size=a.size) for a in artifacts]
            s.add(row)
            s.flush()
            for alias in aliases:
                _set_alias(s, model, alias, number)
            return number

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.reading() as s:
            model = _model_row(s, name)
            rows = s.scalars(
                select(VersionRow)
                .where(VersionRow.model_id == model.id, VersionRow.state.in_(VISIBLE))
                .options(selectinload(VersionRow.artifacts))
                .order_by(VersionRow.version)
            )
            return [_version(r, model) for r in rows]

    def resolve(self, ref: ModelRef) -> ModelVersion:
        with self.reading() as s:
            model = _model_row(s, ref.name)
            if ref.version is not None:
                number = ref.version
            elif ref.alias is not None:
                number = _alias_target(s, model, ref.alias)
            else:
                number = _default_version(s, model)
            return _version(_version_row(s, model, number), model)

    def set_state(self, ref: ModelRef, state: State) -> None:
        with self.writing() as s:
            model = _model_row(s, ref.name, lock=True)
            number = ref.version if ref.version is not None else (
                _alias_target(s, model, ref.alias) if ref.alias else _default_version(s, model)
            )
            _version_row(s, model, number).state = state.value

    def update_version(
        self, name: str, number: int, *, tags: dict[str, str] | None = None,
        remove_tags: list[str] | None = None, metrics: dict[str, Any] | None = None,
        description: str | None = None,
    ) -> None:
        with self.writing() as s:
            model = _model_row(s, name, lock=True)
            row = _version_row(s, model, number)
            if tags or remove_tags:
                merged = {**row.tags, **(tags or {})}
                for k in remove_tags or []:
                    merged.pop(k, None)
                row.tags = merged
            if metrics:
                row.metrics = {**row.metrics, **metrics}
            if description is not None:
                row.description = description

    # --- aliases ---------------------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, number: int) -> None:
        with self.writing() as s:
            model = _model_row(s, name, lock=True)
            row = _version_row(s, model, number)
            if row.state != State.READY.value:
                raise FailedPrecondition(f"{name}:{number} is {row.state}; only a ready version can be aliased")
            _set_alias(s, model, alias, number)

    def remove_alias(self, name: str, alias: str) -> None:
        with self.writing() as s:
            model = _model_row(s, name, lock=True)
            gone = s.execute(delete(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == alias))
            if gone.rowcount == 0:  # type: ignore[attr-defined]
                raise NotFound(f"model {name!r} has no alias {alias!r}")

    # --- housekeeping ----------------------------------------------------------------------------------
    # --- reference statistics (monitor) ----------------------------------------------------------------
    def set_reference(self, name: str, number: int, data: dict[str, Any], source: str) -> None:
        with self.writing(bump=False) as s:  # not a serving change: servers need not reload
            row = _version_row(s, _model_row(s, name), number)
            s.merge(ReferenceRow(version_id=row.id, data=data, source=source, created_at=datetime.now(UTC)))

    def get_reference(self, name: str, number: int) -> tuple[dict[str, Any], str, datetime] | None:
        with self.reading() as s:
            row = _version_row(s, _model_row(s, name), number)
            ref = s.get(ReferenceRow, row.id)
            return None if ref is None else (ref.data, ref.source, _aware(ref.created_at) or ref.created_at)

    def referenced_blobs(self) -> set[str]:
        """Blobs of every version, and the staged inputs of jobs that have not finished."""
        from maas.jobs.orm import JobRow  # here: the jobs package imports this module

        with self.reading() as s:
            blobs = set(s.scalars(select(ArtifactRow.sha256).distinct()))
            blobs.update(s.scalars(select(JobRow.input_blob).where(
                JobRow.input_blob.is_not(None), JobRow.state.in_(("queued", "running")))))
            return {b for b in blobs if b}

    def delete_stale_pending(self, older_than: timedelta) -> int:
        cutoff = datetime.now(UTC) - older_than
        with self.writing() as s:
            ids = list(s.scalars(select(VersionRow.id).where(
                VersionRow.state == State.PENDING.value, VersionRow.created_at < cutoff)))
            if ids:
                s.execute(delete(ArtifactRow).where(ArtifactRow.version_id.in_(ids)))
                s.execute(delete(VersionRow).where(VersionRow.id.in_(ids)))
            return len(ids)

    def revision(self) -> int:
        with self.reading() as s:
            return int(s.scalar(select(RevisionRow.value).where(RevisionRow.id == 1)) or 0)


# --- helpers ---------------------------------------------------------------------------------------------

def _bump_revision(s: Session) -> None:
    s.execute(update(RevisionRow).where(RevisionRow.id == 1).values(value=RevisionRow.value + 1))


def _model_row(s: Session, name: str, lock: bool = False) -> ModelRow:
    q = select(ModelRow).where(ModelRow.name == name)
    if lock:
        q = q.with_for_update()
    row = s.scalar(q)
    if row is None:
        raise NotFound(f"model {name!r} not found")
    return row


def _version_row(s: Session, model: ModelRow, number: int) -> VersionRow:
    row = s.scalar(
        select(VersionRow)
        .where(VersionRow.model_id == model.id, VersionRow.version == number, VersionRow.state.in_(VISIBLE))
        .options(selectinload(VersionRow.artifacts))
    )
    if row is None:
        raise NotFound(f"version {model.name}:{number} not found")
    return row


def _alias_target(s: Session, model: ModelRow, alias: str) -> int:
    number = s.scalar(select(AliasRow.version).where(AliasRow.model_id == model.id, AliasRow.alias == alias))
    if number is None:
        raise NotFound(f"model {model.name!r} has no alias {alias!r}")
    return int(number)


def _default_version(s: Session, model: ModelRow) -> int:
    """`@production` if set, else the newest ready version."""
    prod = s.scalar(select(AliasRow.version).where(AliasRow.model_id == model.id, AliasRow.alias == "production"))
    if prod is not None:
        return int(prod)
    newest = s.scalar(select(func.max(VersionRow.version)).where(
        VersionRow.model_id == model.id, VersionRow.state == State.READY.value))
    if newest is None:
        raise NotFound(f"model {model.name!r} has no ready version")
    return int(newest)


def _set_alias(s: Session, model: ModelRow, alias: str, number: int) -> None:
    row = s.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.alias == alias))
    if row is None:
        s.add(AliasRow(model_id=model.id, alias=alias, version=number))
    else:
        row.version = number


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _model(row: ModelRow, latest: int | None) -> Model:
    return Model(
        name=row.name, description=row.description, tags=dict(row.tags),
        aliases={a.alias: a.version for a in sorted(row.aliases, key=lambda a: a.alias)},
        latest_version=latest, created_at=_aware(row.created_at),
    )


def _version(row: VersionRow, model: ModelRow) -> ModelVersion:
    return ModelVersion(
        model=model.name, version=row.version, state=State(row.state), description=row.description,
        tags=dict(row.tags),
        aliases=tuple(sorted(a.alias for a in model.aliases if a.version == row.version)),
        source_format=row.source_format,
        signature=Signature.from_dict(row.signature) if row.signature else None,
        config=dict(row.config), metrics=dict(row.metrics),
        lineage=Lineage(row.parent_version, row.transform, dict(row.transform_params)),
        parity=dict(row.parity),
        artifacts=tuple(Artifact(a.role, a.sha256, a.size) for a in row.artifacts),
        created_at=_aware(row.created_at), created_by=row.created_by,
    )
