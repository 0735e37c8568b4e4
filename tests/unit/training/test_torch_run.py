"""Tiny torch nets on digits: registered with the fitted pre-processing inside the graph, and deterministic."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from maas.training import config, data, train

TINY_CNN: dict[str, Any] = {
    "name": "digits-cnn", "seed": 1, "data": {"source": "sklearn:digits"},
    "preprocessing": {"image": {"shape": [8, 8, 1], "upsample": 2, "center_crop": [14, 14], "scale": 0.0625,
                                "normalize": {"mean": [0.3], "std": [0.4]}}},
    "model": {"family": "torch_cnn", "epochs": 2, "batch_size": 64, "early_stopping": {"patience": 1},
              "optimizer": {"name": "adam", "lr": 0.01},
              "layers": [{"type": "conv2d", "filters": 8, "kernel": 3, "activation": "relu"},
                         {"type": "maxpool2d", "pool": 2}, {"type": "flatten"},
                         {"type": "dense", "activation": "softmax"}]},
}


def _served(reg: Any, ref: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    v = reg.get(ref)
    sess = ort.InferenceSession(reg.read_artifact(v), providers=["CPUExecutionProvider"])
    return sess.run(None, {v.signature.inputs[0].name: x})[0]


def test_tiny_cnn_registers_and_serves_what_it_learned(reg: Any) -> None:
    epochs: list[int] = []
    result = train(TINY_CNN, registry=reg,
                   progress=lambda e: epochs.append(e["epoch"]) if e["event"] == "epoch" else None)
    v = result.version
    assert v.signature is not None and v.signature.inputs[0].shape == (-1, 64)  # the data set's raw rows
    assert v.config["labels"] == [str(i) for i in range(10)]
    assert v.metrics["test"]["accuracy"] == result.test_metrics["accuracy"] > 0.5
    assert epochs and max(epochs) <= 2
    prep = data.prepare(config.parse(TINY_CNN), data.load_dataset("sklearn:digits", None))
    served = _served(reg, v.ref, prep.x_test)
    assert np.allclose(served.sum(1), 1.0, atol=1e-5)  # the softmax head is part of the graph
    assert float(np.mean(served.argmax(1) == prep.y_test)) == pytest.approx(result.test_metrics["accuracy"], abs=1e-6)


def test_mlp_scaler_is_folded_in_and_training_is_deterministic(reg: Any) -> None:
    from maas.training.learners import Learner

    cfg = config.parse({"name": "mlp", "seed": 5, "data": {"source": "sklearn:digits"},
                        "model": {"family": "torch_mlp", "epochs": 1,
                                  "layers": [{"type": "dense", "units": 16, "activation": "relu"},
                                             {"type": "dropout", "rate": 0.1},
                                             {"type": "dense", "activation": "softmax"}]}})
    prep = data.prepare(cfg, data.load_dataset("sklearn:digits", None))
    learner = Learner(cfg, prep.task, 10)
    a = learner.fit({}, prep.x_train, prep.y_train)
    b = learner.fit({}, prep.x_train, prep.y_train)
    out_a, out_b = learner.outputs(a, prep.x_test), learner.outputs(b, prep.x_test)
    assert np.array_equal(out_a, out_b)
    prep_mod = a.model.prep
    assert np.allclose(prep_mod.mean.numpy(), prep.x_train.mean(0))  # fitted on the training rows

    result = train(cfg, registry=reg)
    served = _served(reg, result.version.ref, prep.x_test)
    assert np.allclose(served, learner.outputs(learner.fit({}, prep.x_fit, prep.y_fit), prep.x_test), atol=1e-5)
