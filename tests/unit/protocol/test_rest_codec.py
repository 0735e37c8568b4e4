"""v2 REST codec: JSON and binary round trips for every datatype, and every malformed body refused."""

import json
import struct

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.protocol import raw_tensor, rest_codec
from maas.serving.contract import InferenceRequest, InferenceResponse, InferTensor, RequestedOutput

from .test_raw_tensor import SAMPLES


def body(inputs, **extra):
    return json.dumps({"inputs": inputs, **extra}).encode()


def json_value(arr, datatype):
    flat = arr.ravel()
    if datatype == "BYTES":
        return [x.decode() for x in flat]
    return flat.tolist()


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_json_input_round_trip(datatype):
    arr = SAMPLES[datatype]
    req = rest_codec.decode_request(
        body([{"name": "x", "datatype": datatype, "shape": [1, 3], "data": json_value(arr, datatype)}]),
        "m",
        None,
    )
    t = req.inputs[0]
    assert (t.name, t.datatype, t.shape, req.protocol) == ("x", datatype, (1, 3), "rest")
    assert t.data.dtype == arr.dtype
    assert t.data.tolist() == arr.tolist()


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_binary_input_round_trip(datatype):
    arr = SAMPLES[datatype]
    raw = raw_tensor.encode_raw(arr, datatype)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": datatype,
                    "shape": [1, 3],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    req = rest_codec.decode_request(header + raw, "m", "2", str(len(header)))
    assert req.model_version == "2"
    assert req.inputs[0].data.tolist() == arr.tolist()
    assert "binary_data_size" not in req.inputs[0].parameters


def test_nested_data_and_mixed_binary_inputs():
    raw = np.arange(4, dtype=np.float32).tobytes()
    header = body(
        [
            {"name": "a", "datatype": "INT32", "shape": [2, 2], "data": [[1, 2], [3, 4]]},
            {"name": "b", "datatype": "FP32", "shape": [4], "parameters": {"binary_data_size": 16}},
        ],
        id="r1",
        outputs=[{"name": "y", "parameters": {"classification": 2}}],
    )
    req = rest_codec.decode_request(header + raw, "m", None, str(len(header)))
    assert req.inputs[0].data.tolist() == [[1, 2], [3, 4]]
    assert req.inputs[1].data.tolist() == [0, 1, 2, 3]
    assert req.id == "r1"
    assert req.outputs == [RequestedOutput("y", {"classification": 2})]


def _response(*tensors):
    return InferenceResponse("m", "1", [InferTensor(n, dt, a.shape, a) for n, dt, a in tensors])


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_output_json_and_binary(datatype):
    arr = SAMPLES[datatype]
    resp = _response(("y", datatype, arr))
    as_json, n = rest_codec.encode_response(resp, InferenceRequest("m", None, []))
    assert n is None
    doc = json.loads(as_json)
    assert doc["outputs"][0]["data"] == json_value(arr, datatype)
    assert doc["outputs"][0]["shape"] == [1, 3]
    req = InferenceRequest("m", None, [], parameters={"binary_data_output": True})
    as_binary, n = rest_codec.encode_response(resp, req)
    header = json.loads(as_binary[:n])
    size = header["outputs"][0]["parameters"]["binary_data_size"]
    assert "data" not in header["outputs"][0]
    assert size == len(as_binary) - n
    assert raw_tensor.decode_raw(as_binary[n:], datatype, (1, 3), "y").tolist() == arr.tolist()


def test_per_output_binary_choice_overrides_request_default():
    resp = _response(("a", "FP32", np.ones(2, np.float32)), ("b", "FP32", np.zeros(2, np.float32)))
    req = InferenceRequest(
        "m",
        None,
        [],
        outputs=[RequestedOutput("a", {"binary_data": False})],
        parameters={"binary_data_output": True},
    )
    out, n = rest_codec.encode_response(resp, req)
    header = json.loads(out[:n])
    assert header["outputs"][0]["data"] == [1.0, 1.0]
    assert header["outputs"][1]["parameters"]["binary_data_size"] == 8


