"""Running a version like the server does: the session on the stored artifact, pre-steps, signature fitting."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from maas.errors import InvalidArgument
from maas.evaluate.runner import Runner, find_labels, find_probabilities, predict
from maas.registry import Registry
from maas.types import Signature, TensorSpec


def test_iris_predictions_match_sklearn(reg: Registry, publish: Any, models: dict[str, Any]) -> None:
    from sklearn.datasets import load_iris

    v = publish("iris")
    x = load_iris().data
    out = predict(reg, v, x, batch_size=7)  # float64 in, cast to the signature's FP32
    est = models["iris"][2]
    assert set(out) == {"label", "probabilities"}
    assert out["label"].tolist() == est.predict(x.astype(np.float32)).tolist()
    np.testing.assert_allclose(out["probabilities"], est.predict_proba(x.astype(np.float32)), atol=1e-5)
    assert find_probabilities(out, 3) == "probabilities" and find_probabilities(out, 4) is None
    assert find_labels(out) == "label"


def _sum_model(shape: list[int]) -> onnx.ModelProto:
    """y = sum over all but the batch axis of x, for a fixed input shape."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", *shape])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [len(shape)], list(range(1, len(shape) + 1)))
    node = helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)
    graph = helper.make_graph([node], "sum", [x], [y], initializer=[axes])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _publish_sum(reg: Registry, shape: list[int], **config: Any) -> Any:
    sig = Signature((TensorSpec("x", "FP32", (-1, *shape)),), (TensorSpec("y", "FP32", (-1,)),))
    return reg.publish("sum", {"model.onnx": _sum_model(shape).SerializeToString()}, signature=sig, config=config)


def test_rows_are_reshaped_to_the_signature_and_scaled(reg: Registry) -> None:
    v = _publish_sum(reg, [1, 8, 8], preprocess=[{"op": "scale", "factor": 0.5}], max_batch_size=4)
    x = np.ones((10, 64))
    with Runner(reg, v) as r:
        assert r.default_batch_size() == 4
        assert r.prepare(x).shape == (10, 1, 8, 8)
        assert r.predict(x)["y"].tolist() == [32.0] * 10
    with pytest.raises(InvalidArgument, match="do not fit the model input"):
        predict(reg, v, np.ones((2, 10)))


def test_normalize_is_applied_as_the_server_does(reg: Registry) -> None:
    v = _publish_sum(reg, [3], preprocess=[{"op": "normalize", "mean": [0.5], "std": [0.2]}])
    np.testing.assert_allclose(predict(reg, v, np.ones((2, 3)))["y"], [7.5, 7.5], rtol=1e-6)


def test_image_bytes_are_decoded_for_a_pixel_model(reg: Registry) -> None:
    import io

    from PIL import Image

    def png(value: int) -> bytes:
        buf = io.BytesIO()
        Image.new("L", (4, 4), value).save(buf, format="PNG")
        return buf.getvalue()

    x = np.empty(2, dtype=object)
    x[:] = [png(1), png(2)]
    plain = _publish_sum(reg, [4, 4, 1])
    assert predict(reg, plain, x)["y"].tolist() == [16.0, 32.0]
    declared = _publish_sum(reg, [2, 2, 1], preprocess=[
        {"op": "decode_image", "mode": "L"}, {"op": "resize", "size": [2, 2]}, {"op": "scale", "factor": 0.25},
    ])
    assert predict(reg, declared, x)["y"].tolist() == [1.0, 2.0]


def test_ready_tensors_skip_the_image_steps_as_on_the_server(reg: Registry) -> None:
    v = _publish_sum(reg, [3], preprocess=[{"op": "decode_image", "mode": "L"}, {"op": "scale", "factor": 0.5}])
    np.testing.assert_allclose(predict(reg, v, np.ones((2, 3)))["y"], [3.0, 3.0])
