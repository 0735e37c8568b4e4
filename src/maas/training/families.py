"""Model families by allow-listed name, the one table for `maas train` and `maas cv`. A config or a command
names a family, never a module path, so nothing user-given is ever imported."""

from __future__ import annotations

import inspect
from typing import Any, Literal

from maas.errors import InvalidArgument

# family -> (module, classifier class, regressor class); the task picks one of the two.
SKLEARN_FAMILIES: dict[str, tuple[str, str | None, str | None]] = {
    "logistic_regression": ("sklearn.linear_model", "LogisticRegression", None),
    "ridge": ("sklearn.linear_model", "RidgeClassifier", "Ridge"),
    "linear_regression": ("sklearn.linear_model", None, "LinearRegression"),
    "svm": ("sklearn.svm", "SVC", "SVR"),
    "knn": ("sklearn.neighbors", "KNeighborsClassifier", "KNeighborsRegressor"),
    "decision_tree": ("sklearn.tree", "DecisionTreeClassifier", "DecisionTreeRegressor"),
    "random_forest": ("sklearn.ensemble", "RandomForestClassifier", "RandomForestRegressor"),
    "extra_trees": ("sklearn.ensemble", "ExtraTreesClassifier", "ExtraTreesRegressor"),
    "gradient_boosting": ("sklearn.ensemble", "GradientBoostingClassifier", "GradientBoostingRegressor"),
    "hist_gradient_boosting": (
        "sklearn.ensemble", "HistGradientBoostingClassifier", "HistGradientBoostingRegressor",
    ),
    "mlp": ("sklearn.neural_network", "MLPClassifier", "MLPRegressor"),
    "naive_bayes": ("sklearn.naive_bayes", "GaussianNB", None),
    "lasso": ("sklearn.linear_model", None, "Lasso"),
}
NET_FAMILIES = frozenset({"torch_mlp", "torch_cnn", "keras_mlp", "keras_cnn"})
CNN_FAMILIES = frozenset({"torch_cnn", "keras_cnn"})


def family_task(family: str, hint: str | None = None) -> Literal["classification", "regression"]:
    """The task a family is used for: `hint` (a data set's task) when the family can do it, else the one it
    can do (classification first)."""
    if family not in SKLEARN_FAMILIES:
        raise InvalidArgument(f"unknown model family {family!r}; choose one of {sorted(SKLEARN_FAMILIES)}")
    _, clf, reg = SKLEARN_FAMILIES[family]
    can: list[Literal["classification", "regression"]] = []
    if clf:
        can.append("classification")
    if reg:
        can.append("regression")
    return next((t for t in can if t == hint), can[0])


def net_backend(family: str) -> Any:
    """The module that builds, fits and runs a net family (torch_nets or keras_nets), imported on first use."""
    import importlib

    module = "keras_nets" if family.startswith("keras_") else "torch_nets"
    return importlib.import_module(f"maas.training.{module}")


def _classes(family: str) -> list[type]:
    import importlib

    module, clf, reg = SKLEARN_FAMILIES[family]
    mod = importlib.import_module(module)
    return [getattr(mod, n) for n in (clf, reg) if n]


def check_sklearn_params(family: str, params: dict[str, Any], where: str = "model.params") -> None:
    """Refuse parameters the family's estimators do not take (before any data is loaded)."""
    try:
        classes = _classes(family)
    except ImportError:
        raise InvalidArgument("scikit-learn families need the train extra: pip install 'maas[train]'") from None
    accepted: set[str] = set()
    for cls in classes:
        accepted |= set(inspect.signature(cls).parameters)
    for key in params:
        if key not in accepted:
            shown = where if where != "model.params" else f"{where}.{key}"
            raise ValueError(f"{shown}: {family} has no parameter {key!r}")


def make_estimator(family: str, task: str, params: dict[str, Any], seed: int) -> Any:
    """A fresh estimator for the task; `random_state` is the config's seed unless the params set it."""
    import importlib

    module, clf, reg = SKLEARN_FAMILIES[family]
    cls_name = clf if task == "classification" else reg
    if cls_name is None:
        raise InvalidArgument(f"model.family: {family} cannot do {task}")
    cls = getattr(importlib.import_module(module), cls_name)
    accepted = set(inspect.signature(cls.__init__).parameters)
    kwargs = {k: v for k, v in params.items() if k in accepted}
    if "random_state" in accepted:
        kwargs.setdefault("random_state", seed)
    if cls_name == "SVC":
        kwargs.setdefault("probability", True)  # served models answer with class probabilities
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"model.params: {exc}") from None
