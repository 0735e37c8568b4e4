"""What prediction logging costs per request with no client on the cores (not a test, not run in CI): the
real app called in-process (ASGI, the tiny CNN, REST binary, sequential requests, no sockets, so the HTTP
server's own cost is left out and the shares are upper bounds), arms interleaved round by round in one
process. A cell is the process's CPU time (all threads) for N requests plus the synchronous flush of what they
logged to Parquet, divided by N; each arm is also compared with the off cell of its own round.

    python bench/monitor_inprocess.py [--requests 500] [--rounds 7]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

ARMS = {"off": 0.0, "log-1%": 0.01, "log-100%": 1.0}
BINARY = b"inference-header-content-length"


async def measure(requests: int, rounds: int) -> dict[str, list[float]]:
    import models
    import torch

    from maas.config import Settings
    from maas.registry import Registry
    from maas.server.app import create_app
    from maas.server.main import prediction_log
    from maas.serving.dataplane import ServingDataPlane
    from maas.serving.options import ServingOptions

    torch.manual_seed(0)
    onnx = models._export(models.MnistCnn(), torch.rand(1, 28, 28, 1))
    settings = Settings(home=Path(tempfile.mkdtemp(prefix="maas-bench-inproc-")))
    reg = Registry(settings)
    for arm, rate in ARMS.items():
        reg.publish(f"cnn-{arm[4:-1] or arm}", {"model.onnx": onnx},
                    config={"max_batch_size": 64, "log_sample_rate": rate})
    plane = ServingDataPlane(reg, ServingOptions(inference_threads=1))
    plane.predictions = prediction_log(settings, reg, plane.metrics.registry)
    plane.predictions.autostart = False  # flushed inside each cell, so its cost lands in that cell
    app = create_app(settings, reg, plane, grpc=False)
    await plane.start()
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    header = json.dumps({"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 28, 28, 1],
                                     "parameters": {"binary_data_size": x.nbytes}}]}).encode()
    body = header + x.tobytes()
    statuses: set[int] = set()

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.add(int(message["status"]))  # type: ignore[call-overload]

    def scope(model: str) -> dict[str, object]:
        path = f"/v2/models/{model}/infer"
        return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
                "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
                "headers": [(b"host", b"x"), (b"content-type", b"application/octet-stream"),
                            (b"content-length", str(len(body)).encode()), (BINARY, str(len(header)).encode())]}

    results: dict[str, list[float]] = {arm: [] for arm in ARMS}
    for r in range(rounds + 1):  # round 0 warms every arm up
        for arm in ARMS:
            model = f"cnn-{arm[4:-1] or arm}"
            start = time.process_time()
            for _ in range(requests):
                await app(scope(model), receive, send)
            plane.predictions.flush()
            if r:
                results[arm].append((time.process_time() - start) / requests * 1e6)
    assert statuses == {200}, statuses
    written = plane.metrics.registry.get_sample_value("maas_prediction_log_records_total", {"model": "cnn-100"})
    assert written == requests * (rounds + 1), written
    await plane.stop(5)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    results = asyncio.run(measure(args.requests, args.rounds))
    off = statistics.median(results["off"])
    print(json.dumps({
        "requests_per_cell": args.requests, "rounds": args.rounds,
        "load_avg": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "arms": {arm: {"cpu_us_per_request": round(statistics.median(v), 1), "min": round(min(v), 1),
                       "cost_vs_off": round(statistics.median(v) / off - 1, 4),
                       # each round's cell against the same round's off cell, a moment apart: the median of
                       # those paired ratios follows the machine's drift less than the ratio of medians
                       "paired_cost_vs_off": round(statistics.median(
                           a / b for a, b in zip(v, results["off"], strict=True)) - 1, 4),
                       "runs": [round(x, 1) for x in v]}
                 for arm, v in results.items()},
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
