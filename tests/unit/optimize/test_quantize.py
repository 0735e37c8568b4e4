"""Quantization publishes smaller children with lineage and bounded accuracy loss; bad inputs publish nothing."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from maas.errors import InvalidArgument
from maas.optimize import optimize
from maas.registry import ModelVersion, Registry
from maas.types import Signature, TensorSpec

from .optimize_support import TEST_DATA, count_versions


def test_static_int8_is_under_30_percent_and_loses_at_most_one_point(reg: Registry, teacher: ModelVersion) -> None:
    stages: list[tuple[str, float]] = []
    result = optimize(reg, "digits:1", quantize="static", calibration="sklearn:digits:train", data=TEST_DATA,
                      progress=lambda stage, fraction: stages.append((stage, fraction)))
    child, report = result.version, result.report
    assert child.version > teacher.version and child.model == "digits"
    assert child.lineage.parent == teacher.version and child.lineage.transform == "quantize"
    assert child.lineage.params == {"mode": "static", "calibration": "sklearn:digits:train"}
    assert child.signature == teacher.signature and child.config == teacher.config
    assert child.metrics["optimize"] == report and child.metrics["accuracy"] == report["child"]["accuracy"]
    assert report["comparison"]["size_ratio"] <= 0.30
    assert report["comparison"]["accuracy_drop"] <= 0.01
    assert report["parent"]["accuracy"] > 0.9
    assert {"QuantizeLinear", "DequantizeLinear"} <= set(report["details"]["op_types"])
    for side in ("parent", "child"):  # measured, never asserted beyond being there
        assert report[side]["latency_p50_ms_b1"] > 0 and report[side]["throughput_b32"] > 0
    fractions = [f for _, f in stages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and stages[-1][0] == "done"


@pytest.mark.parametrize(("mode", "max_ratio"), [("dynamic", 0.30), ("fp16", 0.55)])
def test_dynamic_and_fp16(reg: Registry, teacher: ModelVersion, mode: str, max_ratio: float) -> None:
    result = optimize(reg, "digits:1", quantize=mode, data=TEST_DATA, timing=False)
    assert result.version.lineage.params == {"mode": mode}
    assert result.report["comparison"]["size_ratio"] <= max_ratio
    assert result.report["comparison"]["accuracy_drop"] <= 0.01
    assert "latency_p50_ms_b1" not in result.report["child"]
    if mode == "fp16":  # keep_io_types: the served signature is unchanged
        model = onnx.load(str(reg.artifact_path(result.version)))
        assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT


def test_calibration_of_the_wrong_shape_creates_no_version(reg: Registry, teacher: ModelVersion) -> None:
    before = count_versions(reg)
    with pytest.raises(InvalidArgument, match=r"shape \[10, 8, 8\] but input 'image' expects \['N', 1, 28, 28\]"):
        optimize(reg, "digits:1", quantize="static", calibration=np.zeros((10, 8, 8), np.float32))
    with pytest.raises(InvalidArgument, match="needs --calibration"):
        optimize(reg, "digits:1", quantize="static")
    with pytest.raises(InvalidArgument, match="unknown quantization"):
        optimize(reg, "digits:1", quantize="int4")
    assert count_versions(reg) == before


def test_fp16_on_an_integer_model_is_refused(reg: Registry, tmp_path: object) -> None:
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["y"])], "ints",
        [helper.make_tensor_value_info("x", TensorProto.INT64, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, ["n", 3])],
        [helper.make_tensor("one", TensorProto.INT64, [3], [1, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    sig = Signature((TensorSpec("x", "INT64", (-1, 3)),), (TensorSpec("y", "INT64", (-1, 3)),))
    reg.publish("ints", {"model.onnx": model.SerializeToString()}, signature=sig, source_format="onnx")
    with pytest.raises(InvalidArgument, match="needs a floating-point model"):
        optimize(reg, "ints:1", quantize="fp16")
    assert count_versions(reg, "ints") == 1


def test_exactly_one_transform_per_call(reg: Registry, teacher: ModelVersion) -> None:
    with pytest.raises(InvalidArgument, match="chain them"):
        optimize(reg, "digits:1", quantize="dynamic", slim=True)
    with pytest.raises(InvalidArgument, match="choose exactly one"):
        optimize(reg, "digits:1")
