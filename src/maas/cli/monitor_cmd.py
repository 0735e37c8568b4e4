"""`maas monitor` (live view of a running server), `maas monitor drift` and `maas monitor reference`: thin
wrappers over `maas.monitor`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from maas.cli.context import console, handle_errors, print_json, state
from maas.errors import InvalidArgument, Unavailable

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

monitor_app = typer.Typer(help="Watch served models: live view, drift, reference statistics.",
                          invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(monitor_app, name="monitor")


@monitor_app.callback()
@handle_errors
def live(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option(help="The server (default http://HOST:HTTP_PORT from settings).")] = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.1)] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Print one view and exit.")] = False,
) -> None:
    """Live terminal view of every served model: requests/s, p50/p99, errors, queue depth, drift verdict."""
    if ctx.invoked_subcommand is not None:
        return
    from maas.monitor import live as figures

    settings = state.settings()
    base = (url or f"http://{settings.host}:{settings.http_port}").rstrip("/")
    headers = {"Authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
    before = figures.parse(_scrape(base, headers))
    started = time.monotonic()
    if once:
        time.sleep(interval)
        console.print(_table(figures.lines(before, figures.parse(_scrape(base, headers)),
                                           time.monotonic() - started), base))
        return
    with Live(_table([], base), console=console, refresh_per_second=4) as view:
        try:
            while True:
                time.sleep(interval)
                after, now = figures.parse(_scrape(base, headers)), time.monotonic()
                view.update(_table(figures.lines(before, after, now - started), base))
                before, started = after, now
        except KeyboardInterrupt:
            pass


def _scrape(base: str, headers: dict[str, str]) -> str:
    import httpx

    try:
        response = httpx.get(f"{base}/metrics", headers=headers, timeout=5.0)
    except httpx.HTTPError as exc:
        raise Unavailable(f"cannot reach {base}: {exc}") from exc
    if response.status_code != 200:
        raise Unavailable(f"{base}/metrics answered {response.status_code}")
    return response.text


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(rows: list, base: str) -> Table:  # type: ignore[type-arg]
    table = Table("model", "version", "req/s", "p50 ms", "p99 ms", "errors", "queue", "drift",
                  title=f"maas at {base}")
    for r in rows:
        table.add_row(r.model, r.version, f"{r.requests_per_s:.1f}", _ms(r.p50_ms), _ms(r.p99_ms),
                      f"{r.errors:.0f}", f"{r.queue_depth:.0f}", r.drift)
    return table


@monitor_app.command("drift")
@handle_errors
def drift(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[str | None, typer.Option("--version", help="Version number (default: the served one).")] = None,
    since: Annotated[str, typer.Option("--since", help="Window of logged requests: 30m, 1h, 1d…")] = "1h",
    method: Annotated[str | None, typer.Option(help="Force one test: ks, chisquare, z, wasserstein, "
                                               "jensenshannon, psi.")] = None,
    report: Annotated[Path | None, typer.Option("--report", help="Write drift.json and drift.html here.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Compare the logged requests of NAME with its reference statistics, feature by feature."""
    from maas.monitor.log_writer import open_log_writer
    from maas.monitor.report import drift_report
    from maas.types import check_name

    check_name(name)
    settings = state.settings()
    registry = state.registry()
    writer = open_log_writer(settings.prediction_log_url, registry.sealing_keys())
    result = drift_report(registry, writer, name, version, since, method=method)
    if report is not None:
        from maas.monitor.html_report import write_report

        write_report(result, report)
    if json_:
        return print_json(result.to_dict())
    table = Table("feature", "kind", "test", "value", "threshold", "drift")
    tests = [*result.features, *([result.prediction] if result.prediction else [])]
    for t in tests:
        table.add_row(t.column, t.kind, t.method, f"{t.statistic:.4g}", f"{t.threshold:g}",
                      "[red]yes[/red]" if t.drifted else "no")
    console.print(table)
    verdict = "[red]drift[/red]" if result.dataset_drift else "no drift"
    console.print(f"{result.model}:{result.version}: {verdict} — {len(result.drifted_features)} of "
                  f"{len(result.features)} features drifted; {result.current_rows} rows since {result.since}; "
                  f"outliers {result.outliers['outliers']} of {result.outliers['requests']} requests")
    if report is not None:
        console.print(f"report: {report / 'drift.html'}")


@monitor_app.command("reference")
@handle_errors
def reference(
    ref: Annotated[str, typer.Argument(help="Model reference: name, name:3 or name@alias.")],
    data: Annotated[str, typer.Option("--data", help="A .npz, .npy or .csv file, an image folder, or sklearn:NAME.")],
    target: Annotated[str | None, typer.Option("--target", help="CSV column with targets (left out).")] = None,
    json_: JsonFlag = False,
) -> None:
    """Set the reference statistics of a version from a data set (its inputs and the version's predictions)."""
    from maas.evaluate.datasets import load_dataset
    from maas.monitor.reference import reference_from_data

    dataset = load_dataset(data, target=target)
    if len(dataset.x) == 0:
        raise InvalidArgument(f"{data}: no rows")
    registry = state.registry()
    doc = reference_from_data(registry, ref, dataset.x, source=dataset.name)
    summary = {"ref": registry.get(ref).ref, "source": dataset.name, "rows": doc["rows"],
               "sampled": doc["sampled"], "features": sorted(doc["columns"])}
    if json_:
        return print_json(summary)
    console.print(f"reference of {summary['ref']}: {doc['sampled']} of {doc['rows']} rows of {dataset.name}, "
                  f"{len(doc['columns'])} features")