def test_non_utf8_bytes_output_needs_binary():
    resp = _response(("y", "BYTES", np.array([b"\xff"], dtype=object)))
    with pytest.raises(InvalidArgument, match="binary_data"):
        rest_codec.encode_response(resp, InferenceRequest("m", None, []))


def _inp(**kw):
    return {"name": "x", "datatype": "FP32", "shape": [2], "data": [1.0, 2.0], **kw}


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "UTF-8|JSON"),
        (b"[1]", "JSON object"),
        (b"{}", "inputs"),
        (body([]), "inputs"),
        (body([5]), "must be an object"),
        (body([_inp(name=3)]), "name"),
        (body([_inp(datatype="FLOAT")]), "unknown datatype"),
        (body([_inp(datatype=7)]), "datatype must be a string"),
        (body([_inp(shape=[-2])]), "negative"),
        (body([_inp(shape=[2**31, 2**31, 2**31])]), "too large|more than"),
        (body([_inp(shape=None)]), "shape"),
        (body([_inp(shape=[3])]), "does not match"),
        (body([_inp(data=[[1.0], [2.0, 3.0]], shape=[2, 1])]), "ragged|match"),
        (body([_inp(data=[[1.0, 2.0]], shape=[2, 1])]), "does not match"),
        (body([_inp(data="12")]), "must be a list"),
        (body([_inp(data=["a", "b"])]), "must be numbers"),
        (body([_inp(data=[{"a": 1}, 2])]), "must be numbers|mixed"),
        (body([_inp(data=[None, 1.0])]), "must be numbers|mixed"),
        (body([_inp(datatype="INT8", data=[1, 300])]), "out of range"),
        (body([_inp(datatype="UINT8", data=[-1, 3])]), "out of range"),
        (body([_inp(datatype="INT64", data=[1, 2**64 - 1])]), "out of range"),
        (body([_inp(datatype="INT32", data=[1.5, 2])]), "must be integers"),
        (body([_inp(datatype="BOOL", data=[1, 0])]), "true/false"),
        (body([_inp(datatype="BYTES", data=["a", 1])]), "strings"),
        (body([_inp(datatype="BYTES", data=[["a"], ["b", "c"]], shape=[2, 1])]), "strings|match|ragged"),
        (body([{"name": "x", "datatype": "FP32", "shape": [2]}]), "neither"),
        (body([_inp(parameters={"binary_data_size": 8})]), "both"),
        (body([_inp(parameters=[1])]), "parameters"),
        (body([_inp()], outputs={"a": 1}), "outputs"),
        (body([_inp()], outputs=[{"name": 1}]), "outputs"),
        (body([_inp()], id=5), "id"),
        (b"[" * 100_000 + b"]" * 100_000, "nests"),
        (b'{"inputs":' + b"[" * 50 + b"]" * 50 + b"}", "nests"),
    ],
)
def test_malformed_json_bodies(raw, message):
    with pytest.raises(InvalidArgument, match=message):
        rest_codec.decode_request(raw, "m", None)


def test_alternating_deep_nesting_is_refused_not_crashing():
    raw = b"[1," * 200_000 + b"1" + b"]" * 200_000
    with pytest.raises(InvalidArgument, match="nests|JSON"):
        rest_codec.decode_request(raw, "m", None)


