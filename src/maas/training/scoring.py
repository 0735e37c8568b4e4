"""Scores a search optimizes and the test metrics a trained version records, from predictions alone."""

from __future__ import annotations

import numpy as np

LOWER_IS_BETTER = frozenset({"log_loss", "mae", "rmse", "mse"})
TEST_METRICS = {
    "classification": ("accuracy", "balanced_accuracy", "f1_macro"),
    "regression": ("r2", "mae", "rmse"),
}


def default_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "r2"


def direction(metric: str) -> str:
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def score(metric: str, y: np.ndarray, out: np.ndarray, n_classes: int | None = None) -> float:
    """`out` is what the model serves: class probabilities (classification) or values (regression)."""
    from sklearn import metrics as m

    if n_classes is not None:
        proba = out if out.ndim == 2 else None
        pred = proba.argmax(1) if proba is not None else out.astype(np.int64)
        if metric == "accuracy":
            return float(m.accuracy_score(y, pred))
        if metric == "balanced_accuracy":
            return float(m.balanced_accuracy_score(y, pred))
        if metric in ("f1_macro", "f1_weighted"):
            return float(m.f1_score(y, pred, average=metric[3:], labels=list(range(n_classes)), zero_division=0))
        if proba is None:
            raise ValueError(f"{metric} needs class probabilities")
        if metric == "log_loss":
            return float(m.log_loss(y, np.clip(proba, 1e-7, 1.0), labels=list(range(n_classes))))
        if metric == "roc_auc":
            if n_classes == 2:
                return float(m.roc_auc_score(y, proba[:, 1]))
            return float(m.roc_auc_score(y, proba, multi_class="ovr", labels=list(range(n_classes))))
        raise ValueError(f"unknown classification metric {metric!r}")
    pred = out.reshape(len(y), -1)[:, 0] if out.ndim > 1 else out
    if metric == "r2":
        return float(m.r2_score(y, pred))
    if metric == "mae":
        return float(m.mean_absolute_error(y, pred))
    if metric == "mse":
        return float(m.mean_squared_error(y, pred))
    if metric == "rmse":
        return float(np.sqrt(m.mean_squared_error(y, pred)))
    raise ValueError(f"unknown regression metric {metric!r}")


def test_metrics(task: str, y: np.ndarray, out: np.ndarray, n_classes: int | None) -> dict[str, float]:
    return {name: round(score(name, y, out, n_classes), 6) for name in TEST_METRICS[task]}
