"""The job runner on the real registry database (SQLite and PostgreSQL): queue, progress, cancel, failures,
bounded concurrency and what a restart does to queued and running jobs."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest

from maas.errors import FailedPrecondition, InvalidArgument, NotFound
from maas.jobs import JobContext, JobRunner, JobState, JobStore
from maas.registry import Registry


def wait_for(store: JobStore, job_id: str, states: set[JobState], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = store.get(job_id)
        if job.state in states:
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} stayed {store.get(job_id).state}")


def count(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    n = int(params["n"])
    for i in range(n):
        ctx.progress((i + 1) / n, f"step {i + 1}/{n}")
        ctx.log(f"did step {i + 1}")
    return {"sum": n * (n + 1) // 2}


def block(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    while True:
        ctx.check_cancelled()
        time.sleep(0.01)


def boom(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    raise InvalidArgument("the data set has no column 'label'")


def crash(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    raise ZeroDivisionError("oops")


HANDLERS = {"count": count, "block": block, "boom": boom, "crash": crash}


@pytest.fixture
def store(registry: Registry) -> JobStore:
    return JobStore(registry.store)


@pytest.fixture
def runner(store: JobStore) -> Any:
    r = JobRunner(store, HANDLERS, max_concurrent=2, poll_interval_s=0.05)
    r.start()
    yield r
    r.stop(timeout_s=5)


def test_job_runs_with_progress_log_and_result(runner: JobRunner, store: JobStore) -> None:
    job = runner.submit("count", {"n": 5})
    assert job.state is JobState.QUEUED
    done = wait_for(store, job.id, {JobState.SUCCEEDED})
    assert done.result == {"sum": 15} and done.progress == 1.0
    assert "did step 5" in done.log and done.started_at and done.finished_at
    assert store.list()[0].id == job.id


def test_failures_keep_the_reason(runner: JobRunner, store: JobStore) -> None:
    a, b = runner.submit("boom", {}), runner.submit("crash", {})
    assert wait_for(store, a.id, {JobState.FAILED}).error == "INVALID_ARGUMENT: the data set has no column 'label'"
    failed = wait_for(store, b.id, {JobState.FAILED})
    assert "ZeroDivisionError" in failed.error and "Traceback" in failed.log


def test_cancel_running_and_queued(store: JobStore) -> None:
    runner = JobRunner(store, HANDLERS, max_concurrent=1, poll_interval_s=0.05)
    runner.start()
    try:
        running = runner.submit("block", {})
        wait_for(store, running.id, {JobState.RUNNING})
        queued = runner.submit("count", {"n": 1})
        time.sleep(0.2)
        assert store.get(queued.id).state is JobState.QUEUED  # bounded: one at a time
        assert store.cancel(queued.id).state is JobState.CANCELLED
        store.cancel(running.id)
        assert wait_for(store, running.id, {JobState.CANCELLED}).error == "cancelled on request"
        with pytest.raises(FailedPrecondition):
            store.cancel(running.id)
    finally:
        runner.stop(timeout_s=5)


def test_bad_submissions(runner: JobRunner, store: JobStore) -> None:
    with pytest.raises(InvalidArgument, match="unknown job kind"):
        runner.submit("rm -rf", {})
    with pytest.raises(InvalidArgument):
        store.get("../../etc")
    with pytest.raises(NotFound):
        store.get("0" * 32)


def test_queued_jobs_survive_a_restart_and_running_ones_fail_with_reason(store: JobStore) -> None:
    # A "previous server": claims a job and dies without finishing it (no heartbeat any more).
    orphan = store.submit("block", {})
    assert store.claim_next({"block"}).id == orphan.id
    waiting = store.submit("count", {"n": 2})  # queued while no runner is up

    runner = JobRunner(store, HANDLERS, poll_interval_s=0.05, stale_after=timedelta(seconds=0.2))
    time.sleep(0.3)
    runner.start()
    try:
        assert wait_for(store, waiting.id, {JobState.SUCCEEDED}).result == {"sum": 3}
        failed = wait_for(store, orphan.id, {JobState.FAILED})
        assert "restart or crash" in failed.error
    finally:
        runner.stop(timeout_s=5)


def test_two_runners_never_run_a_job_twice(store: JobStore) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def record(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        with lock:
            seen.append(ctx.job.id)
        return {}

    runners = [JobRunner(store, {"record": record}, max_concurrent=2, poll_interval_s=0.01) for _ in range(2)]
    jobs = [runners[i % 2].submit("record", {}) for i in range(12)]
    for r in runners:
        r.start()
    try:
        for j in jobs:
            wait_for(store, j.id, {JobState.SUCCEEDED})
    finally:
        for r in runners:
            r.stop(timeout_s=5)
    assert sorted(seen) == sorted(j.id for j in jobs)
