"""The signature a version advertises, read from its ONNX graph: names, V2 datatypes, shapes (-1 for a
dynamic dimension) and whether dimension 0 is a batch dimension the server may batch along."""

from __future__ import annotations

from typing import Any

from maas.errors import InvalidArgument
from maas.types import ONNX_TO_V2, Signature, TensorSpec


def _spec(value_info: Any) -> TensorSpec:
    tt = value_info.type.tensor_type
    datatype = ONNX_TO_V2.get(tt.elem_type)
    if datatype is None:
        raise InvalidArgument(f"tensor {value_info.name!r} has an unsupported element type {tt.elem_type}")
    if tt.HasField("shape"):
        shape = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tt.shape.dim
        )
    else:
        shape = (-1,)  # rank unknown: at least a batch of something
    return TensorSpec(value_info.name, datatype, shape)


def graph_inputs(model: Any) -> list[Any]:
    """Real inputs: graph inputs that are not initializers (older exporters list weights as inputs)."""
    init = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in init]


def extract(model: Any) -> Signature:
    inputs = tuple(_spec(i) for i in graph_inputs(model))
    outputs = tuple(_spec(o) for o in model.graph.output)
    if not inputs:
        raise InvalidArgument("the model has no inputs")
    batch = all(len(t.shape) >= 1 and t.shape[0] == -1 for t in inputs + outputs)
    return Signature(inputs, outputs, batch_axis=batch)


def with_observed(sig: Signature, outputs: list[Any]) -> Signature:
    """Fill output ranks the graph left unknown from arrays actually produced by the model."""
    fixed = []
    for spec, arr in zip(sig.outputs, outputs, strict=True):
        if spec.shape == (-1,) and getattr(arr, "ndim", 1) != 1:
            dims = list(arr.shape)
            if sig.batch_axis and dims:
                dims[0] = -1
            spec = TensorSpec(spec.name, spec.datatype, tuple(dims))
        fixed.append(spec)
    return Signature(sig.inputs, tuple(fixed), sig.batch_axis)
