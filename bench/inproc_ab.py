"""In-process CPU per infer request of two source trees (not a test): REST JSON, REST binary and gRPC on the
tiny CNN, without sockets, so what differs is maas's own code per request, not the machine's load.

    python bench/inproc_ab.py base=/tmp/base/src branch=src [--rounds 4] [--requests 3000] [--concurrency 8]
    python bench/inproc_ab.py branch=src --profile grpc     # a cProfile of one tree's gRPC path, top 30
    python bench/inproc_ab.py plain=src split=src --split split --protocols rest-binary --concurrency 32
                                                            # the same tree without and with a 50/50 split

Each run is a subprocess with that tree first on PYTHONPATH: it registers the CNN (bench/run.py's config) in a
fresh home, builds the real app (`create_app`: the HTTP edge with every layer) and the real gRPC handlers
(auth and in-flight count included, as `maas serve` builds them), then drives the ASGI app and the ModelInfer
handler directly from `--concurrency` coroutines and reports process CPU time (all threads, inference
included) per request: the least of 5 blocks, since other processes' load only ever adds to a block. Trees
alternate in each round so drift in the machine's load falls on both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r'''
import asyncio, inspect, json, sys, tempfile, time
import numpy as np
sys.path.insert(0, sys.argv[5])
import models, run as bench
import os
sys.path.insert(0, os.environ["PYTHONPATH"])  # the tree under test, ahead of the src/ that run.py puts first
assert not any(m == "maas" or m.startswith("maas.") for m in sys.modules)
from maas.config import Settings
from maas.registry import Registry
from maas.serving import ServingDataPlane, ServingOptions
from maas.server.app import create_app
try:
    from maas.server import grpc_servicer as grpc_server
except ImportError:  # a tree from before the split of grpc_server.py
    from maas.server import grpc_server
import maas
print("tree", maas.__file__, file=sys.stderr)

protocols, n, conc, profile = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
split = sys.argv[6] == "split"  # two versions of the model, 50/50
if os.environ.get("BENCH_ONNX"):  # prebuilt (under callgrind, torch's export would take minutes)
    onnx, shape = open(os.environ["BENCH_ONNX"], "rb").read(), (28, 28, 1)
else:
    onnx, shape = models.build()["cnn"]
def collect(on):
    if os.environ.get("BENCH_CALLGRIND"):
        import subprocess
        subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(os.getpid())], capture_output=True)
bodies = bench.bodies(np.random.default_rng(1).random((1, *shape), dtype=np.float32))
from maas.protocol.grpc_gen import inference_pb2 as pb
msg = pb.ModelInferRequest.FromString(bodies["grpc"][0]); msg.model_name = "cnn"
bodies["grpc"] = (msg.SerializeToString(), None)

class Context:
    """What the ModelInfer handler asks of grpc.aio's ServicerContext."""
    def invocation_metadata(self): return (("user-agent", "grpc-python/1"),)
    def set_trailing_metadata(self, md): self.trailing = md
    def time_remaining(self): return None
    def peer(self): return "ipv4:127.0.0.1:1"
    async def abort(self, code, details): raise RuntimeError(f"{code}: {details}")

def grpc_infer(settings, reg, plane):
    params = inspect.signature(grpc_server.generic_handler).parameters
    if "auth" in params:
        from maas.security import Authorizer
        from maas.server.grpc_auth import GrpcAuth
        handler = grpc_server.generic_handler(plane, GrpcAuth(Authorizer(reg.key_store(), settings.api_key),
                                                              reg.audit_log()), settings.max_grpc_in_flight)
    else:
        handler = grpc_server.generic_handler(plane)
    return handler._method_handlers["/inference.GRPCInferenceService/ModelInfer"].unary_unary

