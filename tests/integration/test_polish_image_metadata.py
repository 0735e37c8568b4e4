"""An image model's metadata and config describe the tensor a Triton client can build, and say (in
`parameters`) that an encoded image is also accepted; a client that reads only the metadata can infer."""

from __future__ import annotations

import io
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from onnx import TensorProto, helper, numpy_helper

from maas.config import Settings
from maas.registry import Registry
from maas.testing.live_server import LiveServer, live_server

CONFIG = {
    "preprocess": [
        {"op": "decode_image", "mode": "L"},
        {"op": "resize", "size": [4, 4]},
        {"op": "scale", "factor": 1 / 255},
    ],
}


def brightness_model() -> bytes:
    """x FP32 [-1, 4, 4, 1] -> y FP32 [-1, 1], the sum of the pixels."""
    graph = helper.make_graph(
        [helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
        "brightness",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 4, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch"])],
        [numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "axes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    return model.SerializeToString()


def png(value: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (8, 8), color=value).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def image_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    with Registry(settings) as reg:
        reg.publish("bright", {"model.onnx": brightness_model()}, source_format="onnx", config=CONFIG)
    with live_server(settings) as srv:
        yield srv


def test_rest_metadata_shows_the_tensor_and_the_encoded_form(image_server: LiveServer) -> None:
    doc = httpx.get(f"{image_server.http_url}/v2/models/bright").json()
    assert doc["inputs"] == [
        {
            "name": "x", "datatype": "FP32", "shape": [-1, 4, 4, 1],
            "parameters": {"encoded_image": {"datatype": "BYTES", "shape": [-1], "formats": ["png", "jpeg"]}},
        }
    ]


def test_config_has_tensor_dims_and_names_the_encoded_input(image_server: LiveServer) -> None:
    http = httpclient.InferenceServerClient(image_server.http_target)
    grpc = grpcclient.InferenceServerClient(image_server.grpc_target)
    try:
        config = http.get_model_config("bright")
        assert config["input"][0]["data_type"] == "TYPE_FP32" and config["input"][0]["dims"] == [4, 4, 1]
        assert config["parameters"] == {"encoded_image_inputs": {"string_value": "x"}}
        gconfig = grpc.get_model_config("bright").config
        assert gconfig.parameters["encoded_image_inputs"].string_value == "x"
        gmeta = grpc.get_model_metadata("bright")
        assert (gmeta.inputs[0].datatype, list(gmeta.inputs[0].shape)) == ("FP32", [-1, 4, 4, 1])
    finally:
        http.close()
        grpc.close()


def test_a_client_building_from_metadata_can_infer_both_ways(image_server: LiveServer) -> None:
    http = httpclient.InferenceServerClient(image_server.http_target)
    try:
        spec = http.get_model_metadata("bright")["inputs"][0]
        shape = [2 if d == -1 else d for d in spec["shape"]]
        tensor = httpclient.InferInput(spec["name"], shape, spec["datatype"])
        tensor.set_data_from_numpy(np.ones(shape, dtype=np.float32))
        assert http.infer("bright", [tensor]).as_numpy("y").tolist() == [16.0, 16.0]
        image = httpclient.InferInput(spec["name"], [1], spec["parameters"]["encoded_image"]["datatype"])
        image.set_data_from_numpy(np.array([png(255)], dtype=object))
        assert http.infer("bright", [image]).as_numpy("y").tolist() == [16.0]
    finally:
        http.close()


def test_v1_predict_takes_the_tensor_from_metadata(image_server: LiveServer) -> None:
    resp = httpx.post(f"{image_server.http_url}/v1/models/bright:predict",
                      json={"instances": [np.zeros((4, 4, 1)).tolist()]})
    assert resp.status_code == 200 and resp.json() == {"predictions": [0.0]}
