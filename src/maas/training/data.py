"""Data for one training run: the data set (loaded by `maas.evaluate`), its task, encoded labels, and the
seeded train / validation / test split. Checks that depend on the data (target column, classes per fold) run
here, before any model is fitted. Image-folder files are decoded here (see image_files)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.training.config import CLASSIFICATION_METRICS, REGRESSION_METRICS, TrainConfig


def load_dataset(source: str, target: str | None) -> Any:
    """The one call into the data loaders of `maas.evaluate` (CSV, .npz, image folders, sklearn built-ins)."""
    from maas.evaluate.datasets import load_dataset as load

    try:
        return load(source, target=target)
    except InvalidArgument as exc:
        field = "data.target" if target is not None and "column" in exc.message else "data.source"
        raise InvalidArgument(f"{field}: {exc.message}") from None


@dataclass(frozen=True)
class Prepared:
    """Splits as arrays (features float32, labels int64 for classification) and what was learned about them."""

    task: str  # classification | regression
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: list[str] | None  # class index -> name
    fingerprint: str
    dataset_name: str

    @property
    def x_fit(self) -> np.ndarray:
        """Train + validation: what the final model is refitted on."""
        return np.concatenate([self.x_train, self.x_val]) if len(self.x_val) else self.x_train

    @property
    def y_fit(self) -> np.ndarray:
        return np.concatenate([self.y_train, self.y_val]) if len(self.y_val) else self.y_train


def infer_task(y: np.ndarray, hint: str | None) -> str:
    if hint in ("classification", "regression"):
        return hint
    if y.dtype.kind in ("U", "S", "O", "b"):
        return "classification"
    if y.dtype.kind in ("i", "u") and len(np.unique(y)) <= max(20, int(0.05 * len(y))):
        return "classification"
    return "regression"


def encode_labels(y: np.ndarray, class_names: tuple[str, ...], enabled: bool) -> tuple[np.ndarray, list[str]]:
    """Class values -> 0..k-1, with the names the served model answers with."""
    classes, codes = np.unique(y, return_inverse=True)
    if not enabled:
        if classes.dtype.kind not in ("i", "u") or classes[0] < 0:
            raise InvalidArgument("preprocessing.label_encoding: the labels are not class indices; enable it")
        k = int(classes.max()) + 1
        names = list(class_names) if len(class_names) == k else [str(i) for i in range(k)]
        return y.astype(np.int64), names
    if class_names and classes.dtype.kind in ("i", "u") and classes.max() < len(class_names):
        names = [class_names[int(c)] for c in classes]
    else:
        names = [str(c) for c in classes]
    return codes.astype(np.int64), names


def check_search(cfg: TrainConfig, task: str, y_fit: np.ndarray) -> None:
    """A search that cannot run (too few rows per fold, a metric of the other task) fails before training."""
    if cfg.search is None:
        return
    metric = cfg.search.metric
    allowed = CLASSIFICATION_METRICS if task == "classification" else REGRESSION_METRICS
    if metric is not None and metric not in allowed:
        raise InvalidArgument(f"search.metric: {metric!r} does not apply to {task}; use one of {sorted(allowed)}")
    if cfg.search.objective != "cv":
        return
    k = cfg.search.k
    if len(y_fit) < 2 * k:
        raise InvalidArgument(f"search.k: {len(y_fit)} training rows are too few for {k} folds")
    if task == "classification":
        smallest = int(np.bincount(y_fit).min()) if len(y_fit) else 0
        if smallest < k:
            raise InvalidArgument(
                f"search.k: the smallest class has {smallest} training rows, fewer than the {k} folds"
            )


def prepare(cfg: TrainConfig, ds: Any) -> Prepared:
    """Encode labels and split, stratified for classification, with the config's seed."""
    from sklearn.model_selection import train_test_split

    if ds.y is None:
        raise InvalidArgument(f"data.target: data set {ds.name} has no target column")
    if ds.x.dtype == object:
        from maas.training import image_files

        x = image_files.decode(cfg, ds.x)
    else:
        image = cfg.preprocessing.image
        if image is not None and image.decode is not None:
            raise InvalidArgument("preprocessing.image.decode: applies to image folders, not to numeric data")
        x = np.asarray(ds.x, dtype=np.float32)
    task = infer_task(np.asarray(ds.y), getattr(ds, "task_hint", None))
    labels: list[str] | None = None
    if task == "classification":
        names = tuple(getattr(ds, "class_names", ()) or ())
        y, labels = encode_labels(np.asarray(ds.y), names, cfg.preprocessing.label_encoding)
    else:
        y = np.asarray(ds.y, dtype=np.float32)
    split = cfg.data.split
    strat = task == "classification" and split.stratify
    n = len(x)
    n_test = int(round(split.test * n))
    n_val = int(round(split.validation * n))
    if n_test < 1 or n - n_test - n_val < 2:
        raise InvalidArgument(f"data.split: {n} rows are too few for this split")
    try:
        x_rest, x_test, y_rest, y_test = train_test_split(
            x, y, test_size=n_test, random_state=cfg.seed, stratify=y if strat else None
        )
        if n_val:
            x_train, x_val, y_train, y_val = train_test_split(
                x_rest, y_rest, test_size=n_val, random_state=cfg.seed, stratify=y_rest if strat else None
            )
        else:
            x_train, y_train, x_val, y_val = x_rest, y_rest, x_rest[:0], y_rest[:0]
    except ValueError as exc:  # a class too small to stratify
        raise InvalidArgument(f"data.split: {exc}") from None
    prepared = Prepared(
        task, x_train, y_train, x_val, y_val, x_test, y_test, labels, ds.fingerprint, ds.name
    )
    check_search(cfg, task, prepared.y_fit if cfg.search and cfg.search.objective == "cv" else y_train)
    return prepared
