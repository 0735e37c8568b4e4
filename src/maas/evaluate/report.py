"""Evaluate registry versions on a data set: quality metrics, size and latency in one `EvalReport`, stored on
the version under `eval:<data fingerprint>` so results stay tied to exactly the data they were measured on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from maas.errors import FailedPrecondition, InvalidArgument
from maas.evaluate import latency as lat
from maas.evaluate.datasets import Dataset, Task, load_dataset
from maas.evaluate.metrics import classification_metrics, looks_like_probabilities, regression_metrics, softmax
from maas.evaluate.runner import Runner, find_labels, find_probabilities

TASKS = ("classification", "regression")


@dataclass
class EvalReport:
    """What one evaluation found. `arrays` (targets, predictions, probabilities) feed the plots and are not
    part of `to_dict`."""

    ref: str
    dataset: str
    fingerprint: str
    task: Task
    n_samples: int
    metrics: dict[str, Any]
    size: dict[str, int]
    latency: dict[str, Any] | None = None
    lineage: dict[str, Any] = field(default_factory=dict)
    class_names: list[str] = field(default_factory=list)
    created_at: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("arrays")
        return d


def evaluate(
    registry: Any, ref: str, data: str | Dataset, *, task: str | None = None, target: str | None = None,
    batch_size: int | None = None, latency: bool = True, store: bool = True,
) -> EvalReport:
    """Run version `ref` on `data` (a spec for `load_dataset` or a loaded `Dataset`) and score it."""
    if task is not None and task not in TASKS:
        raise InvalidArgument(f"unknown task {task!r}; use classification or regression")
    dataset = data if isinstance(data, Dataset) else load_dataset(data, target=target)
    if dataset.y is None:
        raise InvalidArgument(f"dataset {dataset.name} has no targets to evaluate against")
    version = registry.get(ref)
    with Runner(registry, version) as runner:
        prepared = runner.prepare(dataset.x)
        outputs = runner.predict_prepared(prepared, batch_size)
        chosen = _task(task, dataset, version, outputs)
        if chosen == "classification":
            metrics, arrays, names = _classify(dataset, version, outputs)
        else:
            (metrics, arrays), names = _regress(dataset, outputs), []
        timing = lat.benchmark(runner, prepared) if latency else None
    report = EvalReport(
        ref=version.ref, dataset=dataset.name, fingerprint=dataset.fingerprint, task=chosen,
        n_samples=len(dataset), metrics=metrics, size=lat.model_size(registry.artifact_path(version)),
        latency=timing, lineage=asdict(version.lineage), class_names=names,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"), arrays=arrays,
    )
    if store:
        registry.add_metrics(version.ref, {f"eval:{dataset.fingerprint}": report.to_dict()})
        from maas.monitor.reference import capture

        capture(registry, version, runner.input.name, prepared, outputs, f"eval {dataset.name}")
        from maas.explain.background import store_if_missing

        store_if_missing(registry, version, dataset.x, source=f"eval:{dataset.fingerprint}")
    return report


def compare(
    registry: Any, refs: list[str], data: str | Dataset, *, task: str | None = None, target: str | None = None,
    batch_size: int | None = None, latency: bool = True, store: bool = True,
) -> list[EvalReport]:
    """Evaluate several versions on the same data, loaded once, for a side-by-side view."""
    if not refs:
        raise InvalidArgument("compare needs at least one model reference")
    dataset = data if isinstance(data, Dataset) else load_dataset(data, target=target)
    return [
        evaluate(registry, r, dataset, task=task, batch_size=batch_size, latency=latency, store=store) for r in refs
    ]


def _task(task: str | None, dataset: Dataset, version: Any, outputs: dict[str, np.ndarray]) -> Task:
    """Explicit choice, else the data's hint, else what the version looks like (labels or class scores)."""
    if task is not None:
        return task  # type: ignore[return-value]
    if dataset.task_hint is not None:
        return dataset.task_hint
    if version.config.get("labels"):
        return "classification"
    if find_labels(outputs) is not None or any(v.ndim == 2 and v.shape[1] > 1 for v in outputs.values()):
        return "classification"
    return "regression"


def _classify(
    dataset: Dataset, version: Any, outputs: dict[str, np.ndarray]
) -> tuple[dict[str, Any], dict[str, np.ndarray], list[str]]:
    labels = [str(s) for s in version.config.get("labels") or []]
    names = labels or list(dataset.class_names)
    y_true = _true_indices(dataset, labels)
    prob_name = find_probabilities(outputs, len(names) or None)
    proba = None
    scores = outputs[prob_name].astype(np.float64) if prob_name else None
    if scores is not None:
        post_ops = [s.get("op") for s in version.config.get("postprocess") or []]
        if looks_like_probabilities(scores):
            proba = scores
        elif "softmax" in post_ops:
            proba = softmax(scores)
    label_name = find_labels(outputs, skip=[prob_name] if prob_name else [])
    if label_name is not None:
        y_pred = _pred_indices(outputs[label_name].reshape(-1), names)
    elif scores is not None:
        y_pred = scores.argmax(axis=1)
    else:
        raise FailedPrecondition(
            f"{version.ref} has no class output (a label tensor, or scores with one column per class)"
        )
    n = len(names) or (scores.shape[1] if scores is not None else int(max(y_true.max(), y_pred.max())) + 1)
    if y_true.max() >= n or y_true.min() < 0:
        raise InvalidArgument(f"dataset {dataset.name} has class indices outside 0..{n - 1} of {version.ref}")
    metrics = classification_metrics(y_true, y_pred, proba, n)
    arrays = {"y_true": y_true, "y_pred": y_pred}
    if proba is not None:
        arrays["proba"] = proba
    return metrics, arrays, names or [str(i) for i in range(n)]


def _true_indices(dataset: Dataset, labels: list[str]) -> np.ndarray:
    """Targets as indices into the version's labels (a CSV's class names may be ordered differently)."""
    y = np.asarray(dataset.y)
    if not np.issubdtype(y.dtype, np.integer):
        if np.all(y == np.round(y)):
            y = y.astype(np.int64)
        else:
            raise InvalidArgument(f"dataset {dataset.name} has non-integer targets; is this a regression?")
    index_labels = [str(i) for i in range(len(labels))]
    if dataset.class_names and labels and list(dataset.class_names) != labels and labels != index_labels:
        # (A model trained on integer targets knows its classes as "0", "1"…: those are indices already.)
        missing = sorted(set(dataset.class_names) - set(labels))
        if missing:
            raise InvalidArgument(f"dataset {dataset.name} has classes {missing} the model does not know")
        remap = np.asarray([labels.index(n) for n in dataset.class_names])
        y = remap[y]
    return y


def _pred_indices(values: np.ndarray, names: list[str]) -> np.ndarray:
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64)
    strings = [v.decode() if isinstance(v, bytes) else str(v) for v in values]
    unknown = sorted(set(strings) - set(names))
    if unknown:
        raise FailedPrecondition(f"the model predicts labels {unknown[:5]} that are not among its labels")
    index = {n: i for i, n in enumerate(names)}
    return np.asarray([index[s] for s in strings], np.int64)


def _regress(dataset: Dataset, outputs: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    floats = [v for v in outputs.values() if np.issubdtype(v.dtype, np.floating)]
    if not floats:
        raise FailedPrecondition("the model has no floating-point output to use as a regression prediction")
    y_true = np.asarray(dataset.y, np.float64)
    y_pred = floats[0].reshape(len(y_true), -1)
    metrics = regression_metrics(y_true, y_pred)
    return metrics, {"y_true": y_true, "y_pred": y_pred[:, 0].astype(np.float64)}
