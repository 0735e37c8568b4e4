"""Training: a YAML config → seeded split → optional Optuna search → refit → test → a registered ONNX version.

    import maas
    result = maas.train("examples/breast_cancer/train.yaml")           # the registry of $MAAS_HOME
    result = maas.training.train(config_dict, registry=reg, name="bc")  # the same, from the package
    result.version.ref, result.test_metrics, result.cv, result.search
"""

from __future__ import annotations

from maas.training.config import TrainConfig, load, parse
from maas.training.pipeline import Progress, TrainResult, train

__all__ = ["Progress", "TrainConfig", "TrainResult", "load", "parse", "train"]

