"""A small DataPlane over real onnxruntime sessions, standing in for ServingDataPlane in transport tests.

It implements the contract of maas.serving.inference.DataPlane directly (including the classification
extension) so the wire layer can be tested against real model outputs before the serving core lands.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from maas.errors import InvalidArgument, NotFound, Unavailable
from maas.serving.inference import (
    InferenceRequest,
    InferenceResponse,
    InferTensor,
    ModelIndexEntry,
    ModelMetadata,
    ServerMetadata,
)
from maas.types import ONNX_TO_V2, TensorSpec

EXTENSIONS = ("binary_tensor_data", "classification", "model_configuration", "model_repository")
WEIGHTS = np.arange(12, dtype=np.float32).reshape(4, 3) / 10 - 0.5
BIAS = np.array([0.1, -0.2, 0.3], dtype=np.float32)


def linear_model() -> bytes:
    """y = x @ W + b (FP32 [-1,4] -> [-1,3]) and label = argmax(y) (INT64 [-1])."""
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["x", "W", "b"], ["y"]),
            helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0),
        ],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        [
            helper.make_tensor("W", TensorProto.FLOAT, [4, 3], WEIGHTS.ravel()),
            helper.make_tensor("b", TensorProto.FLOAT, [3], BIAS),
        ],
    )
    return _serialize(graph)


ECHO_TYPES = {
    "s": TensorProto.STRING,
    "i": TensorProto.INT32,
    "h": TensorProto.FLOAT16,
    "b": TensorProto.BOOL,
}


def echo_model() -> bytes:
    """Identity for one input per awkward datatype (BYTES, INT32, FP16, BOOL): out_<n> = <n>."""
    graph = helper.make_graph(
        [helper.make_node("Identity", [n], [f"out_{n}"]) for n in ECHO_TYPES],
        "echo",
        [helper.make_tensor_value_info(n, t, ["batch"]) for n, t in ECHO_TYPES.items()],
        [helper.make_tensor_value_info(f"out_{n}", t, ["batch"]) for n, t in ECHO_TYPES.items()],
    )
    return _serialize(graph)


def _serialize(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _session(blob: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])


def _specs(args: list[Any]) -> tuple[TensorSpec, ...]:
    types = {
        "tensor(float)": "FP32",
        "tensor(int64)": "INT64",
        "tensor(int32)": "INT32",
        "tensor(string)": "BYTES",
        "tensor(float16)": "FP16",
        "tensor(bool)": "BOOL",
    }
    return tuple(
        TensorSpec(a.name, types[a.type], tuple(d if isinstance(d, int) else -1 for d in a.shape))
        for a in args
    )


class OnnxDataPlane:
    """Every model has the single version "1"; `load` / `unload` toggle whether it serves."""

    def __init__(self, models: dict[str, bytes]) -> None:
        self.blobs = models
        self.sessions = {name: _session(blob) for name, blob in models.items()}

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return True

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata("maas", "test", EXTENSIONS)

    def _known(self, name: str, version: str | None) -> None:
        if name not in self.blobs or version not in (None, "1"):
            raise NotFound(f"unknown model {name!r}" + (f" version {version}" if version else ""))

    def _loaded(self, name: str, version: str | None) -> ort.InferenceSession:
        self._known(name, version)
        if name not in self.sessions:
            raise Unavailable(f"model {name!r} is not loaded")
        return self.sessions[name]

    async def model_ready(self, name: str, version: str | None = None) -> bool:
        self._known(name, version)
        return name in self.sessions

    async def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        s = self._loaded(name, version)
        return ModelMetadata(
            name, ("1",), "onnxruntime_onnx", _specs(s.get_inputs()), _specs(s.get_outputs())
        )

    async def model_config(self, name: str, version: str | None = None) -> dict[str, Any]:
        md = await self.model_metadata(name, version)

        def tensors(specs: tuple[TensorSpec, ...]) -> list[dict[str, Any]]:
            dt = {"BYTES": "TYPE_STRING"}
            return [
                {
                    "name": t.name,
                    "data_type": dt.get(t.datatype, f"TYPE_{t.datatype}"),
                    "dims": list(t.shape[1:]),
                }
                for t in specs
            ]

        return {
            "name": name,
            "platform": "onnxruntime_onnx",
            "backend": "onnxruntime",
            "max_batch_size": 8,
            "input": tensors(md.inputs),
            "output": tensors(md.outputs),
            "dynamic_batching": {"max_queue_delay_microseconds": 100},
        }

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        s = self._loaded(request.model_name, request.model_version)
        names = {a.name for a in s.get_inputs()}
        feeds = {}
        for t in request.inputs:
            if t.name not in names:
                raise InvalidArgument(f"unknown input {t.name!r}")
            feeds[t.name] = _strings(t.data) if t.datatype == "BYTES" else t.data
        wanted = {o.name: o for o in request.outputs}
        outs = [a.name for a in s.get_outputs()]
        if unknown := set(wanted) - set(outs):
            raise InvalidArgument(f"unknown output {sorted(unknown)[0]!r}")
        results = await asyncio.to_thread(s.run, outs, feeds)
        tensors = []
        for name, arr in zip(outs, results, strict=True):
            if wanted and name not in wanted:
                continue
            k = wanted[name].parameters.get("classification") if name in wanted else None
            if k:
                arr = classify(arr, int(k))
            elif arr.dtype.kind in "OU":
                arr = np.array([x.encode() for x in arr.ravel()], dtype=object).reshape(arr.shape)
            dt = "BYTES" if arr.dtype == object else ONNX_TO_V2[helper.np_dtype_to_tensor_dtype(arr.dtype)]
            tensors.append(InferTensor(name, dt, arr.shape, arr))
        return InferenceResponse(request.model_name, "1", tensors, id=request.id)

    async def repository_index(self, ready_only: bool = False) -> list[ModelIndexEntry]:
        entries = [
            ModelIndexEntry(
                n,
                "1",
                "READY" if n in self.sessions else "UNAVAILABLE",
                "" if n in self.sessions else "unloaded",
            )
            for n in sorted(self.blobs)
        ]
        return [e for e in entries if e.state == "READY"] if ready_only else entries

    async def load(self, name: str) -> None:
        self._known(name, None)
        self.sessions[name] = _session(self.blobs[name])

    async def unload(self, name: str) -> None:
        self._known(name, None)
        self.sessions.pop(name, None)


def _strings(data: np.ndarray) -> np.ndarray:
    out = np.array([b.decode("utf-8") for b in data.ravel()], dtype=object)
    return out.reshape(data.shape)


def classify(arr: np.ndarray, k: int) -> np.ndarray:
    """Triton's classification extension: the top k per row as b"<score>:<index>"."""
    rows = arr.reshape(arr.shape[0], -1)
    top = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    out = np.array(
        [[f"{rows[r, i]:f}:{i}".encode() for i in top[r]] for r in range(rows.shape[0])], dtype=object
    )
    return out
