"""Domain records of the registry: frozen values, kept apart from the ORM rows that store them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from maas.types import Signature


class State(StrEnum):
    PENDING = "pending"  # being written; never visible to readers
    READY = "ready"
    ARCHIVED = "archived"


@dataclass(frozen=True)
class Artifact:
    """One stored file of a version: its role (e.g. `model.onnx`), digest and size."""

    role: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Lineage:
    """Where a version came from: its parent version and the transform that made it."""

    parent: int | None = None
    transform: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelVersion:
    model: str
    version: int
    state: State
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    source_format: str = ""
    signature: Signature | None = None
    config: dict[str, Any] = field(default_factory=dict)  # max_batch_size, labels, processing, batching…
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    parity: dict[str, Any] = field(default_factory=dict)
    artifacts: tuple[Artifact, ...] = ()
    created_at: datetime | None = None
    created_by: str = ""

    @property
    def ref(self) -> str:
        return f"{self.model}:{self.version}"

    def artifact(self, role: str) -> Artifact:
        for a in self.artifacts:
            if a.role == role:
                return a
        from maas.errors import NotFound

        raise NotFound(f"version {self.ref} has no artifact {role!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = str(self.state)
        d["signature"] = self.signature.to_dict() if self.signature else None
        d["aliases"] = list(self.aliases)
        d["artifacts"] = [asdict(a) for a in self.artifacts]
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelVersion:
        """Inverse of `to_dict` (the SDK rebuilds records received over HTTP)."""
        lin = d.get("lineage") or {}
        return cls(
            model=d["model"], version=int(d["version"]), state=State(d["state"]),
            description=d.get("description", ""), tags=dict(d.get("tags") or {}),
            aliases=tuple(d.get("aliases") or ()), source_format=d.get("source_format", ""),
            signature=Signature.from_dict(d["signature"]) if d.get("signature") else None,
            config=dict(d.get("config") or {}), metrics=dict(d.get("metrics") or {}),
            lineage=Lineage(lin.get("parent"), lin.get("transform"), dict(lin.get("params") or {})),
            parity=dict(d.get("parity") or {}),
            artifacts=tuple(Artifact(a["role"], a["sha256"], int(a["size"])) for a in d.get("artifacts") or ()),
            created_at=datetime.fromisoformat(d["created_at"]) if d.get("created_at") else None,
            created_by=d.get("created_by", ""),
        )


@dataclass(frozen=True)
class Model:
    name: str
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, int] = field(default_factory=dict)
    latest_version: int | None = None
    created_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat() if self.created_at else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Model:
        return cls(
            name=d["name"], description=d.get("description", ""), tags=dict(d.get("tags") or {}),
            aliases={k: int(v) for k, v in (d.get("aliases") or {}).items()},
            latest_version=d.get("latest_version"),
            created_at=datetime.fromisoformat(d["created_at"]) if d.get("created_at") else None,
        )


@dataclass(frozen=True)
class GcReport:
    removed_blobs: int = 0
    removed_temp_files: int = 0
    removed_pending_versions: int = 0
    freed_bytes: int = 0
    removed_uploads: int = 0  # resumable uploads past their expiry

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
