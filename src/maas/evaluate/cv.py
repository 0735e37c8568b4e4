"""k-fold cross-validation of a scikit-learn estimator on a data set: the mean and spread of each metric
over seeded folds (stratified for classification), so two model families can be compared fairly."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.evaluate.datasets import Dataset, Task
from maas.evaluate.metrics import classification_metrics, regression_metrics

SCALARS = {
    "classification": ("accuracy", "precision_macro", "recall_macro", "f1_macro", "f1_weighted", "log_loss",
                       "roc_auc_ovr"),
    "regression": ("mae", "rmse", "r2"),
}


def cross_validate(
    estimator: Any | Callable[[], Any], dataset: Dataset, *, k: int = 5, task: Task | None = None, seed: int = 0
) -> dict[str, tuple[float, float]]:
    """{metric: (mean, std)} over `k` folds. `estimator` is an unfitted scikit-learn estimator (cloned per fold)
    or a zero-argument factory returning one."""
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import KFold, StratifiedKFold

    is_instance = hasattr(estimator, "get_params") and not isinstance(estimator, type)
    make = (lambda: clone(estimator)) if is_instance else estimator
    task = task or dataset.task_hint or ("classification" if is_classifier(make()) else "regression")
    if dataset.y is None:
        raise InvalidArgument(f"dataset {dataset.name} has no targets to cross-validate against")
    if dataset.is_images:
        raise InvalidArgument(f"dataset {dataset.name} holds encoded images; cross-validation needs numeric rows")
    if k < 2:
        raise InvalidArgument(f"cross-validation needs k >= 2 folds, got {k}")
    x = dataset.x.reshape(len(dataset), -1)
    y = np.asarray(dataset.y)
    if task == "classification":
        y = _class_indices(y)
        counts = np.bincount(y)
        smallest = int(counts[counts > 0].min())
        if smallest < k:
            cls = int(np.flatnonzero(counts == smallest)[0])
            raise InvalidArgument(
                f"dataset {dataset.name} is too small for {k} folds: class {cls} has only {smallest} samples"
            )
        splitter: Any = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        n_classes = len(counts)
    else:
        if len(y) < k:
            raise InvalidArgument(f"dataset {dataset.name} is too small for {k} folds: {len(y)} samples")
        splitter = KFold(n_splits=k, shuffle=True, random_state=seed)

    per_fold: dict[str, list[float]] = {}
    for train, test in splitter.split(x, y):
        model = make()
        try:
            model.fit(x[train], y[train])
        except ValueError as exc:  # e.g. a regressor given class names, or NaNs the family cannot take
            raise InvalidArgument(f"cannot fit on dataset {dataset.name}: {exc}") from None
        if task == "classification":
            proba = _proba(model, x[test], n_classes)
            found = classification_metrics(y[test], model.predict(x[test]), proba, n_classes)
        else:
            found = regression_metrics(y[test], model.predict(x[test]))
        for name in SCALARS[task]:
            if name in found:
                per_fold.setdefault(name, []).append(found[name])
    return {
        name: (float(np.mean(v)), float(np.std(v))) for name, v in per_fold.items() if len(v) == k
    }


def _class_indices(y: np.ndarray) -> np.ndarray:
    if np.issubdtype(y.dtype, np.integer) and y.min() >= 0:
        return y.astype(np.int64)
    _, inverse = np.unique(y, return_inverse=True)
    return inverse.astype(np.int64)


def _proba(model: Any, x: np.ndarray, n_classes: int) -> np.ndarray | None:
    """Probabilities laid out by class index, even when a training fold lacked a class."""
    if not hasattr(model, "predict_proba"):
        return None
    try:
        p = model.predict_proba(x)
    except (AttributeError, NotImplementedError):  # e.g. SVC without probability=True
        return None
    full = np.zeros((len(x), n_classes))
    full[:, np.asarray(model.classes_, np.int64)] = p
    return full
