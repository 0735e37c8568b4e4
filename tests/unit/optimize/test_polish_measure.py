"""optimize and evaluate measure a model the same way: one size function and one timing loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from onnx import TensorProto, helper

from maas.evaluate.latency import model_size, time_calls
from maas.optimize.measure import sizes, speed


def identity(path: Path) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "id",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path.write_bytes(model.SerializeToString())
    return path


def test_optimize_sizes_are_evaluates_under_its_keys(tmp_path: Path) -> None:
    path = identity(tmp_path / "m.onnx")
    size = model_size(path)
    assert sizes(path) == {"size_bytes": size["bytes"], "gzip_bytes": size["gzip_bytes"]}
    assert size["bytes"] == path.stat().st_size


def test_the_timing_loop_warms_up_once_and_respects_its_bounds(tmp_path: Path) -> None:
    calls: list[int] = []
    times = time_calls(lambda: calls.append(1), budget_s=0.0, max_iterations=10, min_iterations=4)
    assert len(times) == 4 and len(calls) == 5
    report = speed(identity(tmp_path / "m.onnx"), np.ones((2, 3), np.float32), runs_b1=7, runs_b32=3)
    assert set(report) == {"latency_p50_ms_b1", "throughput_b32"} and report["throughput_b32"] > 0
