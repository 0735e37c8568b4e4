"""The cost of traffic features on the serving path: no split, a two-arm split (50/50) and 10% shadow traffic,
on the tiny CNN at concurrency 32, in the same run against one `maas serve` (REST JSON with wrk, gRPC with
bench/grpc_load.py). Rounds alternate the three models so drift in the machine's load hits each alike.

    python bench/traffic.py [--duration 5] [--rounds 3] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import grpc_load  # noqa: E402
import models  # noqa: E402
import run as bench  # noqa: E402

CASES = {  # model name -> its traffic split (None: no split, today's behaviour)
    "plain": None,
    "split": {"arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]},
    "shadow": {"arms": [{"version": 1, "weight": 100}], "shadow": {"version": 2, "fraction": 0.1}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    args = ap.parse_args()

    import httpx

    from maas.config import Settings
    from maas.protocol.grpc_gen import inference_pb2 as pb
    from maas.registry import Registry

    onnx_bytes, row_shape = models.build()["cnn"]
    x = np.random.default_rng(0).random((1, *row_shape), dtype=np.float32)
    home = Path(tempfile.mkdtemp(prefix="maas-bench-traffic-"))
    with Registry(Settings(home=home)) as reg:
        for name in CASES:
            for _ in range(2):
                reg.publish(name, {"model.onnx": onnx_bytes}, config=bench.SERVER_CONFIG["cnn"])
            reg.set_alias(name, "production", 1)
    proc, http_port, grpc_port = bench.start_server(home, home / "server.log")
    results: dict[str, dict[str, list[dict]]] = {n: {"rest-json": [], "grpc": []} for n in CASES}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as http:
            for name, split in CASES.items():
                if split is not None:
                    http.put(f"/api/v1/models/{name}/traffic", json=split).raise_for_status()
            time.sleep(2)  # the server loads and warms up the arms
        json_body, _ = bench.bodies(x)["rest-json"]
        body_path = home / "body.json"
        body_path.write_bytes(json_body)
        for _ in range(args.rounds):
            for name in CASES:
                url = f"http://127.0.0.1:{http_port}/v2/models/{name}/infer"
                results[name]["rest-json"].append(bench.run_wrk(url, body_path, None, args.concurrency, args.duration))
                msg = pb.ModelInferRequest(model_name=name, inputs=[pb.ModelInferRequest.InferInputTensor(
                    name="input", datatype="FP32", shape=list(x.shape))], raw_input_contents=[x.tobytes()])
                results[name]["grpc"].append(grpc_load.run(f"127.0.0.1:{grpc_port}", msg.SerializeToString(),
                                                           args.concurrency, args.duration))
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as http:
            metrics = http.get("/metrics").text
    finally:
        bench.stop_server(proc)
    shadow_lines = [line for line in metrics.splitlines() if line.startswith("maas_traffic_shadow_requests_total")]
    report(results, args, shadow_lines)


def report(results: dict[str, dict[str, list[dict]]], args: argparse.Namespace, shadow: list[str]) -> None:
    print(f"tiny CNN, concurrency {args.concurrency}, {args.rounds} rounds x {args.duration:g} s per cell "
          "(medians over rounds)")
    print(f"{'protocol':10} {'case':7} {'req/s':>8} {'vs plain':>9} {'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for proto in ("rest-json", "grpc"):
        base = statistics.median(r["rps"] for r in results["plain"][proto])
        for name in CASES:
            cells = results[name][proto]
            rps = statistics.median(r["rps"] for r in cells)
            row = {"rps": rps, "vs_plain": rps / base - 1, "p50_ms": statistics.median(r["p50_ms"] for r in cells),
                   "p99_ms": statistics.median(r["p99_ms"] for r in cells),
                   "errors": sum(r["errors"] for r in cells)}
            summary.setdefault(proto, {})[name] = row
            print(f"{proto:10} {name:7} {rps:8.0f} {row['vs_plain']:+8.1%} {row['p50_ms']:7.2f} "
                  f"{row['p99_ms']:7.2f} {row['errors']:6.0f}")
    for line in shadow:
        print(line)
    print("BENCH_JSON " + json.dumps(summary))


if __name__ == "__main__":
    main()
