"""`maas eval`, `maas compare` and `maas cv`: thin wrappers over `maas.evaluate` (no logic of their own)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from maas.cli import context
from maas.cli.context import console, handle_errors, print_json, progress

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
DataOpt = Annotated[
    str,
    typer.Option("--data", help="A .npz (x, y) or .csv file, an image folder, or sklearn:NAME[?split=test].")
]
TargetOpt = Annotated[str | None, typer.Option("--target", help="CSV column with the targets (default: last).")]
TaskOpt = Annotated[str | None, typer.Option("--task", help="classification or regression (default: inferred).")]


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to the root `maas` app."""
    app.command("eval")(eval_command)
    app.command("compare")(compare_command)
    app.command("cv")(cv_command)


@handle_errors
def eval_command(
    ref: Annotated[str, typer.Argument(help="Model reference: name, name:3 or name@alias.")],
    data: DataOpt,
    task: TaskOpt = None,
    target: TargetOpt = None,
    batch_size: Annotated[int | None, typer.Option(help="Rows per inference call.")] = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip the latency benchmark.")] = False,
    report: Annotated[Path | None, typer.Option("--report", help="Write report.json and report.html here.")] = None,
    json_: JsonFlag = False,
) -> None:
    """Score a version on a data set; results are stored on the version as eval:<data fingerprint>."""
    from maas.evaluate import evaluate, write_report

    with progress(f"evaluating {ref}"):
        result = evaluate(
            context.state.registry(), ref, data, task=task, target=target, batch_size=batch_size,
            latency=not no_latency,
        )
        paths = write_report(result, report) if report is not None else {}
    if json_:
        return print_json({**result.to_dict(), **({"files": {k: str(p) for k, p in paths.items()}} if paths else {})})
    table = Table("metric", "value", title=f"{result.ref} on {result.dataset} ({result.n_samples} samples)")
    for name, value in _rows(result.to_dict()):
        table.add_row(name, value)
    console.print(table)
    for p in paths.values():
        console.print(f"wrote {p}")


@handle_errors
def compare_command(
    refs: Annotated[list[str], typer.Argument(help="Two or more model references.")],
    data: DataOpt,
    task: TaskOpt = None,
    target: TargetOpt = None,
    no_latency: Annotated[bool, typer.Option("--no-latency", help="Skip the latency benchmark.")] = False,
    json_: JsonFlag = False,
) -> None:
    """Evaluate versions on the same data and show them side by side."""
    from maas.evaluate import compare

    with progress(f"comparing {len(refs)} versions"):
        reports = compare(context.state.registry(), refs, data, task=task, target=target, latency=not no_latency)
    if json_:
        return print_json([r.to_dict() for r in reports])
    table = Table("", *[r.ref for r in reports], title=f"on {reports[0].dataset} ({reports[0].n_samples} samples)")
    columns = [dict(_rows(r.to_dict())) for r in reports]
    names = list(dict.fromkeys(name for c in columns for name in c))
    for name in names:
        table.add_row(name, *[c.get(name, "-") for c in columns])
    console.print(table)


@handle_errors
def cv_command(
    family: Annotated[str, typer.Argument(help="Estimator family, e.g. logistic_regression, random_forest, ridge.")],
    data: DataOpt,
    k: Annotated[int, typer.Option("-k", help="Number of folds.")] = 5,
    param: Annotated[list[str] | None, typer.Option("--param", help="Estimator parameter KEY=VALUE.")] = None,
    target: TargetOpt = None,
    seed: Annotated[int, typer.Option(help="Seed of the fold shuffle.")] = 0,
    json_: JsonFlag = False,
) -> None:
    """Cross-validate a scikit-learn model family on a data set (no registry involved)."""
    from maas.evaluate import cross_validate, load_dataset
    from maas.evaluate.families import family_task, make_estimator, parse_param

    params = dict(parse_param(p) for p in param or [])
    family_task(family)  # an unknown family fails before the data is read
    dataset = load_dataset(data, target=target)
    task = family_task(family, dataset.task_hint)
    estimator = make_estimator(family, params, task, seed)
    with progress(f"{k}-fold cross-validation of {family}"):
        scores = cross_validate(estimator, dataset, k=k, task=task, seed=seed)
    if json_:
        return print_json({
            "family": family, "params": params, "dataset": dataset.name, "fingerprint": dataset.fingerprint,
            "k": k, "seed": seed, "metrics": {n: {"mean": m, "std": s} for n, (m, s) in scores.items()},
        })
    table = Table("metric", "mean", "std", title=f"{family}, {k}-fold on {dataset.name}")
    for name, (mean, std) in scores.items():
        table.add_row(name, f"{mean:.4f}", f"{std:.4f}")
    console.print(table)


def _rows(d: dict[str, Any]) -> list[tuple[str, str]]:
    """A report flattened to (name, text) rows for the human tables."""
    rows = [(n, f"{v:.4f}") for n, v in d["metrics"].items() if isinstance(v, int | float)]
    rows.append(("size (bytes)", f"{d['size']['bytes']:,}"))
    rows.append(("size gzip (bytes)", f"{d['size']['gzip_bytes']:,}"))
    for key, v in (d.get("latency") or {}).items():
        rows.append((f"{key} p50 / p99 (ms)", f"{v['p50_ms']:.3f} / {v['p99_ms']:.3f}"))
        rows.append((f"{key} throughput (/s)", f"{v['throughput_per_s']:.0f}"))
    lineage = d.get("lineage") or {}
    if lineage.get("parent") is not None:
        rows.append(("lineage", f"{lineage.get('transform') or '?'} of version {lineage['parent']}"))
    return rows
