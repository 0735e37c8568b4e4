"""Outputs are renamed at import: the source's names when it has them, else `output_<i>` for generated ones."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from maas.formats.output_names import chosen_names, rename_outputs


def two_outputs(first: str, second: str, passthrough: bool = False) -> onnx.ModelProto:
    nodes = [helper.make_node("Relu", ["x"], [first]), helper.make_node("Neg", [first], ["inner"])]
    nodes.append(helper.make_node("Abs", ["inner"], [second]))
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [-1, 2]) for n in (first, second)]
    if passthrough:
        outs.append(helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 2]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [-1, 2])], outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def run(model: onnx.ModelProto) -> dict[str, list[list[float]]]:
    onnx.checker.check_model(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.array([[1.0, -2.0]], dtype=np.float32)
    return {o.name: v.tolist() for o, v in zip(sess.get_outputs(), sess.run(None, {"x": x}), strict=True)}


def test_generated_names_become_positional_and_the_graph_still_runs() -> None:
    assert run(rename_outputs(two_outputs("45", "keras_tensor_7"))) == {
        "output_0": [[1.0, 0.0]], "output_1": [[1.0, 0.0]]
    }


def test_source_names_win_and_meaningful_names_stay() -> None:
    assert list(run(rename_outputs(two_outputs("45", "46"), ["probs", "logits"]))) == ["probs", "logits"]
    assert list(run(rename_outputs(two_outputs("label", "probabilities")))) == ["label", "probabilities"]


def test_unusable_source_names_are_ignored() -> None:
    assert chosen_names(["45", "46"], ["a", "a"]) == ["output_0", "output_1"]
    assert chosen_names(["45", "y"], ["has space", "b"]) == ["output_0", "y"]
    assert chosen_names(["45"], ["a", "b"]) == ["output_0"]


def test_a_name_taken_by_an_inner_tensor_or_an_input_is_not_reused() -> None:
    assert list(run(rename_outputs(two_outputs("45", "46"), ["inner", "b"]))) == ["output_0", "output_1"]
    assert list(run(rename_outputs(two_outputs("45", "46", passthrough=True)))) == ["output_0", "output_1", "x"]
