"""`optimize`: run one transform on a registered version and publish the result as the model's next version.

The child keeps its parent's signature and config (labels, pre/post-processing, max batch size), records
lineage (parent, transform, parameters) and carries the measured parent-vs-child report in its metrics.
Nothing is published when a transform, a check or the accuracy gate fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition, InvalidArgument
from maas.llm import is_language_model
from maas.optimize import gate
from maas.optimize.data import Dataset, load_data
from maas.optimize.measure import sample_inputs
from maas.registry import Lineage, ModelVersion, Registry

Progress = Callable[[str, float], None]
SAMPLE = 32  # inputs for parity and timing when no data is given


@dataclass(frozen=True)
class OptimizeResult:
    """The new version and the report stored in its metrics under `optimize`."""

    version: ModelVersion
    report: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version.to_dict(), "report": self.report}


def _choose(quantize: str | None, prune: float | None, distill: Any, slim: bool) -> str:
    chosen = [name for name, on in (("quantize", quantize is not None), ("prune", prune is not None),
                                    ("distill", distill is not None), ("slim", slim)) if on]
    if len(chosen) != 1:
        raise InvalidArgument(
            "choose exactly one transform (quantize, prune, distill or slim)"
            + (f"; got {', '.join(chosen)}: chain them by optimizing the new version" if chosen else "")
        )
    return chosen[0]


@contextmanager
def _releasing(registry: Registry, version: ModelVersion) -> Iterator[None]:
    """The parent's decrypted copies (encrypted homes) go when the work is done, whatever its outcome."""
    try:
        yield
    finally:
        registry.release_paths(version)


