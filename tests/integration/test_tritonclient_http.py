"""tritonclient.http (sync and asyncio) against the real server: outputs must equal onnxruntime's own."""

import asyncio

import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aiohttpclient
from tritonclient.utils import InferenceServerException

from .models import LINEAR_X as X
from .models import linear_reference as reference


@pytest.fixture
def client(server):
    c = httpclient.InferenceServerClient(server.http)
    yield c
    c.close()


def linear_inputs(binary):
    inp = httpclient.InferInput("x", list(X.shape), "FP32")
    inp.set_data_from_numpy(X, binary_data=binary)
    return [inp]


@pytest.mark.parametrize("binary_in", [False, True])
@pytest.mark.parametrize("binary_out", [False, True])
def test_infer_matches_onnxruntime(client, binary_in, binary_out):
    outputs = [httpclient.InferRequestedOutput(n, binary_data=binary_out) for n in ("y", "label")]
    result = client.infer("linear", linear_inputs(binary_in), outputs=outputs, request_id="r7")
    y, label = reference(X)
    np.testing.assert_array_equal(result.as_numpy("y"), y)
    np.testing.assert_array_equal(result.as_numpy("label"), label)
    assert result.get_response()["id"] == "r7"


def test_infer_all_outputs_default_binary(client):
    result = client.infer("linear", linear_inputs(True), model_version="1")
    np.testing.assert_array_equal(result.as_numpy("y"), reference(X)[0])


@pytest.mark.parametrize("binary", [False, True])
def test_echo_awkward_datatypes(client, binary):
    values = {
        "s": (np.array([b"hello", "wörld".encode(), b""], dtype=object), "BYTES"),
        "i": (np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32), "INT32"),
        "h": (np.array([1.5, -0.25, 65504], dtype=np.float16), "FP16"),
        "b": (np.array([True, False, True]), "BOOL"),
    }
    inputs = []
    for name, (arr, dt) in values.items():
        inp = httpclient.InferInput(name, [3], dt)
        inp.set_data_from_numpy(arr, binary_data=binary)
        inputs.append(inp)
    outputs = [httpclient.InferRequestedOutput(f"out_{n}", binary_data=binary) for n in values]
    result = client.infer("echo", inputs, outputs=outputs)
    for name, (arr, _) in values.items():
        got = result.as_numpy(f"out_{name}").tolist()
        if name == "s" and not binary:
            got = [x.encode() for x in got]  # tritonclient hands JSON strings back as str
        assert got == arr.tolist(), name


def test_classification(client):
    result = client.infer(
        "linear", linear_inputs(True), outputs=[httpclient.InferRequestedOutput("y", class_count=2)]
    )
    y = reference(X)[0]
    got = result.as_numpy("y")
    assert got.shape == (2, 2)
    for row in range(2):
        top = np.argsort(-y[row])[:2]
        assert [int(s.decode().split(":")[1]) for s in got[row]] == top.tolist()
        assert float(got[row][0].decode().split(":")[0]) == pytest.approx(float(y[row, top[0]]), rel=1e-5)


def test_metadata_config_and_health(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("linear") and client.is_model_ready("linear", "1")
    assert not client.is_model_ready("linear", "9")
    md = client.get_model_metadata("linear")
    assert md["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in md["outputs"]] == ["y", "label"]
    config = client.get_model_config("linear")
    assert config["max_batch_size"] == 8 and config["input"][0]["data_type"] == "TYPE_FP32"
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]


def test_repository_index_load_unload(client):
    index = client.get_model_repository_index()
    assert {m["name"]: m["state"] for m in index} == {"echo": "READY", "linear": "READY"}
    client.unload_model("echo")
    try:
        assert not client.is_model_ready("echo")
        with pytest.raises(InferenceServerException, match="not loaded") as info:
            client.get_model_metadata("echo")
        assert info.value.status() == "503"
    finally:
        client.load_model("echo")
    assert client.is_model_ready("echo")


def test_unknown_model_error(client):
    with pytest.raises(InferenceServerException, match="model .nope. not found") as info:
        client.infer("nope", linear_inputs(False))
    assert info.value.status() == "404"


def test_asyncio_client(server):
    async def main():
        async with aiohttpclient.InferenceServerClient(server.http) as c:
            assert await c.is_server_ready()
            inp = aiohttpclient.InferInput("x", list(X.shape), "FP32")
            inp.set_data_from_numpy(X)
            results = await asyncio.gather(*(c.infer("linear", [inp]) for _ in range(8)))
            meta = await c.get_model_metadata("linear")
        return results, meta

    results, meta = asyncio.run(main())
    assert meta["name"] == "linear"
    for r in results:
        np.testing.assert_array_equal(r.as_numpy("y"), reference(X)[0])