async def main():
    settings = Settings(home=tempfile.mkdtemp())
    reg = Registry(settings)
    for _ in range(2 if split else 1):
        reg.publish("cnn", {"model.onnx": onnx}, config=bench.SERVER_CONFIG["cnn"])
    plane = ServingDataPlane(reg, ServingOptions())
    app = create_app(settings, reg, plane, grpc=False)
    await plane.start()
    if split:
        import httpx
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            arms = [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]
            (await c.put("/api/v1/models/cnn/traffic", json={"arms": arms})).raise_for_status()
            await asyncio.sleep(1)  # the arms load and warm up
    async def batches():
        """(rows, batches) run so far, every version, from the app's own /metrics."""
        import httpx, re
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as c:
            text = (await c.get("/metrics")).text
        return [sum(float(v) for v in re.findall(rf'^maas_inference_batch_size_{part}{{[^}}]*}} (\S+)$', text, re.M))
                for part in ("sum", "count")]
    infer = grpc_infer(settings, reg, plane)
    out = {}
    for proto in protocols:
        body, hlen = bodies[proto]
        headers = [(b"host", b"127.0.0.1"), (b"content-length", str(len(body)).encode()),
                   (b"content-type", b"application/octet-stream" if hlen else b"application/json")]
        if hlen:
            headers.append((b"inference-header-content-length", str(hlen).encode()))
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v2/models/cnn/infer", "raw_path": b"/v2/models/cnn/infer",
                 "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 8000),
                 "headers": headers}
        async def receive():
            return {"type": "http.request", "body": body, "more_body": False}
        statuses = []
        async def send(message):
            if message["type"] == "http.response.start":
                statuses.append(message["status"])
        async def one():
            if proto == "grpc":
                await infer(body, Context())
            else:
                await app(dict(scope), receive, send)
        async def client(k):
            for _ in range(k):
                await one()
        await asyncio.gather(*(client(200 // conc + 1) for _ in range(conc)))
        prof = None
        if profile == proto:
            import cProfile
            prof = cProfile.Profile(); prof.enable()
        per_block = max(1, n // conc // 5)
        cpu = wall = float("inf")
        rows0, count0 = await batches()
        for _ in range(5):  # the least CPU of 5 blocks: another process's load only ever adds to a block
            t0, c0 = time.perf_counter(), time.process_time()
            collect(True)
            await asyncio.gather(*(client(per_block) for _ in range(conc)))
            collect(False)
            cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - t0)
        if prof is not None:
            prof.disable()
            import pstats
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(30)
        assert set(statuses) <= {200}, set(statuses)
        rows, count = (a - b for a, b in zip(await batches(), (rows0, count0)))
        out[proto] = {"cpu_us": cpu / (per_block * conc) * 1e6, "wall_us": wall / (per_block * conc) * 1e6,
                      "rows_per_batch": rows / count if count else 0.0}
    await plane.stop(5)
    print(json.dumps(out))

asyncio.run(main())
'''


def run(src: Path, protocols: str, requests: int, concurrency: int, profile: str, split: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run([sys.executable, "-c", CHILD, protocols, str(requests), str(concurrency), profile,
                           str(HERE), "split" if split else "plain"], env=env, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    if profile:
        print(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("trees", nargs="+", help="NAME=SRC_DIR")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--protocols", default="rest-json,rest-binary,grpc")
    ap.add_argument("--profile", default="", help="a protocol to profile with cProfile (one round)")
    ap.add_argument("--split", default="", help="NAME,...: trees that serve the model as a 50/50 split of two "
                    "versions (the same tree may be named twice, once with and once without)")
    args = ap.parse_args()
    split = set(filter(None, args.split.split(",")))
    trees = [(n, Path(p).resolve()) for n, p in (t.split("=", 1) for t in args.trees)]
    protocols = args.protocols.split(",")
    results: dict[tuple[str, str], list[float]] = {}
    load = os.getloadavg()[0]
    for i in range(1 if args.profile else args.rounds):
        for name, src in (trees if i % 2 == 0 else trees[::-1]):
            r = run(src, args.protocols, args.requests, args.concurrency, args.profile, name in split)
            for proto in protocols:
                results.setdefault((name, proto), []).append(r[proto]["cpu_us"])
            print(f"round {i + 1} {name:8} " + "  ".join(
                f"{p} {r[p]['cpu_us']:6.1f} ({r[p]['rows_per_batch']:.1f} rows/batch)" for p in protocols)
                + "  µs CPU/request", flush=True)
    print(f"\nload average {load:.2f} → {os.getloadavg()[0]:.2f}; median µs of CPU per request "
          f"(concurrency {args.concurrency}, {args.requests} requests per cell)\n")
    print("| protocol | " + " | ".join(n for n, _ in trees) + " |")
    print("|---|" + "---:|" * len(trees))
    for proto in protocols:
        print(f"| {proto} | " + " | ".join(f"{statistics.median(results[(n, proto)]):.1f}" for n, _ in trees)
              + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
