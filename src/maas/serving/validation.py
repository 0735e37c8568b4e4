"""Checks a request against a version's signature before anything is allocated or queued.

Shapes are checked as numbers first (rank, fixed dims, batch size, element count), so an absurd shape is
refused before any array is built; only then are arrays reshaped and cast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from maas.errors import InvalidArgument
from maas.serving.classification import classification_k
from maas.serving.contract import InferTensor, RequestedOutput
from maas.types import TensorSpec, numpy_dtype

Tensors = dict[str, np.ndarray]


def check_shape(
    name: str, shape: Sequence[Any], spec: TensorSpec | None, max_batch_size: int, max_elements: int
) -> int:
    """Element count of `shape` after checking it; `spec` None checks only that the shape is sane."""
    if not all(isinstance(d, int | np.integer) and not isinstance(d, bool) for d in shape):
        raise InvalidArgument(f"input {name!r}: shape must be a list of integers")
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise InvalidArgument(f"input {name!r}: negative dimension in shape {dims}")
    count = 1
    for d in dims:
        count *= d
        if count > max_elements:
            raise InvalidArgument(f"input {name!r}: shape {dims[:8]} has more than {max_elements} elements")
    if spec is None:
        return count
    if len(dims) != len(spec.shape):
        raise InvalidArgument(f"input {name!r}: shape {dims} does not match the model's {list(spec.shape)}")
    for axis, (got, want) in enumerate(zip(dims, spec.shape, strict=True)):
        if want != -1 and got != want:
            raise InvalidArgument(
                f"input {name!r}: shape {dims} does not match the model's {list(spec.shape)}"
            )
        if axis == 0 and max_batch_size > 0 and not 1 <= got <= max_batch_size:
            raise InvalidArgument(f"input {name!r}: batch size {got} is outside 1-{max_batch_size}")
    return count


def validate_inputs(
    inputs: Sequence[InferTensor],
    specs: Sequence[TensorSpec],
    *,
    max_batch_size: int,
    max_elements: int,
    exact: bool = True,
) -> Tensors:
    """Arrays by input name, shaped and typed as the signature says; `exact` False (inputs that pre-processing
    will transform) only requires a known name, a numeric or matching datatype and a sane shape."""
    by_name = {s.name: s for s in specs}
    seen: set[str] = set()
    for tensor in inputs:
        if tensor.name in seen:
            raise InvalidArgument(f"input {tensor.name!r} appears twice")
        seen.add(tensor.name)
        if tensor.name not in by_name:
            raise InvalidArgument(f"unknown input {tensor.name!r}; expected {sorted(by_name)}")
    missing = sorted(set(by_name) - seen)
    if missing:
        raise InvalidArgument(f"missing input(s) {missing}")

    counts = {}
    for tensor in inputs:
        spec = by_name[tensor.name]
        if exact and tensor.datatype != spec.datatype:
            raise InvalidArgument(
                f"input {tensor.name!r}: datatype {tensor.datatype} is not the model's {spec.datatype}"
            )
        counts[tensor.name] = check_shape(
            tensor.name, tensor.shape, spec if exact else None, max_batch_size, max_elements
        )
    if max_batch_size > 0 and exact and len({t.shape[0] for t in inputs}) > 1:
        raise InvalidArgument("every input must have the same batch size")

    arrays: Tensors = {}
    for tensor in inputs:
        dtype = numpy_dtype(tensor.datatype)
        data = np.asarray(tensor.data)
        if data.size != counts[tensor.name]:
            raise InvalidArgument(
                f"input {tensor.name!r}: {data.size} values do not fill shape {list(tensor.shape)}"
            )
        if data.dtype != dtype:
            if dtype == np.object_ or not np.can_cast(data.dtype, dtype, casting="same_kind"):
                raise InvalidArgument(f"input {tensor.name!r}: values are not {tensor.datatype}")
            data = data.astype(dtype)
        if dtype == np.object_ and not all(isinstance(x, bytes | bytearray) for x in data.reshape(-1)):
            raise InvalidArgument(f"input {tensor.name!r}: BYTES elements must be bytes")
        if not exact and dtype != np.object_ and not np.issubdtype(dtype, np.number):
            raise InvalidArgument(f"input {tensor.name!r}: pre-processing needs a numeric datatype")
        arrays[tensor.name] = data.reshape(tuple(int(d) for d in tensor.shape))
    return arrays


def check_model_inputs(arrays: Tensors, specs: Sequence[TensorSpec], max_batch_size: int) -> None:
    """After pre-processing: the arrays must fit the model exactly (dtype and shape)."""
    for spec in specs:
        array = arrays[spec.name]
        dtype = numpy_dtype(spec.datatype)
        if array.dtype != dtype:
            raise InvalidArgument(
                f"input {spec.name!r}: pre-processing made {array.dtype}, the model expects {spec.datatype}"
            )
        check_shape(spec.name, array.shape, spec, max_batch_size, max(array.size, 1))


def requested_outputs(
    requested: Sequence[RequestedOutput], specs: Sequence[TensorSpec]
) -> list[tuple[str, int | None]]:
    """(output name, classification k) pairs, every output when none is asked for."""
    names = {s.name for s in specs}
    if not requested:
        return [(s.name, None) for s in specs]
    out = []
    seen: set[str] = set()
    for r in requested:
        if r.name not in names:
            raise InvalidArgument(f"unknown output {r.name!r}; expected one of {sorted(names)}")
        if r.name in seen:
            raise InvalidArgument(f"output {r.name!r} is requested twice")
        seen.add(r.name)
        out.append((r.name, classification_k(r.parameters)))
    return out
