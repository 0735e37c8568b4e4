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
import concurrent.futures
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


def slow_onnx(size: int = 3072, rounds: int = 1) -> bytes:
    """x [N, 4] -> y [N, 3] like `linear_onnx`, after `rounds` products of two size x size matrices built from
    x (seconds of one core per row): the model that holds its one instance while the refusals are timed."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, "w")
    w1 = numpy_helper.from_array(np.full((4, size), 1e-3, dtype=np.float32), "w1")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["lin"]), helper.make_node("MatMul", ["x", "w1"], ["a"]),
             helper.make_node("Unsqueeze", ["a", "ax2"], ["col"]), helper.make_node("Unsqueeze", ["a", "ax1"], ["row"]),
             helper.make_node("MatMul", ["col", "row"], ["m0"])]
    for i in range(rounds):
        nodes.append(helper.make_node("MatMul", [f"m{i}", "m0"], [f"m{i + 1}"]))
    nodes += [helper.make_node("ReduceMax", [f"m{rounds}"], ["big"], keepdims=0, axes=[1, 2]),
              helper.make_node("Min", ["big", "zero"], ["nil"]),
              helper.make_node("Unsqueeze", ["nil", "ax1"], ["nil2"]), helper.make_node("Add", ["lin", "nil2"], ["y"])]
    consts = [numpy_helper.from_array(np.array([2], dtype=np.int64), "ax2"),
              numpy_helper.from_array(np.array([1], dtype=np.int64), "ax1"),
              numpy_helper.from_array(np.zeros(1, dtype=np.float32), "zero")]
    graph = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], [w, w1, *consts])
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


def loop_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of `pid`'s main thread, the one running the event loop (/proc, Linux)."""
    fields = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full (all sockets)."""
    rows = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
    return int(dict(zip(rows[0], rows[1], strict=True)).get("ListenOverflows", 0))


def start(home: Path, args: argparse.Namespace, slow: bool = False) -> tuple[subprocess.Popen[bytes], int, int]:
    """`maas serve` with the linear model, or (`slow`) with only the slow one, one request queued at most."""
    import httpx

    sys.path.insert(0, str(ROOT / "src"))
    from maas.config import Settings
    from maas.registry import Registry

    with Registry(Settings(home=home)) as reg:
        if slow:
            reg.publish("linear", {"model.onnx": slow_onnx()},
                        config={"max_batch_size": 0, "batching": {"instances": 1, "intra_op_threads": 1}})
        else:
            reg.publish("linear", {"model.onnx": linear_onnx()},
                        config={"max_batch_size": 8, "batching": {"max_queue_delay_us": 500}})
    http_port, grpc_port = free_port(), free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(args.src)}
    if slow:
        env["MAAS_MAX_QUEUE_SIZE"] = "1"
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


def unloaded(proto: str, port: int, requests: int, work: Path, pid: int) -> tuple[float, float]:
    """p99 (ms) of `requests` sequential requests from one h2load client; the event loop's CPU µs per request."""
    cpu = loop_cpu_s(pid)
    r = read_h2load(h2load(proto, port, requests, 1, work, f"{proto}-unloaded", 1), work / f"{proto}-unloaded.log")
    return p99([s for _, s in r["latencies"]]), (loop_cpu_s(pid) - cpu) / requests * 1e6


