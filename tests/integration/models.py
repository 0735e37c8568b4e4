"""Tiny real ONNX models for the transport tests, built with onnx.helper (never committed as binaries)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

WEIGHTS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
BIAS = np.array([0.1, -0.2, 0.3], dtype=np.float32)


def linear_model() -> bytes:
    """y = x @ W + b (FP32 [-1,4] -> [-1,3]) and label = argmax(y) (INT64 [-1])."""
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "b"], ["y"]),
            helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor("W", TensorProto.FLOAT, [4, 3], WEIGHTS.ravel()),
            helper.make_tensor("b", TensorProto.FLOAT, [3], BIAS),
        ],
    )
    return _serialize(graph)


# Two rows for the linear model, and what onnxruntime itself answers for any input (the clients' tests compare).
LINEAR_X = np.array([[1, 2, 3, 4], [-1, 0.5, 0, 2]], dtype=np.float32)


def linear_reference(x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    return ort.InferenceSession(linear_model(), providers=["CPUExecutionProvider"]).run(None, {"x": x})  # type: ignore[no-any-return]


ECHO_TYPES = {
    "s": TensorProto.STRING,
    "i": TensorProto.INT32,
    "h": TensorProto.FLOAT16,
    "b": TensorProto.BOOL,
}


def echo_model() -> bytes:
    """Identity for one input per awkward datatype (BYTES, INT32, FP16, BOOL): out_<n> = <n>."""
    graph = helper.make_graph(
        [helper.make_node("Identity", [n], [f"out_{n}"]) for n in ECHO_TYPES],
        "echo",
        [helper.make_tensor_value_info(n, t, ["batch"]) for n, t in ECHO_TYPES.items()],
        [helper.make_tensor_value_info(f"out_{n}", t, ["batch"]) for n, t in ECHO_TYPES.items()],
    )
    return _serialize(graph)


def _serialize(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()
