"""One training run: validate → load and split → search (optional) → refit the best on train + validation →
score on the test split → register through `maas.formats` with the metrics, seed and data fingerprint.
Everything that can be checked without fitting a model is checked before the first fit."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.registry import ModelVersion, Registry
from maas.training import config as config_mod
from maas.training import data, scoring
from maas.training.config import TrainConfig
from maas.training.learners import Fitted, Learner

log = logging.getLogger(__name__)

# Receives {"event": "stage"|"trial"|"epoch", ...}; the CLI turns these into progress bars.
Progress = Callable[[dict[str, Any]], None]


@dataclass
class TrainResult:
    version: ModelVersion
    task: str
    test_metrics: dict[str, float]
    params: dict[str, Any]  # the effective parameters of the registered model
    cv: dict[str, Any] | None = None  # metric, k, mean, std, folds of the chosen parameters
    search: dict[str, Any] | None = None  # best params/score, default score, every trial
    seed: int = 0
    fingerprint: str = ""
    wall_s: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.version.ref, "task": self.task, "test_metrics": self.test_metrics, "params": self.params,
            "cv": self.cv, "search": self.search, "seed": self.seed, "data_fingerprint": self.fingerprint,
            "wall_s": round(self.wall_s, 3), "history": self.history,
        }


def _as_config(config: TrainConfig | dict[str, Any] | str | os.PathLike[str]) -> TrainConfig:
    if isinstance(config, TrainConfig):
        return config
    if isinstance(config, dict):
        return config_mod.parse(config)
    return config_mod.load(Path(config))


def train(
    config: TrainConfig | dict[str, Any] | str | os.PathLike[str], *, registry: Registry | None = None,
    name: str | None = None, progress: Progress | None = None,
) -> TrainResult:
    """Train, test and register one model as the config says (in `registry`, default the one of
    $MAAS_HOME); the same config and seed give the same metrics."""
    from maas.types import check_name

    if registry is None:
        registry = Registry.open()
    started = time.perf_counter()
    cfg = _as_config(config)
    model_name = name or cfg.name
    if not model_name:
        raise InvalidArgument("name: give the model a name in the config or with --name")
    check_name(model_name)
    emit = progress or (lambda event: None)

    emit({"event": "stage", "stage": "data"})
    ds = data.load_dataset(cfg.data.source, cfg.data.target)
    prep = data.prepare(cfg, ds)
    n_classes = len(prep.labels) if prep.labels is not None else None
    learner = Learner(cfg, prep.task, n_classes)
    metric = (cfg.search.metric if cfg.search else None) or scoring.default_metric(prep.task)
    if learner.is_net:
        from maas.training.families import net_backend

        # Builds (does not train) the net once so that a layer list that cannot fit the data fails now.
        net_backend(cfg.model.family).build(cfg.model, cfg.preprocessing.image, tuple(prep.x_train.shape[1:]),
                         int(n_classes or 1), None, None, cfg.seed)

    search_info: dict[str, Any] | None = None
    cv_info: dict[str, Any] | None = None
    params: dict[str, Any] = {}
    if cfg.search is not None:
        from maas.training import search as search_mod

        emit({"event": "stage", "stage": "search", "trials": cfg.search.trials})
        folds: dict[str, list[float]] = {}

        def objective(trial_params: dict[str, Any], report: search_mod.Report) -> float:
            scores = _objective_scores(cfg, learner, prep, metric, trial_params, report, emit)
            folds[repr(sorted(trial_params.items()))] = scores
            return float(np.mean(scores))

        result = search_mod.run(
            cfg.search, objective, direction=scoring.direction(metric), seed=cfg.seed,
            on_trial=lambda rec: emit({"event": "trial", **rec, "of": cfg.search.trials}),  # type: ignore[union-attr]
        )
        params = result.best_params
        emit({"event": "stage", "stage": "baseline"})
        default_scores = _objective_scores(cfg, learner, prep, metric, {}, None, emit)
        best_scores = folds[repr(sorted(params.items()))]
        search_info = {
            **result.to_dict(), "metric": metric, "objective": cfg.search.objective,
            "default_score": float(np.mean(default_scores)),
        }
        if cfg.search.objective == "cv":
            cv_info = {"metric": metric, "k": cfg.search.k, "mean": float(np.mean(best_scores)),
                       "std": float(np.std(best_scores)), "folds": best_scores}

    emit({"event": "stage", "stage": "fit"})
    fitted = _final_fit(learner, prep, params, emit)
    emit({"event": "stage", "stage": "test"})
    test = scoring.test_metrics(prep.task, prep.y_test, learner.outputs(fitted, prep.x_test), n_classes)

    emit({"event": "stage", "stage": "register"})
    metrics = {
        "test": test, "seed": cfg.seed, "params": params,
        "data": {"source": cfg.data.source, "fingerprint": prep.fingerprint,
                 "rows": {"train": len(prep.y_train), "validation": len(prep.y_val), "test": len(prep.y_test)}},
        "train_config": cfg.model_dump(mode="json", by_alias=True),
    }
    if cv_info is not None:
        metrics["cv"] = cv_info
    if search_info is not None:
        metrics["search"] = {k: v for k, v in search_info.items() if k != "trials"} | {
            "trials": len(search_info["trials"]),
            "pruned": sum(t["state"] == "pruned" for t in search_info["trials"]),
        }
    version = _register(registry, model_name, cfg, prep, fitted)
    version = registry.add_metrics(version.ref, metrics)
    from maas.monitor.reference import capture_data

    capture_data(registry, version.ref, prep.x_train, f"train {prep.dataset_name}")
    if not version.config.get("preprocess"):  # training rows are then what clients send: SHAP's background
        from maas.explain.background import store_if_missing
        from maas.training.learners import flat

        rows = prep.x_train if cfg.model.is_net else flat(prep.x_train)
        store_if_missing(registry, version, rows, source=f"train:{prep.fingerprint}")
    return TrainResult(
        version, prep.task, test, params, cv_info, search_info, cfg.seed, prep.fingerprint,
        time.perf_counter() - started, fitted.history or [],
    )


def _objective_scores(
    cfg: TrainConfig, learner: Learner, prep: data.Prepared, metric: str, params: dict[str, Any],
    report: Callable[[int, float], None] | None, emit: Progress,
) -> list[float]:
    """Per-fold scores (k-fold CV on train + validation, stratified for classification) or the one score on
    the validation split; intermediate values go to `report` for the pruner."""
    n_classes = len(prep.labels) if prep.labels is not None else None
    assert cfg.search is not None
    if cfg.search.objective == "validation":
        on_epoch = None
        if report is not None and learner.is_net and metric == "accuracy":
            def on_epoch(epoch: int, rec: dict[str, float]) -> None:
                report(epoch, rec["val_accuracy"])
        fitted = learner.fit(params, prep.x_train, prep.y_train, prep.x_val, prep.y_val, on_epoch=on_epoch)
        return [scoring.score(metric, prep.y_val, learner.outputs(fitted, prep.x_val), n_classes)]

    from sklearn.model_selection import KFold, StratifiedKFold

    x, y = prep.x_fit, prep.y_fit
    splitter = (StratifiedKFold if prep.task == "classification" else KFold)(
        n_splits=cfg.search.k, shuffle=True, random_state=cfg.seed
    )
    scores: list[float] = []
    for i, (tr, va) in enumerate(splitter.split(np.zeros(len(y)), y)):
        fitted = learner.fit(params, x[tr], y[tr], x[va], y[va])
        scores.append(scoring.score(metric, y[va], learner.outputs(fitted, x[va]), n_classes))
        if report is not None:
            report(i, float(np.mean(scores)))
    return scores


def _final_fit(learner: Learner, prep: data.Prepared, params: dict[str, Any], emit: Progress) -> Fitted:
    """Refit on train + validation. Nets with early stopping first learn on train alone how many epochs the
    validation split wants, then refit for that many."""

    def on_epoch(epoch: int, rec: dict[str, float]) -> None:
        emit({"event": "epoch", "epoch": epoch, **rec})

    spec = learner.cfg.model
    if not learner.is_net or spec.early_stopping is None:
        return learner.fit(params, prep.x_fit, prep.y_fit, on_epoch=on_epoch)
    probe = learner.fit(params, prep.x_train, prep.y_train, prep.x_val, prep.y_val, on_epoch=on_epoch)
    epochs = probe.best_epoch or spec.epochs
    log.info("early stopping chose %d epochs; refitting on train + validation", epochs)
    final = learner.fit(params, prep.x_fit, prep.y_fit, epochs=epochs, on_epoch=on_epoch)
    final.history = (probe.history or []) + (final.history or [])
    return final


def _register(registry: Registry, name: str, cfg: TrainConfig, prep: data.Prepared, fitted: Fitted) -> ModelVersion:
    """The one call into `maas.formats`: converts to ONNX, checks parity on real test rows, publishes."""
    from maas import formats
    from maas.training.image_files import version_steps
    from maas.training.learners import flat

    sample = prep.x_test[:16].astype(np.float32)
    if not cfg.model.is_net:
        sample = flat(sample)
    tags = {**cfg.registration.tags, "train.family": cfg.model.family, "train.seed": str(cfg.seed),
            "train.data": prep.fingerprint}
    return formats.register(registry, fitted.model, name=name, options=formats.ImportOptions(
        sample_input=sample,
        description=cfg.registration.description or f"{cfg.model.family} trained on {prep.dataset_name}",
        tags=tags, aliases=tuple(cfg.registration.aliases), labels=prep.labels, preprocess=version_steps(cfg),
    ))
