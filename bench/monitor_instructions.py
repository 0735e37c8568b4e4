"""What prediction logging costs per request, in instructions (callgrind), which a loaded machine does not
disturb (not a test, not run in CI). The real app is called in-process (ASGI, the tiny CNN, REST binary,
sequential requests, no sockets: the HTTP server's own cost is left out, so the ratios are upper bounds),
under `valgrind --tool=callgrind`, in four runs whose differences cancel the start-up:

    A0: no requests        A: N requests with logging off
    B: A + N at 100%       C: A + N at 1%        (each run ends by flushing the log to Parquet)

off = (A - A0) / N per request; the cost of 100% logging is (B - A) / N - off, written as a share of off.

    python bench/monitor_instructions.py [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

CHILD = r'''
import asyncio, sys
import numpy as np
from maas.config import Settings
from maas.registry import Registry
from maas.serving.dataplane import ServingDataPlane
from maas.serving.options import ServingOptions
from maas.server.app import create_app
from maas.server.main import prediction_log

home, onnx_path, plan = sys.argv[1], sys.argv[2], sys.argv[3]  # plan: "off:300,100:300"
BINARY = b"inference-header-content-length"

async def main():
    settings = Settings(home=home)
    reg = Registry(settings)
    onnx = open(onnx_path, "rb").read()
    cfg = {"max_batch_size": 64, "batching": {"max_queue_delay_us": 0}}
    for arm, rate in (("off", 0.0), ("1", 0.01), ("100", 1.0)):
        reg.publish(f"cnn-{arm}", {"model.onnx": onnx}, config={**cfg, "log_sample_rate": rate})
    plane = ServingDataPlane(reg, ServingOptions(inference_threads=1))
    plane.predictions = prediction_log(settings, reg, plane.metrics.registry)
    app = create_app(settings, reg, plane, grpc=False)
    await plane.start()
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    import json as _json
    header = _json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 28, 28, 1],
                                       "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    body = header + x.tobytes()
    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}
    statuses = []
    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])
    for step in filter(None, plan.split(",")):
        arm, n = step.split(":")
        path = f"/v2/models/cnn-{arm}/infer"
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
                 "headers": [(b"host", b"x"), (b"content-type", b"application/octet-stream"),
                             (b"content-length", str(len(body)).encode()),
                             (BINARY, str(len(header)).encode())]}
        for _ in range(int(n)):
            await app(dict(scope), receive, send)
    assert set(statuses) <= {200}, set(statuses)
    plane.predictions.flush()
    written = plane.metrics.registry.get_sample_value("maas_prediction_log_records_total", {"model": "cnn-100"})
    assert "100:" not in plan or written == int(plan.split("100:")[1].split(",")[0]), written
    await plane.stop(5)

asyncio.run(main())
'''


def instructions(plan: str, onnx_path: Path, work: Path, src: Path) -> int:
    home = tempfile.mkdtemp(dir=work)
    out = work / f"callgrind.{len(list(work.iterdir()))}"
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, "-c", CHILD, home,
         str(onnx_path), plan], env=env, capture_output=True, text=True, check=False, timeout=3000)
    match = re.search(r"Collected : (\d+)", proc.stderr)
    if proc.returncode != 0 or match is None:
        raise RuntimeError(proc.stderr[-3000:])
    return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import models
    import torch

    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="maas-bench-instr-"))
    onnx_path = work / "cnn.onnx"
    onnx_path.write_bytes(models._export(models.MnistCnn(), torch.rand(1, 28, 28, 1)))
    n = args.requests
    plans = {"A0": "", "A": f"off:{n}", "B": f"off:{n},100:{n}", "C": f"off:{n},1:{n}"}
    counts = {k: instructions(p, onnx_path, work, args.src) for k, p in plans.items()}
    off = (counts["A"] - counts["A0"]) / n
    at_100 = (counts["B"] - counts["A"]) / n
    at_1 = (counts["C"] - counts["A"]) / n
    print(json.dumps({"requests_per_arm": n, "instructions": counts,
                      "per_request": {"off": round(off), "log-100%": round(at_100), "log-1%": round(at_1)},
                      "cost_vs_off": {"log-100%": round(at_100 / off - 1, 4), "log-1%": round(at_1 / off - 1, 4)}},
                     indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
