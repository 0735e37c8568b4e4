"""gRPC codec: raw and typed contents for every datatype, parameters, and malformed requests refused."""

import numpy as np
import pytest

from maas.errors import InvalidArgument
from maas.protocol import grpc_codec, raw_tensor
from maas.protocol.grpc_gen import inference_pb2 as pb
from maas.serving.contract import InferenceRequest, InferenceResponse, InferTensor

from .test_raw_tensor import SAMPLES


def request(datatype="FP32", shape=(2,), **contents):
    msg = pb.ModelInferRequest(model_name="m", model_version="3", id="r")
    t = msg.inputs.add(name="x", datatype=datatype, shape=list(shape))
    for field, values in contents.items():
        getattr(t.contents, field).extend(values)
    return msg


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_raw_input_round_trip(datatype):
    arr = SAMPLES[datatype]
    msg = request(datatype, arr.shape)
    msg.raw_input_contents.append(raw_tensor.encode_raw(arr, datatype))
    req = grpc_codec.decode_request(pb.ModelInferRequest.FromString(msg.SerializeToString()))
    assert (req.model_name, req.model_version, req.id, req.protocol) == ("m", "3", "r", "grpc")
    assert req.inputs[0].data.tolist() == arr.tolist()


@pytest.mark.parametrize("datatype", sorted(set(SAMPLES) - {"FP16"}))
def test_typed_contents_round_trip(datatype):
    arr = SAMPLES[datatype]
    field = grpc_codec.CONTENTS_FIELD[datatype]
    msg = request(datatype, arr.shape, **{field: arr.ravel().tolist()})
    data = grpc_codec.decode_request(msg).inputs[0].data
    assert data.dtype == arr.dtype
    assert data.tolist() == arr.tolist()


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_response_uses_raw_output_contents(datatype):
    arr = SAMPLES[datatype]
    resp = InferenceResponse(
        "m", "1", [InferTensor("y", datatype, arr.shape, arr, {"k": 1})], parameters={"p": "s"}
    )
    msg = grpc_codec.encode_response(resp, InferenceRequest("m", None, [], id="r"))
    assert msg.id == "r" and msg.parameters["p"].string_param == "s"
    out = msg.outputs[0]
    assert (out.name, out.datatype, list(out.shape)) == ("y", datatype, [1, 3])
    assert out.parameters["k"].int64_param == 1
    assert raw_tensor.decode_raw(msg.raw_output_contents[0], datatype, (1, 3), "y").tolist() == arr.tolist()


def test_parameters_every_kind():
    msg = request(fp32_contents=[1, 2])
    msg.parameters["b"].bool_param = True
    msg.parameters["i"].int64_param = -3
    msg.parameters["s"].string_param = "x"
    msg.parameters["d"].double_param = 0.5
    msg.parameters["u"].uint64_param = 2**64 - 1
    o = msg.outputs.add(name="y")
    o.parameters["classification"].int64_param = 3
    req = grpc_codec.decode_request(msg)
    assert req.parameters == {"b": True, "i": -3, "s": "x", "d": 0.5, "u": 2**64 - 1}
    assert req.outputs[0].parameters == {"classification": 3}
    target = pb.ModelInferResponse()
    grpc_codec.encode_parameters(target.parameters, req.parameters)
    assert grpc_codec.decode_parameters(target.parameters) == req.parameters


def _both():
    msg = request(fp32_contents=[1, 2])
    msg.raw_input_contents.append(b"\0" * 8)
    return msg


def _two_raw():
    msg = request()
    msg.raw_input_contents.extend([b"\0" * 8, b"\0" * 8])
    return msg


def _unset_param():
    msg = request(fp32_contents=[1, 2])
    msg.parameters["x"].SetInParent()
    return msg


@pytest.mark.parametrize(
    "msg, message",
    [
        (pb.ModelInferRequest(model_name="m"), "at least one input"),
        (pb.ModelInferRequest(), "model_name"),
        (request(fp32_contents=[1.0]), "1 values"),
        (request(fp32_contents=[1.0, 2.0], shape=(-1,)), "negative"),
        (request(fp32_contents=[1.0, 2.0], shape=(2**40, 2**40)), "too large|more than"),
        (request(datatype="FP16", fp32_contents=[1.0, 2.0]), "only be sent in raw"),
        (request(int_contents=[1, 2]), "belongs in fp32_contents"),
        (request(datatype="INT8", int_contents=[1, 200]), "out of range"),
        (request(datatype="UINT16", uint_contents=[1, 70000]), "out of range"),
        (request(datatype="NOPE", int_contents=[1, 2]), "unknown datatype"),
        (_both(), "sets contents"),
        (_two_raw(), "2 raw_input_contents for 1 inputs"),
        (_unset_param(), "no value"),
    ],
)
def test_malformed_requests(msg, message):
    with pytest.raises(InvalidArgument, match=message):
        grpc_codec.decode_request(msg)


def test_raw_byte_count_must_match():
    msg = request()
    msg.raw_input_contents.append(b"\0" * 7)
    with pytest.raises(InvalidArgument, match="expected 8"):
        grpc_codec.decode_request(msg)


def test_model_config_from_dict():
    cfg = grpc_codec.encode_model_config(
        {
            "name": "m",
            "platform": "onnxruntime_onnx",
            "max_batch_size": 8,
            "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": [3]}],
            "output": [{"name": "y", "data_type": "TYPE_INT64", "dims": [-1]}],
            "dynamic_batching": {"max_queue_delay_microseconds": 500},
            "something_new": {"a": 1},
        }
    )
    assert (
        cfg.max_batch_size == 8
        and cfg.input[0].data_type == pb.TYPE_FP32
        and list(cfg.output[0].dims) == [-1]
    )
    with pytest.raises(InvalidArgument):
        grpc_codec.encode_model_config({"max_batch_size": "lots"})


def test_typed_values_keep_numpy_exactness():
    data = grpc_codec.decode_request(request("UINT64", (1,), uint64_contents=[2**64 - 1])).inputs[0].data
    assert data.dtype == np.uint64 and int(data[0]) == 2**64 - 1
