"""Server CPU time per request, two (or more) source trees alternately (not a test): the honest figure on a
shared machine, where wall-clock throughput moves with everyone else's load.

    python bench/cpu_ab.py base=/tmp/base/src branch=src [--rounds 3] [--duration 5] [--concurrency 32]

Each round serves the tiny CNN from each tree in turn (a fresh home registered by that tree's own code, then
`maas serve` with that tree first on PYTHONPATH), drives it with wrk (REST JSON, REST binary) and h2load (gRPC;
C clients, so the client takes little of the shared cores) and reads the server's utime + stime from
/proc/PID/stat (every thread, living or exited) before and after each cell: CPU per answered request. It also
reports the rows per executed batch from /metrics, since batching changes the inference share of that cost.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import models  # noqa: E402
import run as bench  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
REGISTER = r'''
import sys, json
from pathlib import Path
from maas.config import Settings
from maas.registry import Registry
home, onnx, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
with Registry(Settings(home=Path(home))) as reg:
    reg.publish("cnn", {"model.onnx": Path(onnx).read_bytes()}, config=config)
'''


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)


def rows_per_batch(http_port: int) -> tuple[float, float]:
    import httpx

    text = httpx.get(f"http://127.0.0.1:{http_port}/metrics", timeout=10).text
    total = sum(float(m) for m in re.findall(r'^maas_inference_batch_size_sum\{[^}]*model="cnn"[^}]*\} (\S+)$',
                                             text, re.M))
    count = sum(float(m) for m in re.findall(r'^maas_inference_batch_size_count\{[^}]*model="cnn"[^}]*\} (\S+)$',
                                             text, re.M))
    return total, count


def serve(src: Path, work: Path, onnx: Path, config: str, env_extra: dict[str, str]) -> tuple:
    home = work / "home"
    env = {**os.environ, "PYTHONPATH": str(src), "MAAS_HOME": str(home), **env_extra}
    subprocess.run([sys.executable, "-c", REGISTER, str(home), str(onnx), config], env=env, check=True)
    http_port, grpc_port = bench.free_port(), bench.free_port()
    cmd = [sys.executable, "-c", "from maas.cli.main import app; app()", "serve",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    proc = bench._launch("maas serve", cmd, env, f"http://127.0.0.1:{http_port}/v2/health/ready",
                         work / "server.log")
    return proc, http_port, grpc_port


def cell(proto: str, proc, http_port: int, grpc_port: int, body: bytes, hlen: int | None, answer: int,
         c: int, seconds: float, work: Path) -> dict:
    before_rows = rows_per_batch(http_port)
    before = cpu_seconds(proc.pid)
    if proto == "grpc":
        path = work / "grpc.frame"
        path.write_bytes(bench.grpc_frame(body))
        r = bench.run_h2load(f"http://127.0.0.1:{grpc_port}{bench.grpc_load.METHOD}", path, answer, c, seconds)
    else:
        path = work / f"{proto}.body"
        path.write_bytes(body)
        r = bench.run_wrk(f"http://127.0.0.1:{http_port}/v2/models/cnn/infer", path, hlen, c, seconds)
    used = cpu_seconds(proc.pid) - before
    after_rows = rows_per_batch(http_port)
    batches = after_rows[1] - before_rows[1]
    r["cpu_us"] = used / max(r["requests"], 1) * 1e6
    r["rows_per_batch"] = (after_rows[0] - before_rows[0]) / batches if batches else 0.0
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trees", nargs="+", help="NAME=SRC_DIR, e.g. base=/tmp/base/src branch=src")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--concurrency", default="32")
    ap.add_argument("--protocols", default="rest-json,rest-binary,grpc")
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for every server (repeatable)")
    args = ap.parse_args()
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.trees)]
    levels = [int(c) for c in args.concurrency.split(",")]
    protocols = [p for p in args.protocols.split(",") if p]
    env_extra = dict(e.split("=", 1) for e in args.env)
    import json

    import numpy as np

    onnx_bytes, row_shape = models.build()["cnn"]
    work = Path(tempfile.mkdtemp(prefix="maas-cpu-ab-"))
    onnx = work / "cnn.onnx"
    onnx.write_bytes(onnx_bytes)
    b = bench.bodies(np.random.default_rng(1).random((1, *row_shape), dtype=np.float32))
    from maas.protocol.grpc_gen import inference_pb2 as pb

    msg = pb.ModelInferRequest.FromString(b["grpc"][0])
    msg.model_name = "cnn"
    b["grpc"] = (msg.SerializeToString(), None)
    config = json.dumps(bench.SERVER_CONFIG["cnn"])
    load_before = os.getloadavg()
    results: dict[tuple[str, str, int], list[dict]] = {}
    try:
        for rnd in range(args.rounds):
            for name, src in trees:
                here = work / f"{name}-{rnd}"
                here.mkdir()
                proc, http_port, grpc_port = serve(src, here, onnx, config, env_extra)
                try:
                    answer = bench.check_answers("cnn", http_port, grpc_port, b)
                    for proto in protocols:
                        body, hlen = b[proto]
                        cell(proto, proc, http_port, grpc_port, body, hlen, answer, max(levels), 1, here)  # warm
                        for c in levels:
                            r = cell(proto, proc, http_port, grpc_port, body, hlen, answer, c, args.duration, here)
                            results.setdefault((name, proto, c), []).append(r)
                            print(f"round {rnd} {name:8} {proto:11} c={c:<3} {r['rps']:8,.0f} req/s  "
                                  f"{r['cpu_us']:6.1f} us CPU/req  {r['rows_per_batch']:5.1f} rows/batch  "
                                  f"errors {r['errors']}", flush=True)
                finally:
                    bench.stop_server(proc)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nload average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; medians over "
          f"{args.rounds} rounds of {args.duration:g} s\n")
    print("| protocol | c | " + " | ".join(f"{n} µs CPU/req | {n} req/s" for n, _ in trees) + " |")
    print("|---|---:|" + "---:|---:|" * len(trees))
    for proto in protocols:
        for c in levels:
            cells = []
            for n, _ in trees:
                rs = results.get((n, proto, c), [])
                cells += [f"{statistics.median(r['cpu_us'] for r in rs):.0f}",
                          f"{statistics.median(r['rps'] for r in rs):,.0f}"]
            print(f"| {proto} | {c} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
