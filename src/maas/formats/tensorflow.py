"""TensorFlow SavedModel directories and `.tflite` flatbuffers, converted with tf2onnx and checked against
TensorFlow itself (the serving signature, or the TFLite interpreter). A SavedModel is a program: graphs
that touch files or call back into Python are refused unless the caller trusts them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from maas.errors import InvalidArgument, PayloadTooLarge
from maas.formats import parity, safety, tf_runtime
from maas.formats.publish import Converted

OPSET = 17
SIGNATURE = "serving_default"
TFLITE_MAGIC = b"TFL3"
# Ops that read or write the file system or run Python: a model has no business doing either at inference.
_UNSAFE_OPS = frozenset({
    "ReadFile", "WriteFile", "MatchingFiles", "DeleteFile", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "ImmutableConst", "WholeFileReader", "WholeFileReaderV2", "PrintV2", "DebugIdentityV2",
})
# Checkpoint save/restore functions every SavedModel carries; they never run on import.
_CHECKPOINT_FUNCTIONS = ("__inference__traced_save", "__inference__traced_restore")


def _unsafe_ops(directory: Path) -> list[str]:
    """Unsafe op types anywhere in saved_model.pb, read as plain protobuf (nothing is executed)."""
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    try:
        sm.ParseFromString((directory / "saved_model.pb").read_bytes())
    except DecodeError:
        raise InvalidArgument(f"{directory.name}/saved_model.pb is not a valid SavedModel") from None
    found: set[str] = set()
    for mg in sm.meta_graphs:
        found |= {n.op for n in mg.graph_def.node} & _UNSAFE_OPS
        for fn in mg.graph_def.library.function:
            if fn.signature.name.startswith(_CHECKPOINT_FUNCTIONS):
                continue
            found |= {n.op for n in fn.node_def} & _UNSAFE_OPS
    return sorted(found)


def convert_saved_model(directory: Path, work: Path, trust: bool, source_file: Path | None = None) -> Converted:
    """The `serving_default` signature through tf2onnx.convert.from_function, inputs in name order."""
    converter = tf_runtime.tf2onnx("TensorFlow SavedModel import")
    tf = tf_runtime.tf("TensorFlow SavedModel import")
    unsafe = _unsafe_ops(directory)
    if unsafe:
        safety.refuse_code_loading(directory, f"a SavedModel using {', '.join(unsafe[:3])}", trust)
    try:
        loaded = tf.saved_model.load(str(directory))
    except Exception as exc:  # TensorFlow raises many unrelated types for a damaged directory
        raise InvalidArgument(f"TensorFlow cannot load {directory.name}: {str(exc).splitlines()[0][:300]}") from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if SIGNATURE not in signatures:
        raise InvalidArgument(
            f"{directory.name} has no {SIGNATURE!r} signature (has: {', '.join(sorted(signatures)) or 'none'})"
        )
    fn = signatures[SIGNATURE]
    specs = fn.structured_input_signature[1]
    names = sorted(specs)
    out_keys = sorted(fn.structured_outputs)

    input_signature = [tf.TensorSpec(specs[n].shape, specs[n].dtype, name=n) for n in names]

    @tf.function(input_signature=input_signature)
    def serving(*args: Any) -> list[Any]:
        result = fn(**dict(zip(names, args, strict=True)))
        return [result[k] for k in out_keys]

    out = work / "savedmodel.onnx"
    try:
        proto, _ = converter.convert.from_function(serving, input_signature=input_signature, opset=OPSET)
    except Exception as exc:
        raise InvalidArgument(f"tf2onnx cannot convert {directory.name}: {str(exc).splitlines()[0][:300]}") from None
    _rename_io(proto, names, out_keys)
    out.write_bytes(proto.SerializeToString())

    def reference(inputs: dict[str, np.ndarray]) -> list[Any]:
        result = fn(**{n: tf.constant(a) for n, a in zip(names, inputs.values(), strict=True)})
        return [result[k].numpy() for k in out_keys]

    return Converted(onnx_path=out, source_format="tensorflow", reference=reference, source_file=source_file)


def _rename_io(model: Any, inputs: list[str], outputs: list[str]) -> None:
    """Give the graph the signature's names (tf2onnx keeps TensorFlow's `x:0` / `Identity:0`)."""
    new = {v.name: n for v, n in zip(model.graph.input, inputs, strict=False)}
    new |= {v.name: n for v, n in zip(model.graph.output, outputs, strict=False)}
    if len(set(new.values())) != len(new):
        return
    for value in [*model.graph.input, *model.graph.output]:
        value.name = new.get(value.name, value.name)
    for node in model.graph.node:
        node.input[:] = [new.get(x, x) for x in node.input]
        node.output[:] = [new.get(x, x) for x in node.output]


def convert_tflite(path: Path, work: Path, limit: int) -> Converted:
    """tf2onnx's TFLite reader; parity against the TFLite interpreter (dynamic dims resized to the samples)."""
    converter = tf_runtime.tf2onnx("TFLite import")
    data = path.read_bytes()
    if len(data) > limit:
        raise PayloadTooLarge(f"{path.name} is {len(data)} bytes, over {safety.limit_text(limit)}")
    if data[4:8] != TFLITE_MAGIC:
        raise InvalidArgument(f"{path.name} is not a TFLite model (no TFL3 identifier; truncated or corrupt?)")
    specs = tf_runtime.input_specs(data)
    out = work / "tflite.onnx"
    try:
        converter.convert.from_tflite(str(path), opset=OPSET, output_path=str(out))
    except Exception as exc:
        raise InvalidArgument(f"tf2onnx cannot convert {path.name}: {str(exc).splitlines()[0][:300]}") from None

    def samples(sig: Any) -> dict[str, np.ndarray]:
        # The interpreter's own dims (batch 1 when the flatbuffer fixed it) where the ONNX graph left -1.
        drawn = parity.generate(sig)
        fitted = {}
        for (name, arr), spec in zip(drawn.items(), specs, strict=True):
            shape = [a if s == -1 else s for a, s in zip(arr.shape, spec["shape"], strict=True)]
            fitted[name] = np.resize(arr, shape).astype(arr.dtype)
        return fitted

    def reference(inputs: dict[str, np.ndarray]) -> list[Any]:
        return tf_runtime.run_tflite(data, list(inputs.values()))

    return Converted(
        onnx_path=out, source_format="tflite", reference=reference, sample_factory=samples, source_file=path
    )
