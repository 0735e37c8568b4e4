"""tritonclient.grpc (sync and asyncio) against the real server, plus raw gRPC for garbage and auth."""

import asyncio

import grpc
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as aiogrpcclient
from tritonclient.utils import InferenceServerException

from maas.protocol.grpc_gen import inference_pb2 as pb

from .conftest import make_settings, serving
from .models import LINEAR_X as X
from .models import linear_reference as reference


@pytest.fixture
def client(server):
    c = grpcclient.InferenceServerClient(server.grpc)
    yield c
    c.close()


def linear_inputs():
    inp = grpcclient.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X)
    return [inp]


def test_infer_matches_onnxruntime(client):
    result = client.infer("linear", linear_inputs(), request_id="g1")
    y, label = reference(X)
    np.testing.assert_array_equal(result.as_numpy("y"), y)
    np.testing.assert_array_equal(result.as_numpy("label"), label)
    assert result.get_response().id == "g1"


def test_requested_output_and_version(client):
    result = client.infer(
        "linear", linear_inputs(), model_version="1", outputs=[grpcclient.InferRequestedOutput("label")]
    )
    assert [o.name for o in result.get_response().outputs] == ["label"]
    np.testing.assert_array_equal(result.as_numpy("label"), reference(X)[1])


def test_echo_awkward_datatypes(client):
    values = {
        "s": (np.array([b"hello", "wörld".encode(), b""], dtype=object), "BYTES"),
        "i": (np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32), "INT32"),
        "h": (np.array([1.5, -0.25, 65504], dtype=np.float16), "FP16"),
        "b": (np.array([True, False, True]), "BOOL"),
    }
    inputs = []
    for name, (arr, dt) in values.items():
        inp = grpcclient.InferInput(name, [3], dt)
        inp.set_data_from_numpy(arr)
        inputs.append(inp)
    result = client.infer("echo", inputs)
    for name, (arr, _) in values.items():
        assert result.as_numpy(f"out_{name}").tolist() == arr.tolist(), name


def test_classification(client):
    result = client.infer(
        "linear", linear_inputs(), outputs=[grpcclient.InferRequestedOutput("y", class_count=3)]
    )
    got = result.as_numpy("y")
    y = reference(X)[0]
    for row in range(2):
        assert [int(s.decode().split(":")[1]) for s in got[row]] == np.argsort(-y[row]).tolist()


def test_metadata_config_and_health(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("linear")
    md = client.get_model_metadata("linear", as_json=True)
    assert md["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "4"]}]
    config = client.get_model_config("linear", as_json=True)["config"]
    assert config["max_batch_size"] == 8
    assert config["input"][0] == {"name": "x", "data_type": "TYPE_FP32", "dims": ["4"]}
    assert config["dynamic_batching"] == {"max_queue_delay_microseconds": "100"}
    assert "classification" in client.get_server_metadata(as_json=True)["extensions"]


def test_repository_index_load_unload(client):
    names = {m.name: m.state for m in client.get_model_repository_index().models}
    assert names == {"echo": "READY", "linear": "READY"}
    client.unload_model("echo")
    try:
        assert not client.is_model_ready("echo")
        assert [
            m.name for m in client.get_model_repository_index(as_json=False).models if m.state == "READY"
        ] == ["linear"]
        with pytest.raises(InferenceServerException) as info:
            client.infer("echo", linear_inputs())
        assert info.value.status() == "StatusCode.UNAVAILABLE"
    finally:
        client.load_model("echo")
    assert client.is_model_ready("echo")


def test_error_codes(client):
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("nope")
    assert info.value.status() == "StatusCode.NOT_FOUND"
    bad = grpcclient.InferInput("x", [1, 3], "FP32")
    bad.set_data_from_numpy(np.zeros((1, 3), np.float32))
    bad._input.shape[:] = [1, 4]  # claim more than the bytes carry
    with pytest.raises(InferenceServerException, match="expected 16") as info:
        client.infer("linear", [bad])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"


def test_unimplemented_methods(client):
    with pytest.raises(InferenceServerException) as info:
        client.get_log_settings()
    assert info.value.status() == "StatusCode.UNIMPLEMENTED"


def test_garbage_protobuf_is_invalid_argument(server):
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as info:
            call(b"\xff\xff\xff\xff\x0f garbage", timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_asyncio_client(server):
    async def main():
        async with aiogrpcclient.InferenceServerClient(server.grpc) as c:
            inp = aiogrpcclient.InferInput("x", list(X.shape), "FP32")
            inp.set_data_from_numpy(X)
            results = await asyncio.gather(*(c.infer("linear", [inp]) for _ in range(8)))
            ready = await c.is_model_ready("linear")
        return results, ready

    results, ready = asyncio.run(main())
    assert ready
    for r in results:
        np.testing.assert_array_equal(r.as_numpy("y"), reference(X)[0])


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    with serving(make_settings(tmp_path_factory.mktemp("sec"), api_key="s3cret")) as endpoints:
        yield endpoints


def test_api_key_required_except_health(secured):
    c = grpcclient.InferenceServerClient(secured.grpc)
    try:
        assert c.is_server_live() and c.is_server_ready()
        for headers in (None, {"authorization": "Bearer wrong"}):
            with pytest.raises(InferenceServerException) as info:
                c.get_model_metadata("linear", headers=headers)
            assert info.value.status() == "StatusCode.UNAUTHENTICATED"
        ok = c.infer("linear", linear_inputs(), headers={"authorization": "Bearer s3cret"})
        np.testing.assert_array_equal(ok.as_numpy("y"), reference(X)[0])
    finally:
        c.close()


def test_message_size_limit(server):
    big = pb.ModelInferRequest(model_name="linear", raw_input_contents=[b"\0" * (2 * 1024 * 1024)])
    with grpc.insecure_channel(server.grpc) as channel:
        call = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as info:
            call(big.SerializeToString(), timeout=10)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
