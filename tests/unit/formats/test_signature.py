"""Signature extraction from ONNX graphs."""

from __future__ import annotations

from onnx import TensorProto, helper

from maas.formats import signature


def test_dynamic_dims_types_and_batch_axis():
    graph = helper.make_graph(
        [
            helper.make_node("Identity", ["x"], ["y"]),
            helper.make_node("Cast", ["x"], ["z"], to=TensorProto.INT64),
        ],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, ["batch", 5, None])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT16, ["batch", 5, None]),
            helper.make_tensor_value_info("z", TensorProto.INT64, None),
        ],
    )
    sig = signature.extract(helper.make_model(graph))
    assert sig.inputs[0].datatype == "FP16" and sig.inputs[0].shape == (-1, 5, -1)
    assert sig.outputs[1].datatype == "INT64" and sig.batch_axis
