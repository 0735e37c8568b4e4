"""The console tests' maas home: small real models (tabular, a digits CNN, 200 cheap models, one with 50
versions, one whose every request is logged against a drift reference) and three API keys, written before
`maas serve` starts on it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from maas.config import Settings
from maas.monitor.reference import reference_from_data
from maas.registry import Lineage, Registry
from maas.testing.digits import CONFIG as DIGITS_CONFIG
from maas.testing.digits import SIGNATURE as DIGITS_SIGNATURE
from maas.testing.digits import digits_arrays
from maas.types import Signature, TensorSpec

from ..models import linear_model

LINEAR_SIGNATURE = Signature(
    inputs=(TensorSpec("x", "FP32", (-1, 4)),),
    outputs=(TensorSpec("y", "FP32", (-1, 3)), TensorSpec("label", "INT64", (-1,))),
)
LINEAR_CONFIG = {"labels": ["setosa", "versicolor", "virginica"]}
BULK_MODELS = 200
MANY_VERSIONS = 50
DRIFT_ROWS = 64  # rows per request to the drift model (its max_batch_size)


def digits_centroid_model() -> bytes:
    """A real digit classifier built in milliseconds (training the CNN takes half a minute here): nearest
    class centroid of the `sklearn:digits` train split in the MNIST-shaped 28x28 form, written as the linear
    map it is (score_c = x . mu_c - |mu_c|^2 / 2), input `image` [N, 1, 28, 28] -> `logits` [N, 10]."""
    x, y = digits_arrays("train")
    flat = x.reshape(len(x), -1)
    centroids = np.stack([flat[y == c].mean(axis=0) for c in range(10)]).astype(np.float32)
    weights = centroids.T.copy()
    bias = (-0.5 * (centroids**2).sum(axis=1)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
         helper.make_node("Gemm", ["flat", "W", "b"], ["logits"])],
        "digits_centroids",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [helper.make_tensor("W", TensorProto.FLOAT, list(weights.shape), weights.ravel()),
         helper.make_tensor("b", TensorProto.FLOAT, [10], bias)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


@dataclass
class Tokens:
    admin: str
    write: str
    read: str


def prepare_home(home: Path, *, digits: bool = True) -> Tokens:
    settings = Settings(home=home)
    registry = Registry(settings)
    try:
        onnx_file = home / "linear.onnx"
        onnx_file.write_bytes(linear_model())
        files = {"model.onnx": onnx_file}

        def publish(name: str, **extra: object) -> None:
            registry.publish(name, files, signature=LINEAR_SIGNATURE, source_format="onnx",
                             config=dict(LINEAR_CONFIG), **extra)  # type: ignore[arg-type]

        publish("iris", description="the linear test model on iris-shaped rows")
        publish("iris", description="a quantized child", lineage=Lineage(1, "quantize", {"mode": "dynamic"}),
                metrics={"accuracy": 0.9})
        for name in ("split", "roll"):
            publish(name)
            publish(name)
        registry.set_alias("roll", "production", 1)  # the stable version a rollout starts from
        publish("many")
        for n in range(2, MANY_VERSIONS + 1):
            publish("many", lineage=Lineage(n - 1, "prune" if n % 2 else "quantize", {"step": n}))
        registry.publish("drifty", files, signature=LINEAR_SIGNATURE, source_format="onnx",
                         config={**LINEAR_CONFIG, "max_batch_size": DRIFT_ROWS, "log_sample_rate": 1.0},
                         description="every request logged, for the drift view")
        reference_from_data(registry, "drifty", np.random.default_rng(0).normal(size=(2000, 4)).astype(np.float32),
                            source="console test reference")
        for i in range(BULK_MODELS):
            publish(f"bulk-{i:03d}", description=f"bulk model number {i}")
        if digits:
            digits_file = home / "digits.onnx"
            digits_file.write_bytes(digits_centroid_model())
            registry.publish("digits", {"model.onnx": digits_file}, signature=DIGITS_SIGNATURE,
                             source_format="onnx", config=dict(DIGITS_CONFIG),
                             description="nearest-centroid digits (28x28)")
        keys = registry.key_store()
        return Tokens(admin=keys.create("console-admin", "admin")[1], write=keys.create("console-write", "write")[1],
                      read=keys.create("console-read", "read")[1])
    finally:
        registry.close()
