"""JobRunner: a bounded pool of worker threads taking queued jobs from the database.

Jobs are CPU-bound Python (conversion, training), so they run in threads off the event loop. The queue
lives in the database: jobs submitted while no runner is up wait there; a job whose worker stopped beating
(crash, restart) is marked failed with the reason instead of staying `running` forever.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from maas.errors import InvalidArgument, MaasError
from maas.jobs.entities import Job, JobState
from maas.jobs.store import JobStore

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised inside a job when its cancellation was requested."""


class JobContext:
    """What a running job gets: progress and log reporting, and the cancellation check."""

    def __init__(self, store: JobStore, job: Job) -> None:
        self.store = store
        self.job = job

    def progress(self, fraction: float, message: str | None = None) -> None:
        if self.store.report(self.job.id, progress=fraction, message=message):
            raise Cancelled()

    def log(self, line: str) -> None:
        if self.store.report(self.job.id, log=line.rstrip("\n") + "\n"):
            raise Cancelled()

    def check_cancelled(self) -> None:
        if self.store.report(self.job.id):
            raise Cancelled()


Handler = Callable[[dict[str, Any], JobContext], dict[str, Any]]
ORPHAN_REASON = "the worker running this job stopped (server restart or crash); submit it again"


class JobRunner:
    def __init__(self, store: JobStore, handlers: dict[str, Handler], *, max_concurrent: int = 1,
                 poll_interval_s: float = 0.5, stale_after: timedelta = timedelta(seconds=60),
                 created_by: str = "") -> None:
        if max_concurrent < 1:
            raise InvalidArgument("max_concurrent must be at least 1")
        self.store = store
        self.handlers = handlers
        self.max_concurrent = max_concurrent
        self.poll_interval_s = poll_interval_s
        self.stale_after = stale_after
        self.created_by = created_by
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._dispatcher: threading.Thread | None = None

    def submit(self, kind: str, params: dict[str, Any], input_blob: str | None = None) -> Job:
        if kind not in self.handlers:
            raise InvalidArgument(f"unknown job kind {kind[:40]!r}; expected one of {sorted(self.handlers)}")
        if not isinstance(params, dict):
            raise InvalidArgument("job params must be an object")
        job = self.store.submit(kind, params, self.created_by, input_blob=input_blob)
        self._wake.set()
        return job

    def start(self) -> None:
        self._stop.clear()
        self._dispatcher = threading.Thread(target=self._dispatch, name="maas-jobs", daemon=True)
        self._dispatcher.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop taking jobs; wait up to `timeout_s` for running ones (those still running are failed on the
        next start, once their heartbeat is stale)."""
        self._stop.set()
        self._wake.set()
        if self._dispatcher is not None:
            self._dispatcher.join(timeout=timeout_s)
        with self._lock:
            threads = list(self._running.values())
        for t in threads:
            t.join(timeout=timeout_s)

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    # --- internals ---------------------------------------------------------------------------------------
    def _dispatch(self) -> None:
        """Every `poll_interval_s` (or at once when a job is submitted or ends here): claim queued jobs. The
        heartbeat of running jobs and the search for orphans (both writes) run four times per `stale_after`,
        which is all a stale heartbeat needs: every tick, they were most of an idle server's job-thread CPU."""
        housekeeping_s = self.stale_after.total_seconds() / 4
        last_housekeeping = -math.inf
        while not self._stop.is_set():
            try:
                now = time.monotonic()
                if now - last_housekeeping >= housekeeping_s:
                    last_housekeeping = now
                    with self._lock:
                        active = list(self._running)
                    self.store.heartbeat(active)
                    failed = self.store.fail_orphans(self.stale_after, ORPHAN_REASON)
                    if failed:
                        log.warning("marked %s orphaned job(s) failed", failed)
                while self.running() < self.max_concurrent and not self._stop.is_set():
                    job = self.store.claim_next(set(self.handlers))
                    if job is None:
                        break
                    t = threading.Thread(target=self._run, args=(job,), name=f"maas-job-{job.id[:8]}", daemon=True)
                    with self._lock:
                        self._running[job.id] = t
                    t.start()
            except Exception:  # the database may be briefly unavailable: retry on the next tick
                log.exception("job dispatcher tick failed")
            self._wake.wait(self.poll_interval_s)
            self._wake.clear()

    def _run(self, job: Job) -> None:
        ctx = JobContext(self.store, job)
        log.info("job %s (%s) started", job.id, job.kind)
        try:
            result = self.handlers[job.kind](dict(job.params), ctx)
            self.store.finish(job.id, JobState.SUCCEEDED, result=result)
            log.info("job %s succeeded", job.id)
        except Cancelled:
            self.store.finish(job.id, JobState.CANCELLED, error="cancelled on request")
        except MaasError as exc:
            self.store.finish(job.id, JobState.FAILED, error=f"{exc.code}: {exc.message}")
        except Exception as exc:
            log.exception("job %s failed", job.id)
            self.store.report(job.id, log=traceback.format_exc())
            self.store.finish(job.id, JobState.FAILED, error=f"INTERNAL: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running.pop(job.id, None)
            self._wake.set()
