"""`maas jobs list|show|cancel|submit`: background work in the registry database, run by `maas serve`."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from maas.cli.context import console, err_console, fail, handle_errors, print_json, state
from maas.errors import InvalidArgument

jobs_app = typer.Typer(help="Background jobs (import, evaluate, optimize, train) run by `maas serve`.",
                       no_args_is_help=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _store():  # type: ignore[no-untyped-def]
    return state.registry().job_store()


def wait_for(job_id: str, timeout_s: float | None = None):  # type: ignore[no-untyped-def]
    """Follow a job until it finishes, with a progress bar on a terminal."""
    store = _store()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    job = store.get(job_id)
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  console=err_console, disable=not err_console.is_terminal) as bar:
        task = bar.add_task(job.kind, total=1.0)
        while not job.state.finished:
            if deadline is not None and time.monotonic() > deadline:
                fail(f"job {job_id} still {job.state} after {timeout_s:.0f}s", 8)
            bar.update(task, completed=job.progress, description=f"{job.kind}: {job.message}")
            time.sleep(0.25)
            job = store.get(job_id)
        bar.update(task, completed=job.progress)
    return job


def _show(job, json_: bool) -> None:  # type: ignore[no-untyped-def]
    if json_:
        return print_json(job.to_dict())
    console.print(f"[bold]{job.id}[/bold]  {job.kind}  {job.state}  {job.progress:.0%}  {job.message}")
    if job.error:
        console.print(f"  error: {job.error}", markup=False)
    if job.result:
        console.print("  result:", json.dumps(job.result, default=str)[:2000], markup=False)
    if job.log:
        console.print("  log (tail):\n" + "\n".join(job.log.splitlines()[-20:]), markup=False)


@jobs_app.command("list")
@handle_errors
def list_jobs(
    state_: Annotated[str | None, typer.Option("--state", help="queued, running, succeeded, failed, cancelled")] = None,
    limit: int = 50, json_: JsonFlag = False,
) -> None:
    """List recent jobs, newest first."""
    from maas.jobs import JobState

    try:
        wanted = JobState(state_) if state_ else None
    except ValueError:
        raise InvalidArgument(f"unknown job state {state_!r}") from None
    jobs = _store().list(wanted, limit)
    if json_:
        return print_json([j.to_dict(log_lines=0) for j in jobs])
    table = Table("id", "kind", "state", "progress", "message", "created")
    for j in jobs:
        created = j.created_at.strftime("%Y-%m-%d %H:%M:%S") if j.created_at else ""
        table.add_row(j.id, j.kind, str(j.state), f"{j.progress:.0%}", j.message[:60], created)
    console.print(table)


@jobs_app.command("show")
@handle_errors
def show(job_id: str, wait: Annotated[bool, typer.Option("--wait", help="Follow until it finishes.")] = False,
         timeout: Annotated[float | None, typer.Option(help="With --wait: give up after this many seconds.")] = None,
         json_: JsonFlag = False) -> None:
    """Show a job: state, progress, log tail, result or error."""
    job = wait_for(job_id, timeout) if wait else _store().get(job_id)
    _show(job, json_)
    if wait and str(job.state) != "succeeded":
        raise typer.Exit(1)


@jobs_app.command("cancel")
@handle_errors
def cancel(job_id: str, json_: JsonFlag = False) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    _show(_store().cancel(job_id), json_)


@jobs_app.command("submit")
@handle_errors
def submit(kind: str, params: Annotated[str, typer.Option(help="Job parameters as a JSON object.")] = "{}",
           wait: Annotated[bool, typer.Option("--wait", help="Follow until it finishes.")] = False,
           json_: JsonFlag = False) -> None:
    """Queue a job for a running `maas serve` (kinds: evaluate, optimize, train)."""
    from maas.jobs.handlers import handlers
    from maas.jobs.runner import JobRunner

    try:
        body = json.loads(params)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"--params is not JSON: {exc}") from None
    reg = state.registry()
    runner = JobRunner(reg.job_store(), handlers(reg), created_by=reg.settings.user)  # validates, never runs
    job = runner.submit(kind, body)
    if wait:
        job = wait_for(job.id)
    _show(job, json_)
    if wait and str(job.state) != "succeeded":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
