"""ONNX files: load one (its external data only from inside its own directory), check it with
onnx.checker and strict shape inference, and make it the single self-contained file a version stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maas.errors import InvalidArgument

_PROTOBUF_LIMIT = 2 * 1024**3 - 1
# A location is a relative file name beside the model; anything longer, or with control characters (a NUL
# byte would make every path call raise), is refused like one that escapes the model's directory.
MAX_LOCATION_CHARS = 1024
MAX_COMPONENT_CHARS = 255


def _external_tensors(model: Any) -> list[Any]:
    from onnx.external_data_helper import _get_all_tensors, uses_external_data

    return [t for t in _get_all_tensors(model) if uses_external_data(t)]


def load(path: Path) -> Any:
    """Parse `path` and pull in its external data, refusing any location outside `path`'s directory."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as exc:
        raise InvalidArgument(f"{path.name} is not a valid ONNX model ({type(exc).__name__})") from None
    if not model.graph.node and not model.graph.output:
        raise InvalidArgument(f"{path.name} is not a valid ONNX model (empty graph)")
    base = path.parent.resolve()
    for tensor in _external_tensors(model):
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        if not _plain_location(location):
            raise InvalidArgument(
                f"{path.name}: external data of {tensor.name!r} has an invalid location "
                f"({location[:120]!r}: too long, empty or with control characters)"
            )
        target = (base / location).resolve()
        if Path(location).is_absolute() or not target.is_relative_to(base):
            raise InvalidArgument(
                f"{path.name}: external data of {tensor.name!r} points outside the model's directory "
                f"({location[:120]!r})"
            )
        if not target.is_file():
            raise InvalidArgument(f"{path.name}: external data file {location!r} is missing")
    try:
        onnx.load_external_data_for_model(model, str(base))
    except (OSError, ValueError) as exc:
        raise InvalidArgument(f"{path.name}: cannot read its external data ({exc})") from None
    return model


def _plain_location(location: str) -> bool:
    return (
        0 < len(location) <= MAX_LOCATION_CHARS
        and location.isprintable()
        and all(len(part) <= MAX_COMPONENT_CHARS for part in location.replace("\\", "/").split("/"))
    )


def finalize(model: Any, out: Path) -> Any:
    """Inline all data, run the checker and strict shape inference, and write `out` as one file."""
    import onnx

    for tensor in _external_tensors(model):  # loaded already; clear the pointers so it saves inline
        tensor.data_location = onnx.TensorProto.DEFAULT
        del tensor.external_data[:]
    size = model.ByteSize()
    if size > _PROTOBUF_LIMIT:
        raise InvalidArgument(f"model is {size} bytes; over 2 GiB it cannot be stored as a single ONNX file")
    try:
        onnx.checker.check_model(model)
        inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidArgument(f"ONNX model failed validation: {first[:300]}") from None
    for out_info in model.graph.output:
        if not out_info.type.HasField("tensor_type"):
            raise InvalidArgument(
                f"output {out_info.name!r} is not a tensor (sequence or map); cannot serve it"
            )
    out.write_bytes(inferred.SerializeToString())
    return inferred


def session(path: Path) -> Any:
    """An onnxruntime session on one thread (imports run beside a server on small machines)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for unsupported graphs
        raise InvalidArgument(
            f"onnxruntime cannot load the model: {str(exc).splitlines()[0][:300]}"
        ) from None
