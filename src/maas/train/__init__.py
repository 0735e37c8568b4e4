"""Training: a YAML config → seeded split → optional Optuna search → refit → test → a registered ONNX version.

    from maas.train import train
    result = train("examples/breast_cancer/train.yaml", registry=reg)
    result.version.ref, result.test_metrics, result.cv, result.search
"""

from __future__ import annotations

from maas.train.config import TrainConfig, load, parse
from maas.train.pipeline import Progress, TrainResult, train

__all__ = ["Progress", "TrainConfig", "TrainResult", "load", "parse", "train"]
