"""JobStore: job rows in the registry database. Claiming is a conditional UPDATE, so several workers (or
several server processes sharing PostgreSQL) never run the same job twice."""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from maas.errors import FailedPrecondition, InvalidArgument, NotFound
from maas.jobs.entities import Job, JobState
from maas.jobs.orm import JobRow
from maas.registry.sealed_records import RecordSealer
from maas.registry.store import SqlModelStore

LOG_LIMIT = 64 * 1024  # bytes of log kept per job: the tail is what people read


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _job(r: JobRow, sealer: RecordSealer) -> Job:
    return Job(
        id=r.id, kind=r.kind, state=JobState(r.state), params=dict(sealer.open(r.params) or {}),
        progress=r.progress, message=r.message, log=r.log, result=sealer.open(r.result), error=r.error,
        cancel_requested=r.cancel_requested,
        created_at=_aware(r.created_at), started_at=_aware(r.started_at), finished_at=_aware(r.finished_at),
        created_by=r.created_by,
    )


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or len(job_id) != 32 or not all(c in "0123456789abcdef" for c in job_id):
        raise InvalidArgument(f"invalid job id {str(job_id)[:40]!r}")
    return job_id


class JobStore:
    def __init__(self, store: SqlModelStore, sealer: RecordSealer | None = None) -> None:
        self.store = store
        self.sealer = sealer or RecordSealer(None)  # seals params and results when the home is encrypted

    def submit(self, kind: str, params: dict[str, object], created_by: str = "", input_blob: str | None = None) -> Job:
        """Queue a job; `input_blob` names a staged upload it reads, which `gc` keeps until the job ends."""
        row = JobRow(id=uuid.uuid4().hex, kind=kind, state=JobState.QUEUED.value, params=self.sealer.seal(params),
                     created_by=created_by, progress=0.0, message="queued", log="", cancel_requested=False,
                     input_blob=input_blob)
        with self.store.writing(bump=False) as s:
            s.add(row)
        return self.get(row.id)

    def get(self, job_id: str) -> Job:
        with self.store.reading() as s:
            row = s.get(JobRow, check_job_id(job_id))
            if row is None:
                raise NotFound(f"job {job_id} not found")
            return _job(row, self.sealer)

    def list(self, state: JobState | None = None, limit: int = 100) -> list[Job]:
        q = select(JobRow).order_by(JobRow.created_at.desc()).limit(max(1, min(limit, 1000)))
        if state is not None:
            q = q.where(JobRow.state == state.value)
        with self.store.reading() as s:
            return [_job(r, self.sealer) for r in s.scalars(q)]

    def claim_next(self, kinds: set[str]) -> Job | None:
        """Move the oldest queued job of a known kind to `running`; None if there is none."""
        with self.store.reading() as s:
            ids = list(s.scalars(
                select(JobRow.id).where(JobRow.state == JobState.QUEUED.value, JobRow.kind.in_(kinds))
                .order_by(JobRow.created_at).limit(8)
            ))
        for job_id in ids:
            with self.store.writing(bump=False) as s:
                claimed = s.execute(  # type: ignore[attr-defined]
                    update(JobRow).where(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
                    .values(state=JobState.RUNNING.value, started_at=_now(), heartbeat_at=_now(), message="running")
                ).rowcount
            if claimed:
                return self.get(job_id)
        return None

    def report(self, job_id: str, progress: float | None = None, message: str | None = None,
               log: str | None = None) -> bool:
        """Record progress and log lines; returns whether cancellation was requested."""
        with self.store.writing(bump=False) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                return True
            row.heartbeat_at = _now()
            if progress is not None:
                row.progress = float(min(max(progress, 0.0), 1.0))
            if message is not None:
                row.message = message[:2000]
            if log:
                row.log = (row.log + log)[-LOG_LIMIT:]
            return bool(row.cancel_requested)

    def finish(self, job_id: str, state: JobState, *, result: dict[str, object] | None = None,
               error: str | None = None) -> None:
        with self.store.writing(bump=False) as s:
            row = s.get(JobRow, job_id)
            if row is None:
                return
            row.state = state.value
            row.result = self.sealer.seal(result)
            row.error = error
            row.finished_at = _now()
            row.message = {JobState.SUCCEEDED: "done", JobState.CANCELLED: "cancelled"}.get(state, "failed")
            if state is JobState.SUCCEEDED:
                row.progress = 1.0

    def cancel(self, job_id: str) -> Job:
        """Queued jobs are cancelled at once; running ones are asked to stop at their next check."""
        with self.store.writing(bump=False) as s:
            row = s.get(JobRow, check_job_id(job_id))
            if row is None:
                raise NotFound(f"job {job_id} not found")
            if JobState(row.state).finished:
                raise FailedPrecondition(f"job {job_id} already {row.state}")
            row.cancel_requested = True
            if row.state == JobState.QUEUED.value:
                row.state = JobState.CANCELLED.value
                row.finished_at = _now()
                row.message = "cancelled"
        return self.get(job_id)

    def heartbeat(self, job_ids: typing.List[str]) -> None:  # noqa: UP006 (`list` is a method here)
        if job_ids:
            with self.store.writing(bump=False) as s:
                s.execute(update(JobRow).where(JobRow.id.in_(job_ids)).values(heartbeat_at=_now()))

    def fail_orphans(self, stale_after: timedelta, reason: str) -> int:
        """Jobs left `running` by a worker that stopped beating (a crash, a restart): mark them failed."""
        cutoff = _now() - stale_after
        with self.store.writing(bump=False) as s:
            return int(s.execute(  # type: ignore[attr-defined]
                update(JobRow).where(JobRow.state == JobState.RUNNING.value, JobRow.heartbeat_at < cutoff)
                .values(state=JobState.FAILED.value, error=reason, message="failed", finished_at=_now())
            ).rowcount)
