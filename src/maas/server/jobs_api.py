"""Jobs over HTTP: submit, list, show (state, progress, log tail, result) and cancel background work."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from maas.config import Settings
from maas.errors import InvalidArgument
from maas.jobs import JobRunner, JobState
from maas.server.remote_trust import asks_trust, grant_trust


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(max_length=32)
    params: dict[str, Any] = Field(default_factory=dict)


def router(runner: JobRunner, settings: Settings) -> APIRouter:
    r = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

    @r.post("", status_code=202)
    def submit(body: JobRequest, request: Request) -> dict[str, Any]:
        """Queue a job: kinds `import` (of an uploaded blob), `evaluate`, `optimize`, `train`."""
        params = dict(body.params)
        if "trust" in params:  # any kind: a job handler must never see trust the caller was not granted
            params["trust"] = grant_trust(request, settings, asks_trust(params["trust"]))
        return runner.submit(body.kind, params).to_dict()

    @r.get("")
    def list_jobs(state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        try:
            wanted = JobState(state) if state else None
        except ValueError:
            raise InvalidArgument(f"unknown job state {str(state)[:20]!r}") from None
        return [j.to_dict(log_lines=0) for j in runner.store.list(wanted, limit)]

    @r.get("/{job_id}")
    def show(job_id: str, log_lines: int = 50) -> dict[str, Any]:
        return runner.store.get(job_id).to_dict(log_lines=max(0, min(log_lines, 10_000)))

    @r.post("/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        return runner.store.cancel(job_id).to_dict()

    return r
