"""`maas explain REF --data D` and `maas explain background REF --data D`: thin wrappers over `maas.explain`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from maas.cli import context
from maas.cli.context import console, fail, handle_errors, print_json, progress
from maas.numbers import is_ascii_int


def register(app: typer.Typer) -> None:
    app.command("explain")(explain_command)


@handle_errors
def explain_command(
    refs: Annotated[list[str], typer.Argument(
        help="Model reference (name, name:3, name@alias); or `background REF` to store a background set.",
        metavar="REF | background REF",
    )],
    data: Annotated[str, typer.Option(
        "--data", help="A .npz/.npy/.csv file, an image folder, or sklearn:NAME[?split=test].")],
    rows: Annotated[str, typer.Option("--rows", help="Rows to explain, START:STOP.")] = "0:50",
    method: Annotated[str | None, typer.Option(
        "--method", help="kernel, permutation, occlusion or integrated_gradients (default: from the signature)."
    )] = None,
    target: Annotated[str | None, typer.Option("--target", help="Class to explain (default: each prediction).")] = None,
    max_evals: Annotated[int | None, typer.Option("--max-evals", help="Model evaluations per row.")] = None,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Occlusion fill / IG baseline value, or a SHAP baseline value for every feature.")] = None,
    window: Annotated[int | None, typer.Option("--window", help="Occlusion window side, in pixels.")] = None,
    background_rows: Annotated[int, typer.Option(
        "--background-rows", help="With `background`: rows sampled from the data.")] = 100,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write explanation.json and explanation.html here.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Explain a version over a data set: global importance, per-class summaries, an HTML report."""
    from maas.explain import ExplainParams

    registry = context.state.registry()
    if refs[0] == "background" and len(refs) == 2:
        return _background(registry, refs[1], data, background_rows, json_)
    if len(refs) != 1:
        fail("expected one model reference, or `background REF`")
    parameters: dict[str, Any] = {"method": method, "target": _target(target), "max_evals": max_evals,
                                  "window": window, "baseline": _number(baseline)}
    params = ExplainParams.parse({k: v for k, v in parameters.items() if v is not None})
    from maas.explain.dataset import explain_dataset
    from maas.explain.report import write_report

    with progress(f"explaining {refs[0]}"):
        result = explain_dataset(registry, refs[0], data, rows=rows, params=params)
        paths = write_report(result, report) if report is not None else {}
    doc = result.to_dict()
    if json_:
        return print_json({**doc, **({"files": {k: str(p) for k, p in paths.items()}} if paths else {})})
    table = Table("feature", "mean |attribution|",
                  title=f"{result.ref} on {result.dataset}, rows {result.rows[0]}-{result.rows[1]} ({result.method})")
    for item in doc["importance"][:15]:
        table.add_row(item["feature"], f"{item['importance']:.4g}")
    console.print(table)
    for p in paths.values():
        console.print(f"wrote {p}")


def _background(registry: Any, ref: str, data: str, rows: int, json_: bool) -> None:
    from maas.explain.background import store_background

    stored = store_background(registry, ref, data, rows=rows)
    doc = {"ref": stored.ref, "rows": stored.rows, "source": stored.source, "sha256": stored.sha256,
           "columns": {n: list(a.shape[1:]) for n, a in stored.arrays.items()}}
    if json_:
        return print_json(doc)
    console.print(f"stored a background set of {stored.rows} rows from {stored.source} on {stored.ref}")


def _target(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if is_ascii_int(value.removeprefix("-")) else value


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(json.loads(value))
    except (ValueError, TypeError):
        fail(f"--baseline must be a number, got {value!r}")
