"""`maas train CONFIG.yaml`: run maas.training with progress bars on stderr and print the result; no logic here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from maas.cli.context import console, err_console, handle_errors, print_json, state


def register(app: typer.Typer) -> None:
    app.command("train")(train)


class _Bars:
    """Turns the pipeline's progress events into rich bars (trials, epochs) on a terminal; silent otherwise."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.live = err_console.is_terminal
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err_console, transient=True,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Bars:
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, event: dict[str, Any]) -> None:
        if not self.live:
            return
        kind = event["event"]
        if kind == "stage":
            if event["stage"] == "search":
                self.tasks["trials"] = self.progress.add_task("search", total=event.get("trials"))
            elif event["stage"] == "fit":
                self.tasks["epochs"] = self.progress.add_task("fit", total=None)
            self.progress.console.log(f"stage: {event['stage']}")
        elif kind == "trial" and "trials" in self.tasks:
            self.progress.update(self.tasks["trials"], advance=1,
                                 description=f"search (trial {event['number']}: {event['state']})")
        elif kind == "epoch" and "epochs" in self.tasks:
            loss = event.get("val_loss", event.get("loss"))
            self.progress.update(self.tasks["epochs"], completed=event["epoch"],
                                 description=f"fit epoch {event['epoch']} loss {loss:.4f}")


@handle_errors
def train(
    config: Annotated[Path, typer.Argument(help="Training config (YAML)")],
    name: Annotated[str | None, typer.Option("--name", "-n", help="Model name (default: the config's name)")] = None,
    json: Annotated[bool, typer.Option("--json", help="Print the version record and the result as JSON")] = False,
) -> None:
    """Train a model from a YAML config, test it, and register it as a new version."""
    from maas.training import train as run

    with _Bars() as bars:
        result = run(config, registry=state.registry(), name=name, progress=bars)
    if json:
        return print_json({"version": result.version.to_dict(), "result": result.to_dict()})
    console.print(result.version.ref, markup=False, highlight=False)
    for k, v in result.test_metrics.items():
        console.print(f"  test {k}: {v:.4f}", highlight=False)
    if result.cv:
        console.print(f"  cv {result.cv['metric']}: {result.cv['mean']:.4f} ± {result.cv['std']:.4f}", highlight=False)
    if result.search:
        console.print(
            f"  search: best {result.search['best_score']:.4f} vs default {result.search['default_score']:.4f} "
            f"with {result.params}", highlight=False, markup=False,
        )
