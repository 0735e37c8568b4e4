"""Overload on loopback, driven by C load generators: unloaded p99 first, then bursts of many simultaneous
clients from nghttp2's h2load (HTTP/1.1 with `--h1`, one connection per client; gRPC over h2, many streams per
connection) plus a few gRPC probe calls; reports admitted p99 ÷ unloaded p99, the share shed
(429 / RESOURCE_EXHAUSTED), anything else (5xx, uvicorn's own 503, CANCELLED, transport errors), whether every
refusal has its access-log line, the admitted requests' latency inside maas (from the access log) and the
server's RSS before / after / peak, for REST and gRPC. Not a test; bounded and loopback only.

    .venv/bin/python bench/overload.py                         # defaults: 3 bursts of 4352 clients
    .venv/bin/python bench/overload.py --clients 4352 --max-queue-wait-ms 20 --max-in-flight 64

h2load's per-request log (`--log-file`) has the HTTP status and the latency of each request, which classifies
REST exactly. A gRPC refusal is HTTP 200 too (its grpc-status is in the trailers), so for gRPC h2load gives the
count of each grpc-status (`-v` prints trailers-only answers' headers) and the latency of all answers, and
`--probes` calls from one Python grpc.aio client (part of the burst, a few % of it) give the latency of
admitted calls by status.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]}]}).encode()
METHOD = "/inference.GRPCInferenceService/ModelInfer"


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
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(args.src)}
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


# --- the load: h2load bursts ----------------------------------------------------------------------------------


def grpc_payload() -> bytes:
    sys.path.insert(0, str(ROOT / "src"))
    from maas.protocol.grpc_gen import inference_pb2 as pb

    req = pb.ModelInferRequest(model_name="linear")
    req.inputs.add(name="x", datatype="FP32", shape=[1, 4]).contents.fp32_contents.extend([1, 2, 3, 4])
    return req.SerializeToString()


def h2load(proto: str, port: int, requests: int, connections: int, work: Path, tag: str,
           streams: int = 0) -> subprocess.Popen[str]:
    """Start one h2load run of `requests` requests over `connections` connections with `streams` each at once
    (0: all of them at once); its per-request log goes to work/tag.log and its (verbose, for gRPC) output to the
    returned process's stdout."""
    log = work / f"{tag}.log"
    streams = streams or -(-requests // connections)
    if proto == "rest":
        (work / "body.json").write_bytes(BODY)
        cmd = ["h2load", "--h1", "-H", "content-type: application/json", "-d", str(work / "body.json"),
               f"http://127.0.0.1:{port}/v2/models/linear/infer"]
    else:
        frame = grpc_payload()
        (work / "body.grpc").write_bytes(b"\x00" + len(frame).to_bytes(4, "big") + frame)
        cmd = ["h2load", "-v", "-H", "content-type: application/grpc", "-H", "te: trailers",
               "-d", str(work / "body.grpc"), f"http://127.0.0.1:{port}{METHOD}"]
    cmd[1:1] = ["-n", str(requests), "-c", str(connections), "-m", str(streams), "-t", "1", "-T", "60",
                f"--log-file={log}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_h2load(proc: subprocess.Popen[str], log: Path) -> dict[str, Any]:
    out, _ = proc.communicate()
    counts = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    took = re.search(r"finished in ([\d.]+)(m?s)", out)
    if counts is None or took is None:
        raise RuntimeError(f"cannot read h2load's output:\n{out[-2000:]}")
    rows = [line.split("\t") for line in log.read_text().splitlines() if line.strip()]
    return {"latencies": [(int(r[1]), int(r[2]) / 1e6) for r in rows],  # (HTTP status, seconds)
            # trailers-only answers (gRPC errors) show their grpc-status in the verbose header dump
            "grpc_errors": Counter(int(c) for c in re.findall(r"grpc-status: (\d+)", out)),
            "errored": int(counts.group(3)) + int(counts.group(4)), "finished": len(rows),
            "seconds": float(took.group(1)) / (1e3 if took.group(2) == "ms" else 1)}


async def probe(port: int, calls: int, spread_s: float) -> list[tuple[str, float]]:
    """`calls` gRPC calls at random moments within `spread_s` from now; (status name, seconds) each."""
    import grpc

    payload = grpc_payload()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD)

        async def one() -> tuple[str, float]:
            await asyncio.sleep(random.uniform(0, spread_s))
            sent = time.perf_counter()
            try:
                await call(payload, timeout=60)
                return "OK", time.perf_counter() - sent
            except grpc.aio.AioRpcError as err:
                return err.code().name, time.perf_counter() - sent

        await channel.channel_ready()
        return await asyncio.gather(*(one() for _ in range(calls)))


def access_lines(log: Path, offset: int, proto: str) -> tuple[list[tuple[str, float]], int]:
    """(status, latency in s) of the access-log lines of `proto` written after `offset`; the new offset."""
    text = log.read_bytes()[offset:].decode(errors="replace")
    lines = re.findall(rf"protocol={proto} .*?status=(\S+) latency_ms=([\d.]+)", text)
    return [(s, float(ms) / 1e3) for s, ms in lines], offset + len(text.encode())


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3 if ordered else float("nan")


def unloaded(proto: str, port: int, requests: int, work: Path) -> float:
    """p99 (ms) of `requests` sequential requests from one h2load client."""
    r = read_h2load(h2load(proto, port, requests, 1, work, f"{proto}-unloaded", 1), work / f"{proto}-unloaded.log")
    return p99([s for _, s in r["latencies"]])


def bursts(proto: str, port: int, proc: subprocess.Popen[bytes], home: Path, args: argparse.Namespace,
           work: Path) -> dict[str, Any]:
    ok: list[float] = []  # client-side seconds of admitted requests (REST: all; gRPC: the probes)
    every: list[float] = []  # client-side seconds of every answer
    statuses: Counter[str] = Counter()
    inside_ok: list[float] = []  # access-log latency of admitted requests (arrival in maas to answer)
    logged: Counter[str] = Counter()
    errored = 0
    took: list[float] = []
    offset = (home / "serve.log").stat().st_size
    for i in range(args.bursts):
        time.sleep(args.pause)
        probes = args.probes if proto == "grpc" else 0
        connections = args.clients if proto == "rest" else max(1, args.clients // 256)
        load = h2load(proto, port, args.clients - probes, connections, work, f"{proto}-burst-{i}")
        probed = asyncio.run(probe(port, probes, 0.05)) if probes else []
        r = read_h2load(load, work / f"{proto}-burst-{i}.log")
        errored += r["errored"]
        took.append(r["seconds"])
        every.extend(s for _, s in r["latencies"])
        if proto == "rest":
            statuses.update(str(code) for code, _ in r["latencies"])
            ok.extend(s for code, s in r["latencies"] if code == 200)
        else:
            import grpc

            names = {c.value[0]: c.name for c in grpc.StatusCode}
            errors = sum(r["grpc_errors"].values())
            statuses.update({names.get(c, str(c)): n for c, n in r["grpc_errors"].items()})
            statuses["OK"] += r["finished"] - errors
            statuses.update(name for name, _ in probed)
            ok.extend(s for name, s in probed if name == "OK")
        time.sleep(0.5)  # the access log is flushed every 0.2 s
        lines, offset = access_lines(home / "serve.log", offset, proto)
        logged.update(s for s, _ in lines)
        inside_ok.extend(t for s, t in lines if s in ("200", "OK"))
    return {"ok": ok, "every": every, "statuses": statuses, "logged": logged, "inside_ok": inside_ok,
            "errored": errored, "burst_s": took}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4352)
    parser.add_argument("--bursts", type=int, default=3, help="bursts of --clients simultaneous requests")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds between bursts")
    parser.add_argument("--probes", type=int, default=128, help="gRPC calls per burst from the Python probe")
    parser.add_argument("--unloaded-requests", type=int, default=500)
    parser.add_argument("--protocols", default="rest,grpc")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the tree served (e.g. an older src/)")
    parser.add_argument("--max-queue-wait-ms", type=float, default=None)
    parser.add_argument("--max-in-flight", type=int, default=None, help="MAAS_MAX_HTTP/GRPC_IN_FLIGHT for the run")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # h2load inherits it: one descriptor per client
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * args.clients + 256)), hard))
    print(json.dumps({"load_avg": os.getloadavg(), "argv": sys.argv[1:]}), flush=True)
    with tempfile.TemporaryDirectory(prefix="maas-overload-") as tmp:
        home, work = Path(tmp) / "home", Path(tmp)
        proc, http_port, grpc_port = start(home, args)
        try:
            for proto in args.protocols.split(","):
                port = http_port if proto == "rest" else grpc_port
                base = unloaded(proto, port, args.unloaded_requests, work)
                before = rss_mb(proc.pid)
                b = bursts(proto, port, proc, home, args, work)
                after = rss_mb(proc.pid)
                shed_code = "429" if proto == "rest" else "RESOURCE_EXHAUSTED"
                good = "200" if proto == "rest" else "OK"
                answered = sum(b["statuses"].values())
                other = {k: v for k, v in b["statuses"].items() if k not in (good, shed_code)}
                print(json.dumps({
                    "protocol": proto, "clients": args.clients, "bursts": args.bursts,
                    "unloaded_p99_ms": round(base, 2),
                    "admitted_p99_ms": round(p99(b["ok"]), 1), "ratio": round(p99(b["ok"]) / base, 1),
                    "admitted_samples": len(b["ok"]), "all_answers_p99_ms": round(p99(b["every"]), 1),
                    "admitted_p99_inside_maas_ms": round(p99(b["inside_ok"]), 1),
                    "burst_s": [round(x, 2) for x in b["burst_s"]],
                    "admitted": b["statuses"][good], "shed": b["statuses"][shed_code],
                    "shed_share": round(b["statuses"][shed_code] / answered, 3) if answered else None,
                    "other": other, "transport_errors": b["errored"],
                    "refusals_with_access_line": f"{b['logged'][shed_code]}/{b['statuses'][shed_code]}",
                    "rss_before_mb": round(before[0]), "rss_after_mb": round(after[0]), "rss_peak_mb": round(after[1]),
                    "load_avg": round(os.getloadavg()[0], 1),
                }), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
