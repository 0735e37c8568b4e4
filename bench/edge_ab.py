"""In-process A/B of the REST stack's cost per infer request (not a test): two source trees, each in its own
subprocess, interleaved so the machine's noise falls on both alike.

    python bench/edge_ab.py OLD_SRC NEW_SRC [--rounds 4] [--requests 3000]

Each run builds the real app (create_app over a started data plane, one tiny linear model), then calls the ASGI
app directly with a small JSON infer body, sequentially: no sockets, so what differs is the HTTP layer.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r'''
import asyncio, json, sys, tempfile, time
import numpy as np
from onnx import TensorProto, helper, numpy_helper
from maas.config import Settings
from maas.registry import Registry
from maas.serving import ServingDataPlane, ServingOptions
from maas.server.app import create_app

def linear():
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "l",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 3])], [w])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()

BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()

async def main(n):
    home = tempfile.mkdtemp()
    settings = Settings(home=home)
    reg = Registry(settings)
    reg.publish("lin", {"model.onnx": linear()}, source_format="onnx")
    plane = ServingDataPlane(reg, ServingOptions(inference_threads=1))
    app = create_app(settings, reg, plane, grpc=False)
    await plane.start()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": "/v2/models/lin/infer", "raw_path": b"/v2/models/lin/infer",
             "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
             "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(BODY)).encode())]}
    async def receive():
        return {"type": "http.request", "body": BODY, "more_body": False}
    statuses = []
    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
    for _ in range(200):
        await app(dict(scope), receive, send)
    start = time.perf_counter()
    for _ in range(n):
        await app(dict(scope), receive, send)
    elapsed = time.perf_counter() - start
    assert set(statuses) == {200}, set(statuses)
    await plane.stop(5)
    print(json.dumps({"us_per_request": elapsed / n * 1e6}))

asyncio.run(main(int(sys.argv[1])))
'''


def run(src: str, requests: int) -> float:
    env = {**os.environ, "PYTHONPATH": src}
    out = subprocess.run([sys.executable, "-c", CHILD, str(requests)], env=env, capture_output=True, text=True,
                         check=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["us_per_request"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"old": [], "new": []}
    for i in range(args.rounds):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        for label in order:
            results[label].append(run(getattr(args, label), args.requests))
            print(f"round {i + 1} {label}: {results[label][-1]:.1f} us/request", flush=True)
    for label, values in results.items():
        print(f"{label}: median {statistics.median(values):.1f} us/request, min {min(values):.1f} ({values})")


if __name__ == "__main__":
    main()
