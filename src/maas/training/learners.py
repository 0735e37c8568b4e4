"""One interface over the families: fit on arrays with given (searched) parameters, and answer with what the
served model will answer (probabilities or values). The fitted pre-processing travels inside the model:
a scikit-learn Pipeline step, or the first module (layers) of a torch (Keras) net."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from maas.training.config import TrainConfig

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class Fitted:
    model: Any  # a scikit-learn Pipeline or estimator, a torch net or a keras.Sequential
    best_epoch: int | None = None  # nets with early stopping
    history: list[dict[str, float]] | None = None


class Learner:
    """Builds and fits one family for one task."""

    def __init__(self, cfg: TrainConfig, task: str, n_classes: int | None) -> None:
        self.cfg, self.task, self.n_classes = cfg, task, n_classes

    @property
    def is_net(self) -> bool:
        return self.cfg.model.is_net

    def fit(
        self, params: dict[str, Any], x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None, *, epochs: int | None = None, on_epoch: EpochCallback | None = None,
    ) -> Fitted:
        if self.is_net:
            return self._fit_net(params, x, y, x_val, y_val, epochs, on_epoch)
        return Fitted(self._sklearn_model(params).fit(flat(x), y))

    def outputs(self, fitted: Fitted, x: np.ndarray) -> np.ndarray:
        if self.is_net:
            from maas.training.families import net_backend

            return np.asarray(net_backend(self.cfg.model.family).predict(fitted.model, x))
        model, x = fitted.model, flat(x)
        if self.task == "classification":
            if hasattr(model, "predict_proba"):
                return np.asarray(model.predict_proba(x), dtype=np.float32)
            return np.asarray(model.predict(x), dtype=np.int64)
        return np.asarray(model.predict(x), dtype=np.float32)

    def _sklearn_model(self, params: dict[str, Any]) -> Any:
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        from maas.training.families import make_estimator

        est = make_estimator(self.cfg.model.family, self.task, {**self.cfg.model.params, **params}, self.cfg.seed)
        kind = self.cfg.preprocessing.tabular
        if kind == "none":
            return est
        scaler = StandardScaler() if kind == "standardize" else MinMaxScaler()
        return Pipeline([("scale", scaler), ("model", est)])

    def _fit_net(
        self, params: dict[str, Any], x: np.ndarray, y: np.ndarray, x_val: np.ndarray | None,
        y_val: np.ndarray | None, epochs: int | None, on_epoch: EpochCallback | None,
    ) -> Fitted:
        from maas.training.families import net_backend

        nets = net_backend(self.cfg.model.family)
        mean = std = None
        image = self.cfg.preprocessing.image
        if image is None and self.cfg.preprocessing.tabular != "none":
            x2 = flat(x)
            if self.cfg.preprocessing.tabular == "standardize":
                mean, std = x2.mean(0), x2.std(0)
            else:
                mean, std = x2.min(0), x2.max(0) - x2.min(0)
            std = np.where(std > 1e-12, std, 1.0).astype(np.float32)
        n_out = self.n_classes if self.task == "classification" else 1
        net = nets.build(self.cfg.model, image, tuple(x.shape[1:]), int(n_out or 1), mean, std, self.cfg.seed)
        res = nets.fit(
            net, self.cfg.model, self.task, x, y, seed=self.cfg.seed, x_val=x_val, y_val=y_val, over=params,
            epochs=epochs, on_epoch=on_epoch,
        )
        return Fitted(net, res.best_epoch, res.history)


def flat(x: np.ndarray) -> np.ndarray:
    """Rows of features, as scikit-learn wants them."""
    return x.reshape(len(x), -1) if x.ndim > 2 else x