def optimize(
    registry: Registry,
    ref: str,
    *,
    quantize: str | None = None,
    calibration: str | np.ndarray | None = None,
    prune: float | None = None,
    structured: bool = False,
    fine_tune: int = 0,
    fine_tune_data: str | np.ndarray | Dataset | None = None,
    distill: dict[str, Any] | str | Path | None = None,
    slim: bool = False,
    data: str | np.ndarray | Dataset | None = None,
    max_accuracy_drop: float | None = None,
    progress: Progress | None = None,
    timing: bool = True,
) -> OptimizeResult:
    """Derive a new version of `ref` with one transform; `data` (labelled) adds accuracy to the report.

    Structured pruning may fine-tune for `fine_tune` epochs on `fine_tune_data` (default: `data`).
    """
    report_progress: Progress = progress or (lambda stage, fraction: None)
    transform = _choose(quantize, prune, distill, slim)
    if (fine_tune or fine_tune_data is not None) and not (transform == "prune" and structured):
        raise InvalidArgument("fine-tuning applies to structured pruning only (--prune S --structured)")
    if not isinstance(fine_tune, int) or fine_tune < 0:
        raise InvalidArgument(f"fine-tune epochs must be a whole number >= 0, got {fine_tune!r}")
    parent = registry.get(ref)
    if is_language_model(parent.config):
        if transform != "quantize":
            raise InvalidArgument(f"{parent.ref} is a language model: it optimizes by --quantize int4|int8 only")
        from maas.llm.optimize import quantize as quantize_language_model

        version, llm_report = quantize_language_model(registry, parent.ref, str(quantize),
                                                      max_accuracy_drop=max_accuracy_drop, timing=timing,
                                                      progress=report_progress)
        return OptimizeResult(version, llm_report)
    if parent.signature is None or not parent.signature.inputs:
        raise FailedPrecondition(f"{parent.ref} has no signature; optimization needs its input shape")
    signature = parent.signature
    report_progress("loading data", 0.0)
    dataset = load_data(data, signature) if data is not None else None
    gate.check_max_drop(max_accuracy_drop, dataset)
    sample = dataset.x[:SAMPLE] if dataset is not None else sample_inputs(signature, SAMPLE)
    params: dict[str, Any]
    with registry.work_dir("maas-optimize-") as tmp, _releasing(registry, parent):
        src = registry.artifact_path(parent)
        dst = tmp / "model.onnx"
        files: dict[str, Path] = {"model.onnx": dst}
        report_progress(transform, 0.1)
        source_format = parent.source_format
        if transform == "quantize":
            from maas.optimize.quantize import quantize as run_quantize

            calib = None
            params = {"mode": quantize}
            if quantize == "static":
                if calibration is None:
                    raise InvalidArgument("static quantization needs --calibration DATA (an array or a data spec)")
                calib = load_data(calibration, signature, what="calibration data").x
                params["calibration"] = calibration if isinstance(calibration, str) else "<array>"
            details = run_quantize(src, dst, str(quantize), calibration=calib)
        elif transform == "prune" and structured:
            from maas.optimize.prune import check_sparsity
            from maas.optimize.structured import SOURCE_ROLE, prune_structured, source_path

            sparsity = check_sparsity(prune)  # type: ignore[arg-type]
            source = source_path(registry, parent)
            tune = None
            if fine_tune:
                tune_spec = fine_tune_data if fine_tune_data is not None else data
                if tune_spec is None:
                    raise InvalidArgument("fine-tuning needs labelled data: --fine-tune-data, or --data")
                tune = dataset if tune_spec is data and dataset is not None else load_data(tune_spec, signature)
            params = {"sparsity": sparsity, "structured": True, "fine_tune_epochs": fine_tune}
            if tune is not None:
                params["fine_tune_data"] = tune.spec
            report_progress("pruning channels", 0.2)
            details = prune_structured(
                source, dst, sparsity, signature=signature, sample=sample, train=tune, epochs=fine_tune,
                limit=registry.settings.max_upload_bytes,
            )
            if tune is not None and dataset is not None and tune.spec == dataset.spec:
                details["fine_tune"]["note"] = "fine-tuned on the data the accuracy is measured on"
            if (tmp / SOURCE_ROLE).is_file():
                files[SOURCE_ROLE] = tmp / SOURCE_ROLE
        elif transform == "prune":
            from maas.optimize.prune import prune as run_prune

            params = {"sparsity": prune, "structured": False}
            details = run_prune(src, dst, float(prune))  # type: ignore[arg-type]
        elif transform == "distill":
            from maas.optimize.distill import distill as run_distill
            from maas.optimize.distill import parse_spec

            spec = parse_spec(distill)  # type: ignore[arg-type]
            train_spec = spec.train or (dataset.spec if dataset is not None else None)
            if train_spec is None:
                raise InvalidArgument("distillation needs training data: --data, or `train` in the student spec")
            train = dataset if spec.train is None and dataset is not None else load_data(train_spec, signature)
            params = spec.model_dump()
            params["train"] = train.spec
            def training(stage: str, fraction: float) -> None:  # training fills 0.1 .. 0.6 of the bar
                report_progress(stage, 0.1 + 0.5 * fraction)

            details = run_distill(src, signature, spec, train, dst, progress=training)
            source_format = "torch"
        else:
            from maas.optimize.slim import slim as run_slim

            params = {}
            details = run_slim(src, dst, sample)
        report_progress("measuring parent", 0.6)
        before = gate.measure(src, dataset, sample, timing)
        report_progress("measuring child", 0.8)
        after = gate.measure(dst, dataset, sample, timing)
        comparison = gate.compare(before, after)
        report: dict[str, Any] = {
            "transform": transform, "params": params, "parent_version": parent.version,
            "data": dataset.spec if dataset is not None else None,
            "parent": before, "child": after, "comparison": comparison, "details": details,
            "gate": {"max_accuracy_drop": max_accuracy_drop},  # enforced below: a published child passed it
        }
        gate.enforce(comparison, before, after, max_accuracy_drop)
        report_progress("publishing", 0.95)
        metrics = {"optimize": report}
        if "accuracy" in after:
            metrics["accuracy"] = after["accuracy"]
        version = registry.publish(
            parent.model, files,
            description=f"{transform} of {parent.ref}", tags=dict(parent.tags), signature=signature,
            source_format=source_format, config=dict(parent.config), metrics=metrics,
            lineage=Lineage(parent=parent.version, transform=transform, params=params),
        )
    report_progress("done", 1.0)
    return OptimizeResult(version, report)
