"""KServe v2 REST bodies <-> core inference values, with the binary tensor data extension.

Every step distrusts the client: structure, datatypes, shapes and byte counts are checked before an array
is built, and any violation is an InvalidArgument with a message that names the tensor. Tensor data goes
straight from the parsed JSON lists to numpy (no per-request pydantic models, no Python loops over numbers).
"""

from __future__ import annotations

import json
import threading
from typing import Any

import numpy as np
import orjson
import simdjson

from maas.errors import InvalidArgument
from maas.numbers import is_ascii_int
from maas.protocol import raw_tensor
from maas.serving.contract import InferenceRequest, InferenceResponse, InferTensor, RequestedOutput

HEADER_LENGTH = "Inference-Header-Content-Length"
# A legitimate body nests at most a few envelope levels plus one per tensor dimension.
MAX_NESTING = raw_tensor.MAX_RANK + 8
# Runs of opening brackets are the cheap attack; finding them is a substring search (GB/s). Deep nesting
# that hides between other characters is still refused: the C scanner raises RecursionError, caught below.
_DEEP_RUNS = (b"[" * (MAX_NESTING + 1), b"{" * (MAX_NESTING + 1))

# JSON parts at least this large go through simdjson, whose `as_buffer` turns a flat float list into one buffer
# without a Python float per element (a 224x224x3 image: 3 ms instead of 16 ms with orjson + np.array).
FAST_JSON_BYTES = 64 * 1024
_FLOAT_TYPES = frozenset({"FP16", "FP32", "FP64"})
_local = threading.local()
# A kept parser holds memory for the largest body it parsed; bodies above this get a parser of their own.
KEEP_PARSER_BYTES = 8 * 1024 * 1024

# Which JSON number kinds (numpy dtype.kind of the parsed list) each datatype accepts.
_ACCEPTED_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}


def parse_json(body: bytes | memoryview, what: str = "request body") -> Any:
    """Parse JSON, refusing pathological nesting before the parser recurses into it."""
    raw = bytes(body)
    _check_nesting(raw, what)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass  # orjson refuses NaN/Infinity literals, which clients do send; the stdlib parser decides
    try:
        return json.loads(raw)
    except RecursionError:
        raise InvalidArgument(f"{what} nests too deeply") from None
    except UnicodeDecodeError:
        raise InvalidArgument(f"{what} is not valid UTF-8") from None
    except ValueError as e:
        raise InvalidArgument(f"{what} is not valid JSON: {e}") from None


def _check_nesting(raw: bytes, what: str) -> None:
    if any(run in raw for run in _DEEP_RUNS):
        raise InvalidArgument(f"{what} nests deeper than {MAX_NESTING} levels")


def _parse_float_buffers(raw: bytes) -> dict[str, Any] | None:
    """Parse a large body with simdjson, reading the flat `data` list of each float input straight into a
    float64 array; everything else becomes plain Python as `parse_json` would return it. Anything unusual
    (invalid JSON, NaN literals, big integers, non-numbers, ragged lists) returns None so the strict path
    decides and words the error; a failed attempt costs one simdjson pass. A list nesting single elements
    (`[1, [2], 3]`) is read flat here, as Triton reads it, where the strict path calls it ragged."""
    try:
        doc = (_parser() if len(raw) <= KEEP_PARSER_BYTES else simdjson.Parser()).parse(raw)
        if not isinstance(doc, simdjson.Object):
            return None
        # keys(), not items(): items() would turn every value, tensor data included, into Python objects
        out = {key: _plain(doc[key]) for key in doc.keys() if key != "inputs"}  # noqa: SIM118
        inputs = doc.get("inputs")
        if not isinstance(inputs, simdjson.Array):
            return None
        out["inputs"] = [_input_with_buffer(item) for item in inputs]
        return out
    except (ValueError, TypeError, RuntimeError):
        return None


