"""The work a job can do. Each handler validates its own params; data sets named by remote callers are
limited to built-ins and files under $MAAS_HOME/data, so a job can never read arbitrary server paths."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from maas.config import Settings
from maas.errors import InvalidArgument
from maas.jobs.runner import Handler, JobContext
from maas.registry import Registry

IMPORT_EXTENSIONS = frozenset({
    "", ".onnx", ".keras", ".h5", ".hdf5", ".pt", ".pth", ".pt2", ".ts", ".torchscript", ".skops", ".pkl",
    ".joblib", ".tflite", ".zip", ".tar.gz", ".tgz",
})


def data_dir(settings: Settings) -> Path:
    return settings.home / "data"


def check_data_spec(spec: Any, settings: Settings) -> str:
    """`sklearn:*` built-ins, or a path relative to (and inside) $MAAS_HOME/data."""
    if not isinstance(spec, str) or not spec:
        raise InvalidArgument("params.data must be a data set spec such as 'sklearn:digits'")
    if spec.startswith("sklearn:"):
        return spec
    base = data_dir(settings).resolve()
    path = (base / spec).resolve()
    if not path.is_relative_to(base):
        raise InvalidArgument(f"params.data must name a file under {base} or a sklearn: built-in")
    return str(path)


def _str(params: dict[str, Any], key: str, default: str | None = None) -> str:
    value = params.get(key, default)
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"params.{key} must be a non-empty string")
    return value


def handlers(registry: Registry) -> dict[str, Handler]:
    settings = registry.settings

    def run_import(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from maas import formats

        sha, ext = _str(params, "blob"), params.get("extension", "")
        if ext not in IMPORT_EXTENSIONS:
            raise InvalidArgument(f"params.extension {str(ext)[:20]!r} is not a model file extension")
        options = formats.ImportOptions.from_params(params)
        ctx.progress(0.05, "converting")
        with registry.staged_input(sha, f"model{ext}") as path:  # a private in-memory folder, removed after
            version = formats.import_file(registry, path, name=_str(params, "name"), options=options)
        ctx.log(f"registered {version.ref}")
        return {"version": version.to_dict()}

    def run_evaluate(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from maas.evaluate import evaluate

        ctx.progress(0.05, "evaluating")
        report = evaluate(registry, _str(params, "ref"), check_data_spec(params.get("data"), settings),
                          task=params.get("task"), target=params.get("target"))
        return {"report": report.to_dict()}

    def run_optimize(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from maas.optimize import optimize

        allowed = {"ref", "quantize", "calibration", "prune", "structured", "fine_tune", "fine_tune_data",
                   "distill", "slim", "data", "max_accuracy_drop"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            raise InvalidArgument(f"unknown optimize params {unknown}; expected some of {sorted(allowed)}")
        options = {k: v for k, v in params.items() if k != "ref"}
        for key in ("data", "calibration", "fine_tune_data"):
            if options.get(key) is not None:
                options[key] = check_data_spec(options[key], settings)
        if isinstance(options.get("distill"), str):
            raise InvalidArgument("params.distill must be the student spec as an object")

        def progress(stage: str, fraction: float) -> None:
            ctx.progress(fraction, stage)

        return dict(optimize(registry, _str(params, "ref"), progress=progress, **options).to_dict())

    table: dict[str, Handler] = {"import": run_import, "evaluate": run_evaluate, "optimize": run_optimize}
    table.update(_optional_handlers(registry))
    return table


def _optional_handlers(registry: Registry) -> dict[str, Handler]:
    """Kinds that need the training stack (torch, optuna…), registered only where it is installed."""
    settings = registry.settings
    table: dict[str, Handler] = {}
    if importlib.util.find_spec("optuna") is None:  # found, not imported: `maas serve` starts without it
        return table

    def run_train(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        from maas.training import parse, train

        config = params.get("config")
        if not isinstance(config, dict):
            raise InvalidArgument("params.config must be the training config as an object")
        config = dict(config)
        data = dict(config.get("data") or {})
        data["source"] = check_data_spec(data.get("source"), settings)
        config["data"] = data

        def progress(event: dict[str, Any]) -> None:
            if event.get("event") == "trial":
                ctx.log(f"trial {event.get('number')}: score={event.get('score')} params={event.get('params')}")
                total = event.get("of") or 1
                ctx.progress(min(0.9, (int(event.get("number", 0)) + 1) / int(total) * 0.8))
            elif event.get("event") == "epoch":
                ctx.log(f"epoch {event.get('epoch')}: loss={event.get('loss')} val={event.get('val_accuracy')}")
                ctx.check_cancelled()
            elif event.get("event") == "stage":
                ctx.progress(ctx.store.get(ctx.job.id).progress, str(event.get("stage")))

        result = train(parse(config), registry=registry, name=params.get("name"), progress=progress)
        return dict(result.to_dict())

    table["train"] = run_train
    return table
