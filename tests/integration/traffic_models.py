"""Versions for the traffic tests, built with onnx.helper, and a continuous load of real clients
(tritonclient HTTP and gRPC threads) that records every answer and failure."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import onnx
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from onnx import TensorProto, helper, numpy_helper

from maas.types import Signature, TensorSpec

W = np.array([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0], [-1.0, 0.5, 1.0], [0.2, 0.1, -0.3]], dtype=np.float32)
B = np.array([0.0, 0.1, -0.1], dtype=np.float32)
SIGNATURE = Signature((TensorSpec("x", "FP32", (-1, 4)),),
                      (TensorSpec("y", "FP32", (-1, 3)), TensorSpec("label", "INT64", (-1,))))
WIDE_SIGNATURE = Signature((TensorSpec("x", "FP32", (-1, 5)),), SIGNATURE.outputs)


def _head(x: str) -> list[onnx.NodeProto]:
    return [helper.make_node("Gemm", [x, "W", "b"], ["y0"])]


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], width: int = 4) -> bytes:
    nodes = [*nodes, helper.make_node("ArgMax", ["y"], ["label"], axis=1, keepdims=0)]
    graph = helper.make_graph(
        nodes, "traffic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _weights(w: np.ndarray = W) -> list[onnx.TensorProto]:
    return [numpy_helper.from_array(w, "W"), numpy_helper.from_array(B, "b")]


def classifier() -> bytes:
    """y = x @ W + b, label = argmax(y): the stable version (and a good candidate: the same answers)."""
    return _model([*_head("x"), helper.make_node("Identity", ["y0"], ["y"])], _weights())


def wide_classifier() -> bytes:
    """Takes five inputs per row: a signature no other version here has."""
    w = np.vstack([W, np.zeros((1, 3), np.float32)])
    return _model([*_head("x"), helper.make_node("Identity", ["y0"], ["y"])], _weights(w), width=5)


def flipped() -> bytes:
    """Answers other classes for the same inputs (the weights negated)."""
    return _model([*_head("x"), helper.make_node("Identity", ["y0"], ["y"])], _weights(-W))


def failing() -> bytes:
    """Fails (Gather out of range) on every row whose x[:, 0] > 0.3; right on the others."""
    nodes = [
        *_head("x"),
        helper.make_node("Gather", ["x", "zero"], ["x0"], axis=1),
        helper.make_node("Greater", ["x0", "cut"], ["bad"]),
        helper.make_node("Cast", ["bad"], ["bad_i"], to=TensorProto.INT64),
        helper.make_node("Mul", ["bad_i", "ten"], ["idx"]),
        helper.make_node("Gather", ["b", "idx"], ["picked"], axis=0),
        helper.make_node("ReduceSum", ["picked"], ["s"], keepdims=0),
        helper.make_node("Mul", ["s", "nought"], ["z"]),
        helper.make_node("Add", ["y0", "z"], ["y"]),
    ]
    inits = [*_weights(), numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array(0.3, np.float32), "cut"),
             numpy_helper.from_array(np.array(10, np.int64), "ten"),
             numpy_helper.from_array(np.array(0.0, np.float32), "nought")]
    return _model(nodes, inits)


def slow(layers: int = 80, width: int = 1024, copies: int = 4) -> bytes:
    """The stable answers, after `layers` wide matrix products (on `copies` tiled rows per input row) whose
    result is multiplied by zero: tens of milliseconds a row."""
    nodes = [*_head("x"), helper.make_node("Tile", ["x", "reps"], ["h0"])]
    for i in range(layers):
        nodes += [helper.make_node("MatMul", [f"h{i}", "big"], [f"m{i}"]),
                  helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"])]
    nodes += [helper.make_node("ReduceSum", [f"h{layers}"], ["s"], keepdims=0),
              helper.make_node("Mul", ["s", "nought"], ["z"]),
              helper.make_node("Add", ["y0", "z"], ["y"])]
    rng = np.random.default_rng(0)
    inits = [*_weights(), numpy_helper.from_array(np.array([copies, width // 4], np.int64), "reps"),
             numpy_helper.from_array((rng.standard_normal((width, width)) / np.sqrt(width)).astype(np.float32),
                                     "big"),
             numpy_helper.from_array(np.array(0.0, np.float32), "nought")]
    return _model(nodes, inits)


@dataclass
class Answer:
    protocol: str
    ok: bool
    version: str
    error: str = ""
    key: str = ""
    at: float = field(default_factory=time.time)  # when the answer arrived (wall clock, as the events are)


@dataclass
class Load:
    """`threads` clients per protocol calling `model` (no version) until stopped."""

    http: str
    grpc: str
    model: str
    threads: int = 2
    keys: list[str] = field(default_factory=list)  # sticky-header values to cycle through, if any
    header: str = "x-user-id"
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        for i in range(self.threads):
            for proto in ("http", "grpc"):
                t = threading.Thread(target=self._run, args=(proto, i), daemon=True)
                t.start()
                self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=30)

    @property
    def failures(self) -> list[Answer]:
        return [a for a in self.answers if not a.ok]

    def wait_for(self, count: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        start = len(self.answers)
        while len(self.answers) - start < count and time.monotonic() < deadline:
            time.sleep(0.02)

    def _run(self, proto: str, seed: int) -> None:
        rng = np.random.default_rng(seed + (100 if proto == "grpc" else 0))
        mod = httpclient if proto == "http" else grpcclient
        client = mod.InferenceServerClient(self.http if proto == "http" else self.grpc)
        n = 0
        try:
            while not self._stop.is_set():
                x = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
                inp = mod.InferInput("x", [1, 4], "FP32")
                inp.set_data_from_numpy(x)
                key = self.keys[(n * 7 + seed) % len(self.keys)] if self.keys else ""
                n += 1
                try:
                    result = client.infer(self.model, [inp], headers={self.header: key} if key else None)
                    response = result.get_response()
                    version = response["model_version"] if proto == "http" else response.model_version
                    self.answers.append(Answer(proto, True, str(version), key=key))
                except Exception as exc:  # every failure a client sees is recorded, none is hidden
                    self.answers.append(Answer(proto, False, "", str(exc)[:200], key))
        finally:
            client.close()


# What the SDK sends: the cross-site guard refuses a body-less or form-like POST without it.
SDK_HEADERS = {"X-Requested-With": "maas-tests"}
