"""Overload on loopback: unloaded p99 first, then bursts of many simultaneous clients; reports
admitted p99 ÷ unloaded p99, the share shed (429 / RESOURCE_EXHAUSTED), anything else (5xx, CANCELLED,
transport errors) and the server's RSS before / after / peak, for REST and gRPC. Not a test; bounded (a few
clients' worth of seconds) and loopback only.

    .venv/bin/python bench/overload.py                         # defaults: 5 bursts of 1024 clients
    .venv/bin/python bench/overload.py --clients 4352 --max-queue-wait-ms 20 --max-in-flight 64
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()


def linear_onnx() -> bytes:
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "linear",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8).SerializeToString()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set of `pid` in MB, from /proc (Linux)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def start(home: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], int, int]:
    import httpx

    sys.path.insert(0, str(ROOT / "src"))
    from maas.config import Settings
    from maas.registry import Registry

    with Registry(Settings(home=home)) as reg:
        reg.publish("linear", {"model.onnx": linear_onnx()},
                    config={"max_batch_size": 8, "batching": {"max_queue_delay_us": 500}})
    http_port, grpc_port = free_port(), free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    if args.max_queue_wait_ms is not None:
        env["MAAS_MAX_QUEUE_WAIT_MS"] = str(args.max_queue_wait_ms)
    if args.max_in_flight is not None:
        env["MAAS_MAX_HTTP_IN_FLIGHT"] = env["MAAS_MAX_GRPC_IN_FLIGHT"] = str(args.max_in_flight)
    log = open(home / "serve.log", "wb")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, "-c", "from maas.cli.main import app; app()", "serve",
                             "--http-port", str(http_port), "--grpc-port", str(grpc_port)],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=1).status_code == 200:
                return proc, http_port, grpc_port
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise TimeoutError(f"maas serve did not start; see {home / 'serve.log'}")


# --- REST: one raw HTTP/1.1 keep-alive connection per client --------------------------------------------------

REQUEST = (b"POST /v2/models/linear/infer HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY))


async def rest_client(port: int, rounds: list[asyncio.Event], out: dict[str, Any]) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        out["errors"] += 1
        return
    try:
        for go in rounds:
            await go.wait()
            sent = time.perf_counter()
            writer.write(REQUEST)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            took = time.perf_counter() - sent
            if status == 200:
                out["ok"].append(took)
            elif status == 429:
                out["shed"] += 1
            else:
                out["other"][str(status)] = out["other"].get(str(status), 0) + 1
            if b"connection: close" in head.lower():
                break
    except (OSError, asyncio.IncompleteReadError):
        out["errors"] += 1
    finally:
        writer.close()


# --- gRPC: a few channels, many concurrent calls ------------------------------------------------------------

async def grpc_clients(port: int, clients: int, rounds: list[asyncio.Event], out: dict[str, Any]) -> None:
    import grpc

    sys.path.insert(0, str(ROOT / "src"))
    from maas.protocol.grpc_gen import inference_pb2 as pb

    req = pb.ModelInferRequest(model_name="linear")
    req.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend([1, 2, 3, 4])
    payload = req.SerializeToString()
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{port}") for _ in range(max(1, clients // 256))]
    calls = [c.unary_unary("/inference.GRPCInferenceService/ModelInfer") for c in channels]

    async def one(i: int) -> None:
        call = calls[i % len(calls)]
        for go in rounds:
            await go.wait()
            sent = time.perf_counter()
            try:
                await call(payload, timeout=30)
                out["ok"].append(time.perf_counter() - sent)
            except grpc.aio.AioRpcError as err:
                if err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    out["shed"] += 1
                else:
                    out["other"][err.code().name] = out["other"].get(err.code().name, 0) + 1

    try:
        await asyncio.gather(*(one(i) for i in range(clients)))
    finally:
        for c in channels:
            await c.close()


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3 if ordered else float("nan")


async def phase(proto: str, port: int, clients: int, bursts: int, pause_s: float) -> dict[str, Any]:
    """`bursts` times: every client sends one request at the same moment; the next burst starts `pause_s`
    after the previous one's last answer (a burst, as the issue's 4,352 clients, not a saturating loop)."""
    out: dict[str, Any] = {"ok": [], "shed": 0, "other": {}, "errors": 0}
    rounds = [asyncio.Event() for _ in range(bursts)]

    async def conductor() -> None:
        for go in rounds:
            await asyncio.sleep(pause_s)
            before = len(out["ok"]) + out["shed"] + sum(out["other"].values()) + out["errors"]
            go.set()
            while len(out["ok"]) + out["shed"] + sum(out["other"].values()) + out["errors"] < before + clients:
                await asyncio.sleep(0.01)

    if proto == "rest":
        await asyncio.gather(conductor(), *(rest_client(port, rounds, out) for _ in range(clients)))
    else:
        await asyncio.gather(conductor(), grpc_clients(port, clients, rounds, out))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1024)
    parser.add_argument("--bursts", type=int, default=5, help="bursts of --clients simultaneous requests")
    parser.add_argument("--unloaded-requests", type=int, default=500)
    parser.add_argument("--max-queue-wait-ms", type=float, default=None)
    parser.add_argument("--max-in-flight", type=int, default=None, help="MAAS_MAX_HTTP/GRPC_IN_FLIGHT for the run")
    args = parser.parse_args()
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.clients + 256)), hard))
    with tempfile.TemporaryDirectory(prefix="maas-overload-") as tmp:
        proc, http_port, grpc_port = start(Path(tmp), args)
        try:
            report = []
            for proto, port in (("rest", http_port), ("grpc", grpc_port)):
                unloaded = asyncio.run(phase(proto, port, 1, args.unloaded_requests, 0.0))
                before = rss_mb(proc.pid)
                burst = asyncio.run(phase(proto, port, args.clients, args.bursts, 0.2))
                after = rss_mb(proc.pid)
                answered = len(burst["ok"]) + burst["shed"] + sum(burst["other"].values())
                row = {
                    "protocol": proto, "clients": args.clients,
                    "unloaded_p99_ms": round(p99(unloaded["ok"]), 2),
                    "admitted_p99_ms": round(p99(burst["ok"]), 2),
                    "ratio": round(p99(burst["ok"]) / p99(unloaded["ok"]), 1),
                    "admitted": len(burst["ok"]), "shed": burst["shed"],
                    "shed_share": round(burst["shed"] / answered, 3) if answered else None,
                    "other": burst["other"], "transport_errors": burst["errors"],
                    "rss_before_mb": round(before[0]), "rss_after_mb": round(after[0]), "rss_peak_mb": round(after[1]),
                }
                report.append(row)
                print(json.dumps(row), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
