"""Models whose true attributions are known, for the explain tests (unit, integration and CLI)."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WEIGHTS = np.array([[3.0], [0.0], [-2.0], [0.0]], dtype=np.float32)
DIGITS_PRE = [
    {"op": "decode_image", "mode": "L"},
    {"op": "resize", "size": [28, 28]},
    {"op": "scale", "factor": 1 / 255},
    {"op": "layout", "to": "NCHW"},
]


def two_feature_model() -> bytes:
    """x FP32 [-1, 4] -> y [-1, 1] = 3 x0 - 2 x2 + 1: only features 0 and 2 matter."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "two_features",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        [numpy_helper.from_array(WEIGHTS, "w"), numpy_helper.from_array(np.array([1.0], np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    return model.SerializeToString()


def publish_digits(registry: Any, name: str = "digits", epochs: int = 2) -> Any:
    """The test kit's digits CNN, imported as a live torch module (so `source.pt2` is kept), taking PNGs."""
    import torch

    from maas.formats import ImportOptions, register
    from maas.testing.digits import digits_cnn

    return register(registry, digits_cnn(epochs), name=name, options=ImportOptions(
        sample_input=torch.zeros(2, 1, 28, 28), labels=[str(i) for i in range(10)], preprocess=DIGITS_PRE,
        postprocess=[{"op": "softmax"}],
    ))


def digit_png(index: int = 0) -> tuple[bytes, np.ndarray]:
    """A test-split digit as a 28x28 PNG, and the mask of the pixels where it is drawn."""
    from PIL import Image

    from maas.testing.digits import digits_arrays

    x, _ = digits_arrays("test")
    pixels = np.clip(x[index, 0] * 255, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "L").save(buf, format="PNG")
    return buf.getvalue(), pixels > 64


def top_decile_share(attributions: np.ndarray, mask: np.ndarray) -> float:
    """Share of the heat map's top-decile mass (by |attribution|) that lies on the `mask` pixels."""
    heat = np.abs(attributions).reshape(mask.shape)
    top = heat >= np.quantile(heat, 0.9)
    return float(heat[top & mask].sum() / heat[top].sum())


def brightness_model() -> bytes:
    """x FP32 [-1, 1, 8, 8] -> y [-1, 2] = (sum(x), -sum(x)): every pixel counts by its brightness."""
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
            helper.make_node("Unsqueeze", ["s", "one"], ["s1"]),
            helper.make_node("Mul", ["s1", "signs"], ["y"]),
        ],
        "brightness",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [
            numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
            numpy_helper.from_array(np.array([1.0, -1.0], np.float32), "signs"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 9
    return model.SerializeToString()


BRIGHTNESS_PRE = [
    {"op": "decode_image", "mode": "L"},
    {"op": "resize", "size": [8, 8]},
    {"op": "scale", "factor": 1 / 255},
    {"op": "layout", "to": "NCHW"},
]
