"""`maas optimize REF`: quantize, prune, distill or slim a version into a new one; prints parent vs child."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from maas.cli.context import console, err_console, handle_errors, print_json, state


def _bar() -> tuple[Any, Any]:
    """A rich progress bar on stderr fed by optimize's (stage, fraction) callback; None when not a terminal."""
    if not err_console.is_terminal:
        return None, None
    from rich.progress import Progress

    bar = Progress(console=err_console, transient=True)
    task = bar.add_task("optimize", total=1.0)

    def update(stage: str, fraction: float) -> None:
        bar.update(task, completed=fraction, description=stage)

    return bar, update


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _table(report: dict[str, Any], ref: str) -> Table:
    parent, child, comp = report["parent"], report["child"], report["comparison"]

    def speed(key: str) -> str | None:
        return None if key not in comp else f"{comp[key]}x speed"

    table = Table("", f"parent v{report['parent_version']}", ref, "child / parent", title=report["transform"])
    rows = [
        ("size (bytes)", "size_bytes", comp.get("size_ratio")),
        ("gzip (bytes)", "gzip_bytes", comp.get("gzip_ratio")),
        ("accuracy", "accuracy", None if "accuracy_drop" not in comp else f"drop {comp['accuracy_drop']:+.4f}"),
        ("latency p50 b1 (ms)", "latency_p50_ms_b1", speed("speedup_b1")),
        ("throughput b32 (/s)", "throughput_b32", speed("speedup_b32")),
        ("perplexity", "perplexity", comp.get("perplexity_ratio")),
        ("TTFT c=1 (ms)", "ttft_ms_c1", None),
        ("tokens/s c=1", "tokens_per_s_c1", speed("speedup_c1")),
        ("tokens/s c=8", "tokens_per_s_c8", speed("speedup_c8")),
    ]
    for label, key, ratio in rows:
        if key in parent or key in child:
            table.add_row(label, _fmt(parent.get(key)), _fmt(child.get(key)), _fmt(ratio))
    return table


def register(app: typer.Typer) -> None:
    """Add `maas optimize` to the root app (called by maas.cli.main)."""

    @app.command("optimize")
    @handle_errors
    def optimize_cmd(
        ref: Annotated[str, typer.Argument(help="Version to optimize: name, name:3 or name@alias.")],
        quantize: Annotated[str | None, typer.Option(
            help="dynamic | static | fp16; language models: int4 | int8")] = None,
        calibration: Annotated[str | None, typer.Option(help="Static calibration data: .npy/.npz or a spec.")] = None,
        prune: Annotated[float | None, typer.Option(help="Target sparsity, e.g. 0.5.")] = None,
        structured: Annotated[bool, typer.Option(help="Structured channel pruning (needs a PyTorch source).")] = False,
        fine_tune: Annotated[int, typer.Option(help="Epochs to fine-tune a structured prune (needs labels).")] = 0,
        fine_tune_data: Annotated[str | None, typer.Option(help="Labelled data to fine-tune on (or --data).")] = None,
        distill: Annotated[str | None, typer.Option(help="Student spec: JSON, or a JSON/YAML file.")] = None,
        slim: Annotated[bool, typer.Option(help="Slim the graph with onnxslim.")] = False,
        data: Annotated[str | None, typer.Option(help="Labelled data for accuracy: sklearn:digits, x/y .npz.")] = None,
        max_accuracy_drop: Annotated[float | None, typer.Option(
            help="Refuse a child losing more (absolute; language models: greedy agreement).")] = None,
        json_: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    ) -> None:
        """Derive a new version with one transform; the report compares it with its parent."""
        from maas.optimize import optimize

        spec: Any = distill
        if distill is not None and not distill.lstrip().startswith("{"):
            spec = Path(distill)
        bar, update = _bar()
        kwargs: dict[str, Any] = dict(
            quantize=quantize, calibration=calibration, prune=prune, structured=structured, fine_tune=fine_tune,
            fine_tune_data=fine_tune_data, distill=spec,
            slim=slim, data=data, max_accuracy_drop=max_accuracy_drop, progress=update,
        )
        if bar is None:
            result = optimize(state.registry(), ref, **kwargs)
        else:
            with bar:
                result = optimize(state.registry(), ref, **kwargs)
        if json_:
            return print_json(result.to_dict())
        console.print(_table(result.report, result.version.ref))
        console.print(f"published {result.version.ref} ({result.report['transform']} of "
                      f"{result.version.model}:{result.report['parent_version']})")