def _parser() -> simdjson.Parser:
    """One parser per thread, kept: a fresh one maps new memory for every body, which doubled the time."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = simdjson.Parser()
    return parser


def _input_with_buffer(item: Any) -> Any:
    if not isinstance(item, simdjson.Object):
        return _plain(item)
    out = {key: _plain(item[key]) for key in item.keys() if key != "data"}  # noqa: SIM118
    data = item.get("data")
    if out.get("datatype") in _FLOAT_TYPES and isinstance(data, simdjson.Array):
        flat = np.frombuffer(data.as_buffer(of_type="d"), dtype=np.float64)  # TypeError on a non-number
        if len(flat) != len(data):  # as_buffer flattens nested lists; those take the strict path
            raise TypeError("nested data")
        out["data"] = flat
    elif "data" in item:
        out["data"] = _plain(data)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def header_length(value: str | None, body_size: int) -> int | None:
    """The `Inference-Header-Content-Length` value, checked against the body it describes."""
    if value is None:
        return None
    value = value.strip()
    if not is_ascii_int(value):
        raise InvalidArgument(f"{HEADER_LENGTH} must be a non-negative integer, got {value[:40]!r}")
    n = int(value)
    if n > body_size:
        raise InvalidArgument(f"{HEADER_LENGTH} is {n} but the body has only {body_size} bytes")
    return n


# --- requests ---------------------------------------------------------------------------------------------


def decode_request(
    body: bytes, model_name: str, model_version: str | None, header_len: str | None = None
) -> InferenceRequest:
    """A v2 infer body (JSON, or JSON header + binary tensors) -> InferenceRequest."""
    n = header_length(header_len, len(body))
    view = memoryview(body)
    head = body if n is None else bytes(view[:n])  # a JSON body is parsed as it came, not copied
    doc = None
    if len(head) >= FAST_JSON_BYTES:
        _check_nesting(head, "request body")
        doc = _parse_float_buffers(head)
    if doc is None:
        doc = parse_json(head)
    binary = view[len(view) :] if n is None else view[n:]
    if not isinstance(doc, dict):
        raise InvalidArgument("request body must be a JSON object")
    inputs_doc = doc.get("inputs")
    if not isinstance(inputs_doc, list) or not inputs_doc:
        raise InvalidArgument("request needs a non-empty list 'inputs'")
    inputs: list[InferTensor] = []
    offset = 0
    for i, item in enumerate(inputs_doc):
        tensor, offset = _decode_input(item, i, binary, offset)
        inputs.append(tensor)
    if offset != len(binary):
        raise InvalidArgument(f"{len(binary) - offset} bytes of binary data follow the inputs unused")
    return InferenceRequest(
        model_name=model_name,
        model_version=model_version,
        inputs=inputs,
        outputs=_decode_outputs(doc.get("outputs")),
        id=_decode_id(doc.get("id")),
        parameters=_parameters(doc.get("parameters"), "request"),
        protocol="rest",
    )


def _decode_input(item: Any, index: int, binary: memoryview, offset: int) -> tuple[InferTensor, int]:
    if not isinstance(item, dict):
        raise InvalidArgument(f"inputs[{index}] must be an object")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument(f"inputs[{index}] needs a string 'name'")
    dtype = raw_tensor.check_datatype(item.get("datatype"), name)
    datatype: str = item["datatype"]  # checked just above
    shape = raw_tensor.check_shape(item.get("shape"), name)
    params = _parameters(item.get("parameters"), f"input {name!r}")
    size = params.pop("binary_data_size", None)
    if size is not None:
        if "data" in item:
            raise InvalidArgument(f"input {name!r} has both 'data' and parameters.binary_data_size")
        if type(size) is not int or size < 0:
            raise InvalidArgument(f"input {name!r}: binary_data_size must be a non-negative integer")
        if size > len(binary) - offset:
            raise InvalidArgument(
                f"input {name!r}: binary_data_size {size} goes past the end of the body "
                f"({len(binary) - offset} bytes left)"
            )
        data = raw_tensor.decode_raw(binary[offset : offset + size], datatype, shape, name)
        offset += size
    else:
        if "data" not in item:
            raise InvalidArgument(f"input {name!r} has neither 'data' nor parameters.binary_data_size")
        data = decode_json_data(item["data"], datatype, dtype, shape, name)
    return InferTensor(name=name, datatype=datatype, shape=shape, data=data, parameters=params), offset


def decode_json_data(
    data: Any, datatype: str, dtype: np.dtype[Any], shape: tuple[int, ...], name: str
) -> np.ndarray:
    """JSON `data` (flat row-major or nested like `shape`) -> array of `shape` and `dtype`. A float64 array
    in place of the list is what `_parse_float_buffers` read from a flat list of numbers."""
    if isinstance(data, np.ndarray):
        _check_layout(data, shape, raw_tensor.element_count(shape), name)
        return data.astype(dtype).reshape(shape)
    if not isinstance(data, list):
        raise InvalidArgument(f"input {name!r}: 'data' must be a list")
    count = raw_tensor.element_count(shape)
    if datatype == "BYTES":
        try:
            arr = np.array(data, dtype=object)
        except ValueError:
            raise InvalidArgument(f"input {name!r}: nested 'data' is ragged") from None
        _check_layout(arr, shape, count, name)
        flat = arr.ravel()
        if not all(type(x) is str for x in flat):
            raise InvalidArgument(f"input {name!r}: BYTES data must be strings")
        out = np.empty(flat.size, dtype=object)
        out[:] = [x.encode("utf-8") for x in flat]
        return out.reshape(shape)
    try:
        arr = np.array(data)
    except (ValueError, OverflowError):
        raise InvalidArgument(f"input {name!r}: 'data' is ragged or holds values of mixed types") from None
    _check_layout(arr, shape, count, name)
    if arr.size and dtype.kind in "iu" and arr.dtype.kind in "fO":
        arr = _exact_integers(data, dtype, shape, name)  # numpy widened huge or mixed-sign ints to float
    if arr.size and arr.dtype.kind not in _ACCEPTED_KINDS[dtype.kind]:
        wanted = {"b": "true/false", "i": "integers", "u": "integers", "f": "numbers"}[dtype.kind]
        raise InvalidArgument(f"input {name!r}: {datatype} data must be {wanted}")
    if arr.size and dtype.kind in "iu" and arr.dtype != dtype:
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise InvalidArgument(f"input {name!r}: a value is out of range for {datatype}")
    return arr.astype(dtype, copy=False).reshape(shape)


def _exact_integers(data: list[Any], dtype: np.dtype[Any], shape: tuple[int, ...], name: str) -> np.ndarray:
    """The slow path for integer lists numpy could not type exactly (values beyond int64, or above and
    below zero mixed with values beyond int64)."""
    flat = np.array(data, dtype=object).ravel()
    if not all(type(x) is int for x in flat):
        raise InvalidArgument(f"input {name!r}: {dtype.name.upper()} data must be integers")
    try:
        return np.array(flat.tolist(), dtype=dtype).reshape(shape)
    except OverflowError:
        raise InvalidArgument(f"input {name!r}: a value is out of range for {dtype.name.upper()}") from None


def _check_layout(arr: np.ndarray, shape: tuple[int, ...], count: int, name: str) -> None:
    if arr.ndim == 1 and arr.size == count:
        return  # flat, row-major
    if arr.shape != shape:
        raise InvalidArgument(
            f"input {name!r}: data of shape {list(arr.shape)} ({arr.size} elements) does not match "
            f"shape {list(shape)} ({count} elements)"
        )


def _decode_outputs(doc: Any) -> list[RequestedOutput]:
    if doc is None:
        return []
    if not isinstance(doc, list):
        raise InvalidArgument("'outputs' must be a list")
    outputs = []
    for i, item in enumerate(doc):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidArgument(f"outputs[{i}] must be an object with a string 'name'")
        outputs.append(
            RequestedOutput(item["name"], _parameters(item.get("parameters"), f"output {item['name']!r}"))
        )
    return outputs


def _decode_id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InvalidArgument("'id' must be a string")


def _parameters(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"parameters of {what} must be an object")
    return dict(value)


# --- responses --------------------------------------------------------------------------------------------


def wants_binary(request: InferenceRequest) -> dict[str, bool]:
    """Output name -> whether the client asked for it as binary; other names follow `binary_data_output`."""
    return {
        o.name: bool(o.parameters["binary_data"]) for o in request.outputs if "binary_data" in o.parameters
    }


def json_output_bytes(response: InferenceResponse, request: InferenceRequest) -> int:
    """The array bytes of the outputs `encode_response` will write as JSON numbers (the costly part)."""
    per_output = wants_binary(request)
    default_binary = request.parameters.get("binary_data_output") is True
    return sum(t.data.nbytes for t in response.outputs if not per_output.get(t.name, default_binary))


def encode_response(response: InferenceResponse, request: InferenceRequest) -> tuple[bytes, int | None]:
    """InferenceResponse -> (body, JSON header length when binary outputs follow it, else None)."""
    per_output = wants_binary(request)
    default_binary = request.parameters.get("binary_data_output") is True
    outputs = []
    blobs: list[bytes] = []
    for t in response.outputs:
        doc: dict[str, Any] = {
            "name": t.name,
            "datatype": t.datatype,
            "shape": [int(d) for d in t.data.shape],
        }
        params = dict(t.parameters)
        if per_output.get(t.name, default_binary):
            blob = raw_tensor.encode_raw(t.data, t.datatype)
            blobs.append(blob)
            params["binary_data_size"] = len(blob)
        else:
            doc["data"] = encode_json_data(t.data, t.datatype, t.name)
        if params:
            doc["parameters"] = params
        outputs.append(doc)
    out: dict[str, Any] = {"model_name": response.model_name, "model_version": response.model_version}
    rid = response.id if response.id is not None else request.id
    if rid is not None:
        out["id"] = rid
    if response.parameters:
        out["parameters"] = response.parameters
    out["outputs"] = outputs
    header = dumps(out)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def encode_json_data(data: np.ndarray, datatype: str, name: str) -> list[Any]:
    flat = np.asarray(data).ravel()
    if datatype != "BYTES":
        return flat.tolist()  # type: ignore[no-any-return]
    try:
        return [raw_tensor.as_bytes(x).decode("utf-8") for x in flat]
    except UnicodeDecodeError:
        raise InvalidArgument(
            f"output {name!r} holds bytes that are not UTF-8; request it with binary_data=true"
        ) from None


def dumps(doc: Any) -> bytes:
    """Compact UTF-8 JSON. orjson would write NaN and ±Infinity as null; those (rare) documents go through the
    stdlib encoder so a model's NaN output still reads back as NaN, as before."""
    try:
        out = orjson.dumps(doc)
    except TypeError:  # a type orjson does not know (e.g. a numpy scalar in parameters): let json say how
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    if b"null" in out and _has_non_finite(doc):
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return out


def _has_non_finite(doc: Any) -> bool:
    if isinstance(doc, float):
        return doc != doc or doc in (float("inf"), float("-inf"))
    if isinstance(doc, dict):
        return any(_has_non_finite(v) for v in doc.values())
    if isinstance(doc, list | tuple):
        return any(_has_non_finite(v) for v in doc)
    return False
