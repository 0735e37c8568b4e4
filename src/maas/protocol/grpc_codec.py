"""gRPC ModelInferRequest / ModelInferResponse <-> core inference values.

Inputs come either as `raw_input_contents` (one entry per input, in order) or as typed `contents`, never
both. Outputs always go back as `raw_output_contents`, which every Triton client reads and which avoids a
copy per element.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.protocol import raw_tensor
from maas.protocol.grpc_gen import inference_pb2 as pb
from maas.serving.contract import InferenceRequest, InferenceResponse, InferTensor, RequestedOutput

# Datatype -> the InferTensorContents field that carries it (FP16 / BF16 travel only as raw bytes).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def decode_parameters(params: Any) -> dict[str, Any]:
    """map<string, InferParameter> -> plain dict (an unset oneof is refused)."""
    out: dict[str, Any] = {}
    for key, p in params.items():
        which = p.WhichOneof("parameter_choice")
        if which is None:
            raise InvalidArgument(f"parameter {key!r} has no value")
        out[key] = getattr(p, which)
    return out


def encode_parameters(target: Any, params: dict[str, Any]) -> None:
    for key, value in params.items():
        p = target[key]
        if isinstance(value, bool | np.bool_):
            p.bool_param = bool(value)
        elif isinstance(value, int | np.integer):
            if value > np.iinfo(np.int64).max:
                p.uint64_param = int(value)
            else:
                p.int64_param = int(value)
        elif isinstance(value, float | np.floating):
            p.double_param = float(value)
        else:
            p.string_param = str(value)


def decode_request(msg: pb.ModelInferRequest) -> InferenceRequest:
    if not msg.model_name:
        raise InvalidArgument("model_name is required")
    if not msg.inputs:
        raise InvalidArgument("request needs at least one input")
    raw = msg.raw_input_contents
    if raw and len(raw) != len(msg.inputs):
        raise InvalidArgument(f"{len(raw)} raw_input_contents for {len(msg.inputs)} inputs")
    inputs = []
    for i, t in enumerate(msg.inputs):
        name = t.name
        if not name:
            raise InvalidArgument(f"inputs[{i}] needs a name")
        raw_tensor.check_datatype(t.datatype, name)
        shape = raw_tensor.check_shape(list(t.shape), name)
        if raw:
            if t.HasField("contents"):
                raise InvalidArgument(f"input {name!r} sets contents while raw_input_contents is used")
            data = raw_tensor.decode_raw(raw[i], t.datatype, shape, name)
        else:
            data = _decode_contents(t, shape, name)
        inputs.append(InferTensor(name, t.datatype, shape, data, decode_parameters(t.parameters)))
    return InferenceRequest(
        model_name=msg.model_name,
        model_version=msg.model_version or None,
        inputs=inputs,
        outputs=[RequestedOutput(o.name, decode_parameters(o.parameters)) for o in msg.outputs],
        id=msg.id or None,
        parameters=decode_parameters(msg.parameters),
        protocol="grpc",
    )


def _decode_contents(t: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    field = CONTENTS_FIELD.get(t.datatype)
    if field is None:
        raise InvalidArgument(f"input {name!r}: {t.datatype} can only be sent in raw_input_contents")
    others = [f.name for f, _ in t.contents.ListFields() if f.name != field]
    if others:
        raise InvalidArgument(f"input {name!r}: {t.datatype} data belongs in {field}, not {others[0]}")
    values = getattr(t.contents, field)
    count = raw_tensor.element_count(shape)
    if len(values) != count:
        raise InvalidArgument(
            f"input {name!r}: {len(values)} values in {field} for shape {list(shape)} ({count} elements)"
        )
    dtype = raw_tensor.check_datatype(t.datatype, name)
    if t.datatype == "BYTES":
        arr = np.empty(count, dtype=object)
        arr[:] = list(values)
        return arr.reshape(shape)
    # int_contents is int32 and uint_contents uint32 on the wire: narrower datatypes must still fit.
    wide: np.ndarray = np.array(values, dtype=_WIRE_DTYPE[field])
    if dtype.kind in "iu" and wide.size and dtype != wide.dtype:
        info = np.iinfo(dtype)
        if wide.min() < info.min or wide.max() > info.max:
            raise InvalidArgument(f"input {name!r}: a value is out of range for {t.datatype}")
    return wide.astype(dtype, copy=False).reshape(shape)


_WIRE_DTYPE = {
    "bool_contents": np.bool_,
    "int_contents": np.int32,
    "int64_contents": np.int64,
    "uint_contents": np.uint32,
    "uint64_contents": np.uint64,
    "fp32_contents": np.float32,
    "fp64_contents": np.float64,
}


def encode_response(response: InferenceResponse, request: InferenceRequest) -> pb.ModelInferResponse:
    msg = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id if response.id is not None else (request.id or ""),
    )
    encode_parameters(msg.parameters, response.parameters)
    for t in response.outputs:
        out = msg.outputs.add(name=t.name, datatype=t.datatype, shape=[int(d) for d in t.data.shape])
        encode_parameters(out.parameters, t.parameters)
        msg.raw_output_contents.append(raw_tensor.encode_raw(t.data, t.datatype))
    return msg


# --- the other messages -----------------------------------------------------------------------------------


def encode_model_config(config: dict[str, Any]) -> pb.ModelConfig:
    """The data plane's Triton-style config dict -> ModelConfig (fields maas does not model are dropped)."""
    from google.protobuf import json_format

    try:
        return json_format.ParseDict(config, pb.ModelConfig(), ignore_unknown_fields=True)
    except json_format.ParseError as e:
        raise InvalidArgument(f"model config cannot be expressed in protobuf: {e}") from None


def encode_statistics(doc: dict[str, Any]) -> pb.ModelStatisticsResponse:
    """The statistics extension's JSON shape (see `maas.monitor.statistics`) as its protobuf message."""
    return pb.ModelStatisticsResponse(
        model_stats=[
            pb.ModelStatistics(
                name=m["name"],
                version=m["version"],
                last_inference=m["last_inference"],
                inference_count=m["inference_count"],
                execution_count=m["execution_count"],
                inference_stats=pb.InferStatistics(
                    **{k: pb.StatisticDuration(**v) for k, v in m["inference_stats"].items()}
                ),
                batch_stats=[
                    pb.InferBatchStatistics(
                        batch_size=b["batch_size"],
                        **{k: pb.StatisticDuration(**v) for k, v in b.items() if k != "batch_size"},
                    )
                    for b in m["batch_stats"]
                ],
            )
            for m in doc["model_stats"]
        ]
    )
