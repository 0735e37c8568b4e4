"""The cost of traffic features on the serving path: no split, a one-arm split, two-arm splits (50/50 and 90/10)
and 10% shadow traffic, on the tiny CNN at concurrency 32, in the same run against one `maas serve` (one model
per case), driven by C load generators (REST JSON and REST binary with wrk, gRPC with h2load). Each round runs
every case, the order rotated each round, so drift in the machine's load hits each alike; besides req/s, each
cell reads the server process's CPU time per request (user + system from /proc, all threads), which other
processes' load disturbs far less.

    python bench/traffic.py [--duration 5] [--rounds 3] [--concurrency 32] [--protocols rest-json,rest-binary,grpc]
"""

from __future__ import annotations

import argparse
import json
import os
import re
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
import monitor  # noqa: E402
import run as bench  # noqa: E402

CASES = {  # model name -> its traffic split (None: no split, today's behaviour)
    "plain": None,
    # one arm: routing and per-arm metrics without splitting the batches over two versions' queues
    "one-arm": {"arms": [{"version": 1, "weight": 100}]},
    "50-50": {"arms": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]},
    "90-10": {"arms": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]},  # the issue's own example
    "shadow": {"arms": [{"version": 1, "weight": 100}], "shadow": {"version": 2, "fraction": 0.1}},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--protocols", default="rest-json,rest-binary,grpc")
    args = ap.parse_args()
    protocols = args.protocols.split(",")

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
    results: dict[str, dict[str, list[dict]]] = {n: {p: [] for p in protocols} for n in CASES}
    loads = [os.getloadavg()[0]]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as http:
            for name, split in CASES.items():
                if split is not None:
                    http.put(f"/api/v1/models/{name}/traffic", json=split).raise_for_status()
            time.sleep(2)  # the server loads and warms up the arms
        b = bench.bodies(x)
        paths = {}
        for proto in ("rest-json", "rest-binary"):
            paths[proto] = home / f"body.{proto}"
            paths[proto].write_bytes(b[proto][0])
        paths["grpc"] = home / "body.grpc"
        paths["grpc"].write_bytes(bench.grpc_frame(b["grpc"][0]))
        def grpc_body(name: str) -> bytes:
            msg = pb.ModelInferRequest.FromString(b["grpc"][0])
            msg.model_name = name
            return msg.SerializeToString()

        answers = {name: bench.check_answers(name, http_port, grpc_port, {**b, "grpc": (grpc_body(name), None)})
                   for name in CASES}  # the answer names its model: its size differs by model
        for i in range(args.rounds):
            names = list(CASES)
            for name in names[i % len(names):] + names[:i % len(names)]:
                for proto in protocols:
                    batches = rows_per_batch(http_port, name)  # scraped outside the cell's CPU time
                    before = monitor.cpu_seconds(proc.pid)
                    if proto == "grpc":
                        # h2load sends the message as it is: the model name must be in it
                        paths["grpc"].write_bytes(bench.grpc_frame(grpc_body(name)))
                        r = bench.run_h2load(f"http://127.0.0.1:{grpc_port}{grpc_load.METHOD}", paths["grpc"],
                                             answers[name], args.concurrency, args.duration)
                    else:
                        url = f"http://127.0.0.1:{http_port}/v2/models/{name}/infer"
                        r = bench.run_wrk(url, paths[proto], b[proto][1], args.concurrency, args.duration)
                    time.sleep(0.3)  # shadow copies of the cell finish in the cell
                    r["cpu_us"] = (monitor.cpu_seconds(proc.pid) - before) / max(r["requests"], 1) * 1e6
                    rows, count = (a - b for a, b in zip(rows_per_batch(http_port, name), batches, strict=True))
                    r["rows_per_batch"] = rows / count if count else 0.0
                    results[name][proto].append(r)
            loads.append(os.getloadavg()[0])
        with httpx.Client(base_url=f"http://127.0.0.1:{http_port}") as http:
            metrics = http.get("/metrics").text
    finally:
        bench.stop_server(proc)
    shadow_lines = [line for line in metrics.splitlines() if line.startswith("maas_traffic_shadow_requests_total")]
    report(results, args, shadow_lines, loads)


def rows_per_batch(http_port: int, model: str) -> tuple[float, float]:
    """(rows, batches) the server has run for `model` so far, every version (the primary and shadow arms)."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=30).text
    found = {part: sum(float(v) for v in re.findall(
        rf'^maas_inference_batch_size_{part}{{[^}}]*model="{model}"[^}}]*}} (\S+)$', text, re.M))
        for part in ("sum", "count")}
    return found["sum"], found["count"]


def report(results: dict[str, dict[str, list[dict]]], args: argparse.Namespace, shadow: list[str],
           loads: list[float]) -> None:
    print(f"tiny CNN, concurrency {args.concurrency}, {args.rounds} rounds x {args.duration:g} s per cell "
          f"(medians over rounds); load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'protocol':11} {'case':7} {'req/s':>8} {'vs plain':>9} {'CPU us/req':>10} {'vs plain':>9} "
          f"{'paired':>7} {'rows/batch':>10} {'errors':>6}")
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for proto in next(iter(results.values())):
        plain = results["plain"][proto]
        base = statistics.median(r["rps"] for r in plain)
        base_cpu = statistics.median(r["cpu_us"] for r in plain)
        for name in CASES:
            cells = results[name][proto]
            rps = statistics.median(r["rps"] for r in cells)
            cpu = statistics.median(r["cpu_us"] for r in cells)
            # each round's cell against the same round's plain cell: follows the machine's drift less
            paired = statistics.median(c["cpu_us"] / p["cpu_us"] for c, p in zip(cells, plain, strict=True)) - 1
            row = {"rps": rps, "vs_plain": rps / base - 1, "cpu_us": cpu, "cpu_vs_plain": cpu / base_cpu - 1,
                   "cpu_paired_vs_plain": paired, "cpu_runs": [round(r["cpu_us"]) for r in cells],
                   "rps_runs": [round(r["rps"]) for r in cells], "errors": sum(r["errors"] for r in cells),
                   "rows_per_batch": statistics.median(r["rows_per_batch"] for r in cells)}
            summary.setdefault(proto, {})[name] = row
            print(f"{proto:11} {name:7} {rps:8.0f} {row['vs_plain']:+8.1%} {cpu:10.0f} {row['cpu_vs_plain']:+8.1%} "
                  f"{paired:+6.1%} {row['rows_per_batch']:10.1f} {row['errors']:6.0f}")
    for line in shadow:
        print(line)
    print("BENCH_JSON " + json.dumps({"load_avg": [round(x, 1) for x in loads], "cases": summary}))


if __name__ == "__main__":
    main()
