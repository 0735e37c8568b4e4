"""scikit-learn estimators by short name, from a fixed allow-list: the CLI never imports a module path a
user typed. Parameters come as `key=value` text and are checked against the estimator's own parameters."""

from __future__ import annotations

import ast
import importlib
from typing import Any

from maas.errors import InvalidArgument
from maas.evaluate.datasets import Task

# name -> (module, class, task)
FAMILIES: dict[str, tuple[str, str, Task]] = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression", "classification"),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier", "classification"),
    "gradient_boosting": ("sklearn.ensemble", "HistGradientBoostingClassifier", "classification"),
    "svc": ("sklearn.svm", "SVC", "classification"),
    "knn": ("sklearn.neighbors", "KNeighborsClassifier", "classification"),
    "decision_tree": ("sklearn.tree", "DecisionTreeClassifier", "classification"),
    "naive_bayes": ("sklearn.naive_bayes", "GaussianNB", "classification"),
    "linear_regression": ("sklearn.linear_model", "LinearRegression", "regression"),
    "ridge": ("sklearn.linear_model", "Ridge", "regression"),
    "lasso": ("sklearn.linear_model", "Lasso", "regression"),
    "random_forest_regressor": ("sklearn.ensemble", "RandomForestRegressor", "regression"),
    "gradient_boosting_regressor": ("sklearn.ensemble", "HistGradientBoostingRegressor", "regression"),
    "knn_regressor": ("sklearn.neighbors", "KNeighborsRegressor", "regression"),
    "svr": ("sklearn.svm", "SVR", "regression"),
}


def family_task(name: str) -> Task:
    return _entry(name)[2]


def make_estimator(name: str, params: dict[str, str] | None = None) -> Any:
    """A fresh, unfitted estimator of family `name` with `params` (text values parsed as Python literals)."""
    module, cls, _ = _entry(name)
    estimator = getattr(importlib.import_module(module), cls)()
    valid = estimator.get_params()
    values: dict[str, Any] = {}
    for key, text in (params or {}).items():
        if key not in valid:
            raise InvalidArgument(f"{name} has no parameter {key!r}; it has {sorted(valid)}")
        values[key] = parse_value(text)
    try:
        estimator.set_params(**values)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"invalid parameters for {name}: {exc}") from None
    return estimator


def parse_param(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise InvalidArgument(f"invalid parameter {text[:80]!r}: expected KEY=VALUE")
    return key.strip(), value.strip()


def parse_value(text: str) -> Any:
    """`10` -> 10, `0.5` -> 0.5, `None`/`True` -> literals, anything else stays a string (e.g. `rbf`)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _entry(name: str) -> tuple[str, str, Task]:
    try:
        return FAMILIES[name]
    except KeyError:
        raise InvalidArgument(f"unknown model family {name!r}; choose one of {sorted(FAMILIES)}") from None
