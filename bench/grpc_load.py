"""Closed-loop gRPC load generator: P processes x M in-flight ModelInfer calls over raw grpc.aio stubs.

The request is serialized once (raw_input_contents) and sent as bytes, so the client spends its CPU on the
transport, not on building messages. Each process reports its completed calls and latencies as JSON.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import time
from pathlib import Path
from typing import Any

METHOD = "/inference.GRPCInferenceService/ModelInfer"


async def _drive(target: str, body: bytes, inflight: int, warmup_s: float, duration_s: float) -> dict[str, Any]:
    import grpc

    opts = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    async with grpc.aio.insecure_channel(target, options=opts) as channel:
        call = channel.unary_unary(METHOD)  # bytes in, bytes out
        latencies: list[float] = []
        errors = 0
        start = time.perf_counter()
        measure_from = start + warmup_s
        stop_at = measure_from + duration_s

        async def worker() -> None:
            nonlocal errors
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                try:
                    await call(body, timeout=60)
                except grpc.aio.AioRpcError:
                    errors += 1
                    continue
                t1 = time.perf_counter()
                if t0 >= measure_from and t1 <= stop_at:
                    latencies.append(t1 - t0)

        await asyncio.gather(*(worker() for _ in range(inflight)))
    return {"latencies": latencies, "errors": errors}


def _process(target: str, body: bytes, inflight: int, warmup_s: float, duration_s: float, out: Any) -> None:
    out.send(asyncio.run(_drive(target, body, inflight, warmup_s, duration_s)))
    out.close()


def run(target: str, body: bytes, concurrency: int, duration_s: float, warmup_s: float = 1.0) -> dict[str, Any]:
    """Closed loop at `concurrency` in-flight calls spread over up to 2 processes."""
    procs = 1 if concurrency < 8 else 2
    ctx = mp.get_context("spawn")
    pipes, workers = [], []
    for i in range(procs):
        inflight = concurrency // procs + (1 if i < concurrency % procs else 0)
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_process, args=(target, body, inflight, warmup_s, duration_s, send))
        p.start()
        pipes.append(recv)
        workers.append(p)
    results = [r.recv() for r in pipes]
    for p in workers:
        p.join()
    lat = sorted(x for r in results for x in r["latencies"])
    n = len(lat)
    return {
        "requests": n,
        "errors": sum(r["errors"] for r in results),
        "rps": n / duration_s,
        "p50_ms": lat[n // 2] * 1e3 if n else float("nan"),
        "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1e3 if n else float("nan"),
        "processes": procs,
    }


if __name__ == "__main__":  # a manual smoke run: python bench/grpc_load.py HOST:PORT BODYFILE CONCURRENCY SECONDS
    import sys

    body = Path(sys.argv[2]).read_bytes()
    print(json.dumps(run(sys.argv[1], body, int(sys.argv[3]), float(sys.argv[4]))))
