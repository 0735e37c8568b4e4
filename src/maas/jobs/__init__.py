"""Background jobs (import, optimize, evaluate, train): persisted in the registry database, run by a bounded
pool of worker threads, cancellable, and never silently lost across a restart."""

from maas.jobs.entities import Job, JobState
from maas.jobs.runner import JobContext, JobRunner
from maas.jobs.store import JobStore

__all__ = ["Job", "JobContext", "JobRunner", "JobState", "JobStore"]
