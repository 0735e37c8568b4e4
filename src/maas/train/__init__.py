"""Training: a YAML config → seeded split → optional Optuna search → refit → test → a registered ONNX version.

    import maas
    result = maas.train("examples/breast_cancer/train.yaml")       # the registry of $MAAS_HOME
    result = maas.train.train(config_dict, registry=reg, name="bc")  # the same, spelled out
    result.version.ref, result.test_metrics, result.cv, result.search
"""

from __future__ import annotations

import sys
import types
from typing import Any

from maas.train.config import TrainConfig, load, parse
from maas.train.pipeline import Progress, TrainResult, train

__all__ = ["Progress", "TrainConfig", "TrainResult", "load", "parse", "train"]


class _CallableModule(types.ModuleType):
    """Lets `maas.train(config)` be the SDK's verb while `maas.train` stays the package."""

    def __call__(self, config: Any, **kwargs: Any) -> TrainResult:
        return train(config, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
