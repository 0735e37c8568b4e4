"""Triton's model-config vocabulary (`TYPE_*`, `KIND_*`, `FORMAT_*`, `dynamic_batching`…) is written only by
`maas.protocol`; the serving core hands over a neutral `ModelConfig` (issue #17: it was built in the data plane)."""

from __future__ import annotations

import ast
from pathlib import Path

import maas.serving
from maas.protocol.model_config import ENCODED_IMAGE_PARAMETER, data_type, triton_config
from maas.serving.contract import ModelConfig
from maas.types import TensorSpec

WIRE = ("TYPE_", "KIND_", "FORMAT_", "dynamic_batching", "instance_group", "version_policy", "data_type")


def test_the_serving_core_writes_no_model_config_wire_names() -> None:
    found = []
    for path in Path(maas.serving.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(WIRE):
                found.append(f"{path.name}:{node.lineno}: {node.value!r}")
    assert found == []


def test_rendering_drops_the_batch_dimension_only_when_batching() -> None:
    image = TensorSpec("image", "FP32", (-1, 28, 28, 1))
    cfg = ModelConfig(name="digits", version=3, platform="onnxruntime_onnx", backend="onnxruntime",
                      max_batch_size=0, inputs=(image,), outputs=(TensorSpec("labels", "BYTES", (-1,)),),
                      instances=2, encoded_inputs=(TensorSpec("image", "BYTES", (-1,)),))
    doc = triton_config(cfg)
    assert doc["input"][0]["dims"] == [-1, 28, 28, 1] and "dynamic_batching" not in doc
    assert doc["output"] == [{"name": "labels", "data_type": "TYPE_STRING", "dims": [-1]}]
    assert doc["version_policy"] == {"specific": {"versions": [3]}}
    assert doc["instance_group"] == [{"name": "digits", "count": 2, "kind": "KIND_CPU"}]
    assert doc["parameters"] == {ENCODED_IMAGE_PARAMETER: {"string_value": "image"}}
    batched = triton_config(ModelConfig(**{**cfg.__dict__, "max_batch_size": 8, "encoded_inputs": ()}))
    assert batched["input"][0]["dims"] == [28, 28, 1] and "parameters" not in batched
    assert batched["dynamic_batching"] == {"preferred_batch_size": [], "max_queue_delay_microseconds": 0}
    assert data_type("BF16") == "TYPE_BF16"