def refusal_cost(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """The event loop's CPU µs per refusal, REST and gRPC: a server whose one instance is busy with a request
    of the slow model (seconds) and whose queue (1) holds another refuses every request of a burst of
    `--clients` ("the queue is full"); its main thread's CPU over the burst ÷ the refusals."""
    import httpx

    home = work / "slow-home"
    proc, http_port, grpc_port = start(home, args, slow=True)
    out: dict[str, Any] = {}
    try:
        url = f"http://127.0.0.1:{http_port}/v2/models/linear/infer"
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            held = [pool.submit(httpx.post, url, content=BODY, timeout=600)]
            time.sleep(1.0)  # the first one runs; the second waits in the queue of one
            held.append(pool.submit(httpx.post, url, content=BODY, timeout=600))
            time.sleep(1.0)
            for proto in args.protocols.split(","):
                port = http_port if proto == "rest" else grpc_port
                connections = args.clients if proto == "rest" else max(1, args.clients // 256)
                cpu = loop_cpu_s(proc.pid)
                r = read_h2load(h2load(proto, port, args.clients, connections, work, f"{proto}-refused"),
                                work / f"{proto}-refused.log")
                spent = loop_cpu_s(proc.pid) - cpu
                refused = (sum(1 for code, _ in r["latencies"] if code == 429) if proto == "rest"
                           else r["grpc_errors"].get(8, 0))  # 8: RESOURCE_EXHAUSTED
                out[proto] = {"refused": refused, "of": args.clients, "burst_s": round(r["seconds"], 2),
                              "loop_us_per_refusal": round(spent / max(refused, 1) * 1e6)}
                if proto == "rest":  # the same over 64 kept-alive connections: the refusal without its connection
                    cpu = loop_cpu_s(proc.pid)
                    r = read_h2load(h2load(proto, port, args.clients, 64, work, "rest-refused-kept", 1),
                                    work / "rest-refused-kept.log")
                    refused = sum(1 for code, _ in r["latencies"] if code == 429)
                    out["rest_keep_alive"] = {"refused": refused, "of": args.clients,
                                              "loop_us_per_refusal": round((loop_cpu_s(proc.pid) - cpu)
                                                                           / max(refused, 1) * 1e6)}
            proc.terminate()  # the held requests end with the server
            concurrent.futures.wait(held, timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    return out


def stats(http_port: int) -> dict[str, float]:
    """The linear model's cumulative statistics (Triton's extension): seconds and counts per stage."""
    import httpx

    doc = httpx.get(f"http://127.0.0.1:{http_port}/v2/models/linear/stats", timeout=30).json()["model_stats"][0]
    out = {}
    for stage, figures in doc["inference_stats"].items():
        out[f"{stage}_n"], out[f"{stage}_s"] = figures["count"], figures["ns"] / 1e9
    return out


def split(before: dict[str, float], after: dict[str, float], client: list[float],
          inside: list[float]) -> dict[str, Any]:
    """Where an admitted request's time went, in mean ms: outside maas (from the client's send to the first
    byte maas read, plus the answer's way back), inside maas but outside the data plane (parse, route, decode,
    encode, send), validation, the batch queue, the model run, and the result's way back to the loop."""
    d = {k: after[k] - before.get(k, 0.0) for k in after}
    n = max(d["success_n"], 1)

    def ms(seconds: float) -> float:
        return round(seconds / n * 1e3, 2)

    client_mean = sum(client) / len(client) if client else float("nan")
    inside_mean = sum(inside) / len(inside) if inside else float("nan")
    return {"client": round(client_mean * 1e3, 2), "outside_maas": round((client_mean - inside_mean) * 1e3, 2),
            "edge_parse_encode": round(inside_mean * 1e3 - ms(d["success_s"]), 2),
            "validate": ms(d["compute_input_s"]), "queue": ms(d["queue_s"]), "compute": ms(d["compute_infer_s"]),
            "result_to_loop_and_output": ms(d["success_s"] - d["queue_s"] - d["compute_input_s"]
                                            - d["compute_infer_s"])}


def bursts(proto: str, port: int, proc: subprocess.Popen[bytes], home: Path, args: argparse.Namespace,
           work: Path, http_port: int) -> dict[str, Any]:
    ok: list[float] = []  # client-side seconds of admitted requests (REST: all; gRPC: the probes)
    every: list[float] = []  # client-side seconds of every answer
    statuses: Counter[str] = Counter()
    inside_ok: list[float] = []  # access-log latency of admitted requests (arrival in maas to answer)
    logged: Counter[str] = Counter()
    errored = 0
    took: list[float] = []
    offset = (home / "serve.log").stat().st_size
    cpu, overflows, stats_before = loop_cpu_s(proc.pid), listen_overflows(), stats(http_port)
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
    cpu = loop_cpu_s(proc.pid) - cpu
    where = split(stats_before, stats(http_port), ok, inside_ok)
    return {"ok": ok, "every": every, "statuses": statuses, "logged": logged, "inside_ok": inside_ok,
            "errored": errored, "burst_s": took, "loop_us_per_request": cpu / (args.clients * args.bursts) * 1e6,
            "listen_overflows": listen_overflows() - overflows, "split_mean_ms": where}


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
    parser.add_argument("--no-refusal-cost", dest="refusal_cost", action="store_false",
                        help="skip the phase that times refusals alone (a second server, a slow model)")
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
                base, answer_us = unloaded(proto, port, args.unloaded_requests, work, proc.pid)
                before = rss_mb(proc.pid)
                b = bursts(proto, port, proc, home, args, work, http_port)
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
                    "loop_us_per_answer_unloaded": round(answer_us),
                    "loop_us_per_request_in_bursts": round(b["loop_us_per_request"]),
                    "listen_overflows": b["listen_overflows"], "split_mean_ms": b["split_mean_ms"],
                    "load_avg": round(os.getloadavg()[0], 1),
                }), flush=True)
        finally:
            proc.terminate()
            proc.wait(30)
        if args.refusal_cost:
            print(json.dumps({"refusal_cost": refusal_cost(args, work), "load_avg": round(os.getloadavg()[0], 1)}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
