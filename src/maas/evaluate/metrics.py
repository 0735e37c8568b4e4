"""Quality metrics from predictions, computed with scikit-learn's own functions so the numbers match what
people already trust. Inputs are class indices (0..n-1) for classification, floats for regression."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from maas.errors import InvalidArgument


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, proba: np.ndarray | None = None, n_classes: int | None = None
) -> dict[str, Any]:
    """Accuracy, macro/weighted precision, recall and F1, the confusion matrix; ROC-AUC (one-vs-rest) and
    log-loss when class probabilities exist. `proba[:, j]` is the probability of class j."""
    from sklearn import metrics as m

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) != len(y_pred):
        raise InvalidArgument(f"{len(y_true)} targets but {len(y_pred)} predictions")
    n = n_classes or (proba.shape[1] if proba is not None else int(max(y_true.max(), y_pred.max())) + 1)
    labels = list(range(n))
    out: dict[str, Any] = {"accuracy": float(m.accuracy_score(y_true, y_pred))}
    for avg in ("macro", "weighted"):
        p, r, f, _ = m.precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=0
        )
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = float(p), float(r), float(f)
    out["confusion_matrix"] = m.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    if proba is not None:
        proba = np.asarray(proba, np.float64)
        out["log_loss"] = float(m.log_loss(y_true, _normalised(proba), labels=labels))
        auc = roc_auc(y_true, proba)
        if auc is not None:
            out["roc_auc_ovr"] = auc
    return out


def roc_auc(y_true: np.ndarray, proba: np.ndarray) -> float | None:
    """One-vs-rest macro ROC-AUC; None when it is undefined (a class is absent from `y_true`)."""
    from sklearn.metrics import roc_auc_score

    n = proba.shape[1]
    present = np.unique(y_true)
    if len(present) < 2 or (n > 2 and len(present) < n):
        return None
    if n == 2:
        return float(roc_auc_score(y_true, proba[:, 1]))
    return float(roc_auc_score(y_true, _normalised(proba), multi_class="ovr", labels=list(range(n))))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """MAE, RMSE and R²."""
    from sklearn import metrics as m

    y_true, y_pred = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64).reshape(len(y_true), -1)
    if y_pred.shape[1] != 1:
        raise InvalidArgument(f"a regression needs one prediction per row, the model gives {y_pred.shape[1]}")
    y_pred = y_pred[:, 0]
    out = {
        "mae": float(m.mean_absolute_error(y_true, y_pred)),
        "rmse": float(m.root_mean_squared_error(y_true, y_pred)),
    }
    with warnings.catch_warnings():  # R² of a single sample is undefined: sklearn warns and returns nan
        from sklearn.exceptions import UndefinedMetricWarning

        warnings.simplefilter("ignore", category=UndefinedMetricWarning)
        out["r2"] = float(m.r2_score(y_true, y_pred))
    return out


def _normalised(proba: np.ndarray) -> np.ndarray:
    """float32 model outputs rarely sum to exactly 1; sklearn insists, so renormalise rows."""
    proba = np.clip(proba, 0.0, None)
    sums = proba.sum(axis=1, keepdims=True)
    return np.divide(proba, sums, out=np.full_like(proba, 1.0 / proba.shape[1]), where=sums > 0)


def looks_like_probabilities(scores: np.ndarray) -> bool:
    """Rows in [0, 1] summing to ~1 (otherwise the output is logits or decision scores)."""
    return bool(
        scores.size and np.all(scores >= -1e-6) and np.all(scores <= 1 + 1e-6)
        and np.allclose(scores.sum(axis=1), 1.0, atol=1e-3)
    )


def softmax(scores: np.ndarray) -> np.ndarray:
    z = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)
