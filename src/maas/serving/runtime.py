"""Runtimes execute one model synchronously; `OnnxRuntime` is the onnxruntime one.

Runtimes never touch the event loop: the batcher calls `run` from a bounded thread pool (onnxruntime
releases the GIL while it computes).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Protocol

import numpy as np

from maas.errors import Internal, InvalidArgument
from maas.types import TensorSpec

log = logging.getLogger(__name__)

# onnxruntime's type strings ("tensor(float)") -> V2 datatypes.
_ORT_TO_V2 = {
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(float16)": "FP16",
    "tensor(bfloat16)": "BF16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}


class Runtime(Protocol):
    """One loaded model instance. `run` is synchronous and may be called from any one thread at a time."""

    @property
    def inputs(self) -> tuple[TensorSpec, ...]: ...
    @property
    def outputs(self) -> tuple[TensorSpec, ...]: ...
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...
    def close(self) -> None: ...


def _spec(arg: Any) -> TensorSpec:
    datatype = _ORT_TO_V2.get(arg.type)
    if datatype is None:
        raise InvalidArgument(f"tensor {arg.name!r} has unsupported type {arg.type}")
    # Symbolic (str) or unknown (None) dimensions are dynamic.
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (arg.shape or ()))
    return TensorSpec(arg.name, datatype, shape)


class OnnxRuntime:
    """An onnxruntime InferenceSession on already digest-verified model bytes (or a local file)."""

    def __init__(
        self, model: bytes | str | os.PathLike[str], *, intra_op_threads: int = 1, use_cuda: bool = False
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1  # parallelism comes from instances, not from inside one run
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if intra_op_threads > 1:
            # onnxruntime's worker threads spin on after a run, waiting for the next one: measured ~40 ms of CPU
            # after each ResNet-18 run on 2 threads, taken from the event loop, the transports and the other
            # sessions. Spinning inside a run (between its operators) is kept; it ends with the run.
            opts.add_session_config_entry("session.force_spinning_stop", "1")
        providers = ["CPUExecutionProvider"]
        if use_cuda and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        elif use_cuda:
            log.warning("CUDA was asked for but onnxruntime has no CUDA provider; using the CPU")
        try:
            source = model if isinstance(model, bytes) else os.fspath(model)
            self._session = ort.InferenceSession(source, sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own types for bad files
            raise InvalidArgument(f"onnxruntime cannot load the model: {exc}") from exc
        self._inputs = tuple(_spec(a) for a in self._session.get_inputs())
        self._outputs = tuple(_spec(a) for a in self._session.get_outputs())
        self._output_names = [o.name for o in self._outputs]

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self._outputs

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {name: _to_ort(v) for name, v in inputs.items()}
        try:
            values = self._session.run(self._output_names, feed)
        except Exception as exc:
            raise Internal(f"model execution failed: {exc}") from exc
        return {name: _from_ort(np.asarray(v)) for name, v in zip(self._output_names, values, strict=True)}

    def close(self) -> None:
        # Dropping the reference releases the session's memory once no run holds it.
        self._session = None  # type: ignore[assignment]


def _to_ort(value: np.ndarray) -> np.ndarray:
    """BYTES tensors cross maas as `bytes` objects; onnxruntime's string tensors want `str`."""
    if value.dtype != object:
        return value
    try:
        return np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else str(b), otypes=[object])(value)
    except UnicodeDecodeError:
        raise InvalidArgument("a BYTES input for a string tensor must be UTF-8 text") from None


def _from_ort(value: np.ndarray) -> np.ndarray:
    if value.dtype.kind in ("U", "O"):
        return np.vectorize(lambda s: s.encode("utf-8") if isinstance(s, str) else s, otypes=[object])(value)
    return value
