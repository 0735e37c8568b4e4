"""Explanation background sets stored with a version: the arrays as one `.npz` blob in the artifact store
(no pickle), its row in `explain_backgrounds`. One set per version; setting it again replaces it."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from maas.errors import InvalidArgument, NotFound
from maas.registry.blobs import BlobStore
from maas.registry.orm import Base, ModelRow, VersionRow, utcnow
from maas.registry.store import VISIBLE, SqlModelStore

MAX_BACKGROUND_BYTES = 64 * 1024 * 1024


class ExplainBackgroundRow(Base):
    __tablename__ = "explain_backgrounds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("versions.id", ondelete="CASCADE"), nullable=False, unique=True
    )
    sha256: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    rows: Mapped[int] = mapped_column(Integer, nullable=False)
    columns: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    source: Mapped[str] = mapped_column(String(256), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


@dataclass(frozen=True)
class ExplainBackground:
    """A version's background set: arrays by input name, each [rows, ...]."""

    ref: str
    arrays: dict[str, np.ndarray]
    source: str
    sha256: str

    @property
    def rows(self) -> int:
        return int(next(iter(self.arrays.values())).shape[0])


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    if not arrays:
        raise InvalidArgument("a background set needs at least one array")
    rows = {int(np.asarray(a).shape[0]) if np.ndim(a) else -1 for a in arrays.values()}
    if len(rows) != 1 or rows == {-1} or rows == {0}:
        raise InvalidArgument("every array of a background set needs the same, non-zero number of rows")
    for name, a in arrays.items():
        if not np.issubdtype(np.asarray(a).dtype, np.number):
            raise InvalidArgument(f"background array {name!r} is not numeric")
    buf = io.BytesIO()
    np.savez(buf, **{name: np.asarray(a) for name, a in arrays.items()})  # type: ignore[arg-type]
    data = buf.getvalue()
    if len(data) > MAX_BACKGROUND_BYTES:
        raise InvalidArgument(f"a background set is limited to {MAX_BACKGROUND_BYTES} bytes; sample fewer rows")
    return data


def decode(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _version_id(s: Any, model: str, number: int) -> int:
    vid = s.scalar(
        select(VersionRow.id).join(ModelRow, VersionRow.model_id == ModelRow.id).where(
            ModelRow.name == model, VersionRow.version == number, VersionRow.state.in_(VISIBLE)
        )
    )
    if vid is None:
        raise NotFound(f"version {model}:{number} not found")
    return int(vid)


def put(
    store: SqlModelStore, blobs: BlobStore, model: str, number: int, arrays: dict[str, np.ndarray], source: str
) -> ExplainBackground:
    data = encode(arrays)
    sha, _size = blobs.put_stream(io.BytesIO(data))
    blobs.verify(sha)
    columns = {name: [int(d) for d in np.asarray(a).shape[1:]] for name, a in arrays.items()}
    rows = int(next(iter(arrays.values())).shape[0])
    with store.writing(bump=False) as s:
        vid = _version_id(s, model, number)
        row = s.scalar(select(ExplainBackgroundRow).where(ExplainBackgroundRow.version_id == vid))
        if row is None:
            s.add(ExplainBackgroundRow(version_id=vid, sha256=sha, rows=rows, columns=columns, source=source[:256]))
        else:
            row.sha256, row.rows, row.columns, row.source, row.created_at = sha, rows, columns, source[:256], utcnow()
    return ExplainBackground(f"{model}:{number}", decode(data), source[:256], sha)


def get(store: SqlModelStore, blobs: BlobStore, model: str, number: int) -> ExplainBackground | None:
    with store.reading() as s:
        vid = _version_id(s, model, number)
        row = s.scalar(select(ExplainBackgroundRow).where(ExplainBackgroundRow.version_id == vid))
        if row is None:
            return None
        sha, source = row.sha256, row.source
    return ExplainBackground(f"{model}:{number}", decode(blobs.open_bytes(sha)), source, sha)


def referenced(store: SqlModelStore) -> set[str]:
    with store.reading() as s:
        return set(s.scalars(select(ExplainBackgroundRow.sha256).distinct()))
