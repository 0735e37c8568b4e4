"""The job record as the rest of maas sees it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    state: JobState
    params: dict[str, Any] = field(default_factory=dict)
    progress: float = 0.0
    message: str = ""
    log: str = ""
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel_requested: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    created_by: str = ""

    def to_dict(self, log_lines: int | None = 50) -> dict[str, Any]:
        d = asdict(self)
        d["state"] = str(self.state)
        if log_lines is not None:
            d["log"] = "\n".join(self.log.splitlines()[-log_lines:])
        for k in ("created_at", "started_at", "finished_at"):
            d[k] = d[k].isoformat() if d[k] else None
        return d