def _binary(size_param, payload, header_len=None):
    header = body(
        [{"name": "x", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": size_param}}]
    )
    return header + payload, str(len(header) if header_len is None else header_len)


@pytest.mark.parametrize(
    "case, message",
    [
        (_binary(8, b"\0" * 8, header_len=10_000), "only"),
        (_binary(8, b"\0" * 8, header_len=-1), "non-negative integer"),
        ((_binary(8, b"\0" * 8)[0], "12abc"), "non-negative integer"),
        (_binary(16, b"\0" * 8), "goes past the end"),
        (_binary(-1, b"\0" * 8), "non-negative"),
        (_binary(4, b"\0" * 8), "expected 8"),
        (_binary(8, b"\0" * 12), "unused"),
        (_binary("8", b"\0" * 8), "non-negative integer"),
        (_binary(8, b"\0" * 8, header_len=5), "not valid JSON"),
    ],
)
def test_malformed_binary_bodies(case, message):
    raw, header_len = case
    with pytest.raises(InvalidArgument, match=message):
        rest_codec.decode_request(raw, "m", None, header_len)


def test_bad_bytes_length_prefix_in_binary_body():
    payload = struct.pack("<I", 1000) + b"ab"
    header = body(
        [{"name": "s", "datatype": "BYTES", "shape": [1], "parameters": {"binary_data_size": len(payload)}}]
    )
    with pytest.raises(InvalidArgument, match="claims 1000"):
        rest_codec.decode_request(header + payload, "m", None, str(len(header)))


# --- large bodies: the simdjson path must decide exactly as the strict path does -----------------------------


def _padded(raw: bytes) -> bytes:
    """The same document made larger than FAST_JSON_BYTES by an extra key the decoder ignores."""
    assert raw.startswith(b"{")
    return b'{"pad":"' + b"x" * rest_codec.FAST_JSON_BYTES + b'",' + raw[1:]


@pytest.mark.parametrize("datatype", ["FP16", "FP32", "FP64"])
def test_large_float_body_decodes_exactly(datatype):
    x = np.random.default_rng(0).random((2, 3, 64, 64)).astype(datatype.replace("FP", "float").lower())
    raw = body([{"name": "x", "datatype": datatype, "shape": list(x.shape), "data": x.ravel().tolist()}])
    assert len(raw) > rest_codec.FAST_JSON_BYTES
    req = rest_codec.decode_request(raw, "m", None)
    assert req.inputs[0].data.dtype == x.dtype
    np.testing.assert_array_equal(req.inputs[0].data, x)


def test_large_body_with_nan_nested_and_integer_inputs_takes_the_strict_path():
    nested = np.arange(12, dtype=np.float32).reshape(3, 4)
    raw = _padded(
        b'{"inputs":[{"name":"a","datatype":"FP32","shape":[2],"data":[NaN,1.5]},'
        + b'{"name":"b","datatype":"FP32","shape":[3,4],"data":'
        + json.dumps(nested.tolist()).encode()
        + b'},{"name":"c","datatype":"INT64","shape":[2],"data":[9007199254740993,-1]}],"id":"r1"}'
    )
    req = rest_codec.decode_request(raw, "m", None)
    a, b, c = (t.data for t in req.inputs)
    assert np.isnan(a[0]) and a[1] == 1.5
    np.testing.assert_array_equal(b, nested)
    assert c.tolist() == [9007199254740993, -1] and req.id == "r1"


@pytest.mark.parametrize(
    "inp, message",
    [
        (_inp(data=[1.0, "a"]), "must be numbers|mixed"),
        (_inp(data=[1.0, None]), "must be numbers|mixed"),
        (_inp(data=[[1.0], [2.0, 3.0]], shape=[2, 1]), "ragged|match"),
        (_inp(data=[1.0, [2.0, 3.0]]), "ragged|mixed|match"),
        (_inp(data=[1.0, 2.0, 3.0]), "does not match"),
        (_inp(datatype="FP64", data=[1.0, 10**400]), "must be numbers|mixed"),
        (_inp(data="12"), "must be a list"),
    ],
)
def test_large_malformed_bodies_get_the_same_errors(inp, message):
    raw = _padded(body([inp]))
    with pytest.raises(InvalidArgument, match=message):
        rest_codec.decode_request(raw, "m", None)


def test_large_deeply_nested_body_is_refused():
    raw = _padded(b'{"inputs":' + b"[" * 50 + b"]" * 50 + b"}")
    with pytest.raises(InvalidArgument, match="nests"):
        rest_codec.decode_request(raw, "m", None)
