"""TF-Serving style v1 `:predict` bodies <-> core inference values.

`instances` is the row format (one entry per batch row: a value for a single-input model, else an object
keyed by input name) and is answered with `predictions`; `inputs` is the columnar format (a value, or an
object keyed by input name) and is answered with `outputs`. Datatypes come from the model's metadata.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.protocol import raw_tensor, rest_codec
from maas.serving.contract import InferenceRequest, InferenceResponse, InferTensor, ModelMetadata


def decode_predict(
    body: bytes, metadata: ModelMetadata, version: str | None
) -> tuple[InferenceRequest, bool]:
    """-> (request, row_format)."""
    doc = rest_codec.parse_json(body)
    if not isinstance(doc, dict) or ("instances" in doc) == ("inputs" in doc):
        raise InvalidArgument("request body must be an object with exactly one of 'instances' or 'inputs'")
    specs = {t.name: t for t in metadata.inputs}
    encoded = {t.name: t for t in metadata.encoded_inputs}
    single = next(iter(specs)) if len(specs) == 1 else None
    columns: dict[str, Any]
    if "instances" in doc:
        rows = doc["instances"]
        if not isinstance(rows, list) or not rows:
            raise InvalidArgument("'instances' must be a non-empty list")
        if all(isinstance(row, dict) for row in rows):
            keys = set(rows[0])
            if any(set(row) != keys for row in rows):
                raise InvalidArgument("every instance must name the same inputs")
            columns = {k: [row[k] for row in rows] for k in keys}
        elif single is not None:
            columns = {single: rows}
        else:
            raise InvalidArgument(f"the model has inputs {sorted(specs)}: each instance must be an object")
    else:
        cols = doc["inputs"]
        columns = cols if isinstance(cols, dict) else ({single: cols} if single is not None else {})
        if not columns:
            raise InvalidArgument(f"the model has inputs {sorted(specs)}: 'inputs' must be an object")
    tensors = []
    for name, value in columns.items():
        spec = specs.get(name)
        if spec is None:
            raise InvalidArgument(f"unknown input {name!r}; expected one of {sorted(specs)}")
        data = value if isinstance(value, list) else [value]
        shape = _nested_shape(value)
        if name in encoded and isinstance(_first_leaf(data), str):
            spec = encoded[name]  # an image model given the encoded image instead of its tensor
        dtype = raw_tensor.check_datatype(spec.datatype, name)
        arr = rest_codec.decode_json_data(data, spec.datatype, dtype, shape, name)
        tensors.append(InferTensor(name, spec.datatype, shape, arr))
    req = InferenceRequest(metadata.name, version, tensors, protocol="rest")
    return req, "instances" in doc


def _first_leaf(value: Any) -> Any:
    while isinstance(value, list) and value:
        value = value[0]
    return value


def _nested_shape(value: Any) -> tuple[int, ...]:
    shape: list[int] = []
    while isinstance(value, list):
        if len(shape) >= raw_tensor.MAX_RANK:
            raise InvalidArgument(f"data nests deeper than {raw_tensor.MAX_RANK} dimensions")
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return tuple(shape)


def encode_predict(response: InferenceResponse, row_format: bool) -> bytes:
    values = {t.name: _as_list(t) for t in response.outputs}
    if not row_format:
        return rest_codec.dumps({"outputs": next(iter(values.values())) if len(values) == 1 else values})
    if len(values) == 1:
        return rest_codec.dumps({"predictions": next(iter(values.values()))})
    rows = min((len(v) for v in values.values() if isinstance(v, list)), default=0)
    return rest_codec.dumps({"predictions": [{k: v[i] for k, v in values.items()} for i in range(rows)]})


def _as_list(t: InferTensor) -> Any:
    if t.datatype != "BYTES":
        return np.asarray(t.data).tolist()
    flat = rest_codec.encode_json_data(t.data, "BYTES", t.name)
    return np.array(flat, dtype=object).reshape(np.shape(t.data)).tolist()
