"""Tiny ONNX models built in the test (never committed binaries), and helpers to publish and serve them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from maas.registry import MODEL_ROLE, ModelVersion, Registry
from maas.serving import ServingDataPlane, ServingOptions

LINEAR_W = (np.arange(12, dtype=np.float32).reshape(4, 3) - 5.0) / 7.0
LINEAR_B = np.array([0.5, -1.0, 2.0], dtype=np.float32)
DIGIT_LABELS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _model(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def linear() -> bytes:
    """y = x @ W + b with x FP32 [-1, 4] and y FP32 [-1, 3]."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        [numpy_helper.from_array(LINEAR_W, "W"), numpy_helper.from_array(LINEAR_B, "b")],
    )
    return _model(graph)


def linear_expected(x: np.ndarray) -> np.ndarray:
    return x @ LINEAR_W + LINEAR_B


def add_constant(value: float) -> bytes:
    """y = x + value, x and y FP32 [-1, 2]: versions that differ only by `value` are easy to tell apart."""
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "c"], ["y"])],
        "add",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 2])],
        [numpy_helper.from_array(np.array([value], dtype=np.float32), "c")],
    )
    return _model(graph)


def collapse_batch() -> bytes:
    """A broken model: its output always has one row whatever the batch size."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=1)],
        "collapse",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.array([0], dtype=np.int64), "axes")],
    )
    return _model(graph)


def digits() -> bytes:
    """x FP32 [-1, 1, 8, 8] -> logits [-1, 10] = sum(x) * a + b: bright images favour 9, dark ones 0."""
    a = (np.arange(10, dtype=np.float32) - 4.5) / 10.0
    b = (np.arange(10, 0, -1, dtype=np.float32)) / 100.0
    graph = helper.make_graph(
        [
            helper.make_node("ReduceSum", ["x", "axes"], ["s"], keepdims=0),
            helper.make_node("Unsqueeze", ["s", "one"], ["s1"]),
            helper.make_node("Mul", ["s1", "a"], ["sa"]),
            helper.make_node("Add", ["sa", "b"], ["logits"]),
        ],
        "digits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 10])],
        [
            numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "axes"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
            numpy_helper.from_array(a, "a"),
            numpy_helper.from_array(b, "b"),
        ],
    )
    return _model(graph)


DIGITS_CONFIG: dict[str, Any] = {
    "labels": DIGIT_LABELS,
    "preprocess": [
        {"op": "decode_image", "mode": "L"},
        {"op": "resize", "size": [8, 8]},
        {"op": "scale", "factor": 1 / 255},
        {"op": "layout", "to": "NCHW"},
    ],
    "postprocess": [{"op": "softmax"}, {"op": "topk", "k": 3}, {"op": "labels"}],
}


def png(value: int, size: tuple[int, int] = (16, 16)) -> bytes:
    """A flat grey PNG (width, height)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", size, color=value).save(buf, format="PNG")
    return buf.getvalue()


def publish(registry: Registry, name: str, model: bytes, **kwargs: Any) -> ModelVersion:
    return registry.publish(name, {MODEL_ROLE: model}, source_format="onnx", **kwargs)


HANG_GUARD_S = 60.0


def serve(registry: Registry, body: Callable[[ServingDataPlane], Awaitable[Any]], **options: Any) -> Any:
    """Run `body` against a started data plane over `registry`, then stop it; nothing may hang the test."""

    async def main() -> Any:
        plane = ServingDataPlane(registry, ServingOptions(**{"inference_threads": 2, **options}))
        await plane.start()
        try:
            return await asyncio.wait_for(body(plane), HANG_GUARD_S)
        finally:
            await plane.stop(HANG_GUARD_S)

    return asyncio.run(main())
