"""Keras nets (torch backend) on digits: the seed CNN is expressible, the fitted pre-processing is inside the
registered graph, training is deterministic, and a search tunes lr / batch size / epochs as for torch nets."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from maas.training import config, data, train

os.environ.setdefault("KERAS_BACKEND", "torch")  # what maas.training.keras_nets sets; this module imports keras

TINY_CNN: dict[str, Any] = {
    "name": "digits-keras-cnn", "seed": 1, "data": {"source": "sklearn:digits"},
    "preprocessing": {"image": {"shape": [8, 8, 1], "upsample": 2, "center_crop": [14, 14], "scale": 0.0625,
                                "normalize": {"mean": [0.3], "std": [0.4]}}},
    "model": {"family": "keras_cnn", "epochs": 3, "batch_size": 64, "early_stopping": {"patience": 1},
              "optimizer": {"name": "adam", "lr": 0.01}, "loss": "cross_entropy",
              "layers": [{"type": "conv2d", "filters": 8, "kernel": [3, 3], "activation": "relu"},
                         {"type": "maxpool2d", "pool": [2, 2]}, {"type": "flatten"},
                         {"type": "dense", "units": 10, "activation": "softmax"}]},
}


def _served(reg: Any, ref: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    v = reg.get(ref)
    sess = ort.InferenceSession(reg.read_artifact(v), providers=["CPUExecutionProvider"])
    return sess.run(None, {v.signature.inputs[0].name: x})[0]


def test_keras_cnn_registers_and_serves_what_it_learned(reg: Any) -> None:
    import keras

    epochs: list[int] = []
    result = train(TINY_CNN, registry=reg,
                   progress=lambda e: epochs.append(e["epoch"]) if e["event"] == "epoch" else None)
    assert keras.backend.backend() == "torch"
    v = result.version
    assert v.source_format == "keras" and v.tags["train.family"] == "keras_cnn"
    assert v.signature is not None and v.signature.inputs[0].shape == (-1, 64)  # the data set's raw rows
    assert v.metrics["test"]["accuracy"] == result.test_metrics["accuracy"] > 0.5
    assert epochs and max(epochs) <= 3
    prep = data.prepare(config.parse(TINY_CNN), data.load_dataset("sklearn:digits", None))
    served = _served(reg, v.ref, prep.x_test)
    assert np.allclose(served.sum(1), 1.0, atol=1e-5)
    assert float(np.mean(served.argmax(1) == prep.y_test)) == pytest.approx(result.test_metrics["accuracy"], abs=1e-6)


def test_keras_mlp_is_deterministic_with_the_scaler_inside(reg: Any) -> None:
    from maas.training.learners import Learner

    cfg = config.parse({"name": "kmlp", "seed": 5, "data": {"source": "sklearn:digits"},
                        "model": {"family": "keras_mlp", "epochs": 2,
                                  "layers": [{"type": "dense", "units": 16, "activation": "relu"},
                                             {"type": "dropout", "rate": 0.1},
                                             {"type": "dense", "activation": "softmax"}]}})
    prep = data.prepare(cfg, data.load_dataset("sklearn:digits", None))
    learner = Learner(cfg, prep.task, 10)
    a, b = learner.fit({}, prep.x_train, prep.y_train), learner.fit({}, prep.x_train, prep.y_train)
    out_a = learner.outputs(a, prep.x_test)
    assert np.array_equal(out_a, learner.outputs(b, prep.x_test))
    norm = next(layer for layer in a.model.layers if type(layer).__name__ == "Normalization")
    assert np.allclose(np.asarray(norm.mean).reshape(-1), prep.x_train.mean(0), atol=1e-5)  # fitted on train rows

    result = train(cfg, registry=reg)
    served = _served(reg, result.version.ref, prep.x_test)
    refit = learner.outputs(learner.fit({}, prep.x_fit, prep.y_fit), prep.x_test)
    assert np.allclose(served, refit, atol=1e-5)


def test_search_tunes_keras_training_settings(reg: Any) -> None:
    cfg = {"name": "kmlp-search", "seed": 0, "data": {"source": "sklearn:iris"},
           "model": {"family": "keras_mlp", "epochs": 2, "batch_size": 16},
           "search": {"trials": 2, "objective": "validation", "pruner": "none",
                      "space": {"lr": {"type": "loguniform", "low": 0.001, "high": 0.1},
                                "batch_size": {"type": "categorical", "choices": [8, 32]},
                                "epochs": {"type": "int", "low": 1, "high": 3}}}}
    result = train(cfg, registry=reg)
    assert result.search is not None and len(result.search["trials"]) == 2
    assert set(result.params) == {"lr", "batch_size", "epochs"}
    assert result.version.metrics["params"] == result.params
