"""TensorFlow, tf2onnx and the TFLite interpreter, imported only when a TensorFlow format is used (never by
the serving core), with one error when the optional extra is missing and Keras kept on the torch backend."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from maas.errors import InvalidArgument

NEEDS_TF = "{} needs the tensorflow extra: pip install 'maas[tensorflow]'"


def tf(what: str) -> Any:
    """Import TensorFlow for `what` (e.g. "TFLite import"), quietly and on one thread."""
    # With TensorFlow installed Keras would default to it; the .keras/.h5 importer needs torch.
    os.environ.setdefault("KERAS_BACKEND", "torch")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow
    except ImportError:
        raise InvalidArgument(NEEDS_TF.format(what)) from None
    try:  # only possible before TensorFlow's runtime has started
        tensorflow.config.threading.set_intra_op_parallelism_threads(1)
        tensorflow.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass
    return tensorflow


def tf2onnx(what: str) -> Any:
    tf(what)
    try:
        import tf2onnx as converter
    except ImportError:
        raise InvalidArgument(NEEDS_TF.format(what)) from None
    return converter


def _interpreter(model: bytes) -> Any:
    tensorflow = tf("the TFLite interpreter")
    try:
        with warnings.catch_warnings():
            # TF 2.21 still ships it; ai_edge_litert's is the same engine but another 30 MB dependency.
            warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated")
            return tensorflow.lite.Interpreter(model_content=model, num_threads=1)
    except (ValueError, RuntimeError) as exc:
        raise InvalidArgument(f"the TFLite interpreter cannot load the model: {str(exc)[:200]}") from None


def run_tflite(model: bytes, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run a TFLite flatbuffer on `inputs` (in the model's input order), resizing dynamic dims to fit."""
    interp = _interpreter(model)
    details = interp.get_input_details()
    if len(details) != len(inputs):
        raise InvalidArgument(f"the TFLite model takes {len(details)} inputs, got {len(inputs)}")
    for d, arr in zip(details, inputs, strict=True):
        if list(d["shape"]) != list(arr.shape):
            interp.resize_tensor_input(d["index"], list(arr.shape), strict=True)
    interp.allocate_tensors()
    for d, arr in zip(details, inputs, strict=True):
        interp.set_tensor(d["index"], np.ascontiguousarray(arr, dtype=d["dtype"]))
    interp.invoke()
    return [np.array(interp.get_tensor(d["index"])) for d in interp.get_output_details()]


def input_specs(model: bytes) -> list[dict[str, Any]]:
    """Name, dtype and shape signature (-1 where dynamic) of each input of a TFLite model."""
    return [
        {"name": d["name"], "dtype": np.dtype(d["dtype"]), "shape": [int(x) for x in d["shape_signature"]]}
        for d in _interpreter(model).get_input_details()
    ]
