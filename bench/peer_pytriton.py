"""The peer in the same run: PyTriton (Triton's own C++ server core, calling a Python function that runs the
model in onnxruntime, as PyTriton's documentation shows) serving the benchmark's ONNX model with the same
batching settings as maas, measured by the same load generators on the same cores.

Run by `run.py --peer-python PY`, with a Python that has `nvidia-pytriton onnxruntime numpy` (kept out of
maas's environment). PyTriton's Python backend links the system's libpython, so build that environment from
the system's Python 3.11 (`/usr/bin/python3.11 -m venv ...`, see bench/README.md):

    PY bench/peer_pytriton.py MODEL.onnx NAME HTTP_PORT GRPC_PORT METRICS_PORT MAX_BATCH DELAY_US INSTANCES
"""

from __future__ import annotations

import sys

import numpy as np
import onnxruntime as ort
from pytriton.decorators import batch
from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
from pytriton.triton import Triton, TritonConfig


def main() -> None:
    path, name, http_port, grpc_port, metrics_port, max_batch, delay_us, instances = sys.argv[1:9]
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # as maas's benchmark configs
    sessions = [ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
                for _ in range(int(instances))]
    inp, out = sessions[0].get_inputs()[0], sessions[0].get_outputs()[0]

    def infer_with(session: ort.InferenceSession):  # type: ignore[no-untyped-def]
        @batch
        def infer(**inputs: np.ndarray) -> dict[str, np.ndarray]:
            return {out.name: session.run([out.name], {inp.name: inputs[inp.name]})[0]}

        return infer

    config = TritonConfig(http_address="127.0.0.1", http_port=int(http_port), grpc_address="127.0.0.1",
                          grpc_port=int(grpc_port), metrics_port=int(metrics_port))
    with Triton(config=config) as triton:
        triton.bind(
            model_name=name,
            infer_func=[infer_with(s) for s in sessions],  # one model instance per session
            inputs=[Tensor(name=inp.name, dtype=np.float32, shape=tuple(inp.shape[1:]))],
            outputs=[Tensor(name=out.name, dtype=np.float32, shape=tuple(out.shape[1:]))],
            config=ModelConfig(max_batch_size=int(max_batch),
                               batcher=DynamicBatcher(max_queue_delay_microseconds=int(delay_us))),
            strict=False,
        )
        triton.serve()


if __name__ == "__main__":
    main()
