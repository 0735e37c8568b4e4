"""What keys and TLS cost on the infer path (not a test, not run in CI): the tiny CNN at concurrency 32 over
REST JSON and gRPC, served by `maas serve` without auth or TLS, then with a registry API key and TLS on both
ports, in the same run on the same machine.

    python bench/auth_tls.py [--duration 10] [--concurrency 32]

The load generators are light on purpose: REST sends one prebuilt HTTP/1.1 request over raw asyncio streams
(TLS through the same `ssl` module) and reads the answer by its Content-Length; gRPC sends prebuilt bytes over
grpc.aio stubs. Each runs in 2 processes (16 in-flight requests each at c=32). They share the cores with the
server, so read the numbers side by side, not as the server's ceiling (bench/run.py measures that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))  # auth_certs: the test suite's throw-away CA

from run import SERVER_CONFIG, _launch, bodies, free_port, stop_server  # noqa: E402

GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"


# --- load generators (run in child processes) --------------------------------------------------------------
async def _rest_worker(host: str, port: int, request: bytes, ctx: ssl.SSLContext | None, stop_at: float,
                       measure_from: float, lat: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
    try:
        while (t0 := time.perf_counter()) < stop_at:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            t1 = time.perf_counter()
            if status != 200:
                errors[0] += 1
            elif t0 >= measure_from and t1 <= stop_at:
                lat.append(t1 - t0)
    finally:
        writer.close()


async def _grpc_worker(call: Any, body: bytes, metadata: tuple[tuple[str, str], ...], stop_at: float,
                       measure_from: float, lat: list[float], errors: list[int]) -> None:
    import grpc

    while (t0 := time.perf_counter()) < stop_at:
        try:
            await call(body, metadata=metadata, timeout=60)
        except grpc.aio.AioRpcError:
            errors[0] += 1
            continue
        t1 = time.perf_counter()
        if t0 >= measure_from and t1 <= stop_at:
            lat.append(t1 - t0)


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    lat: list[float] = []
    errors = [0]
    start = time.perf_counter()
    measure_from, stop_at = start + spec["warmup_s"], start + spec["warmup_s"] + spec["duration_s"]
    ctx = None
    if spec["ca"]:
        ctx = ssl.create_default_context(cafile=spec["ca"])
    if spec["proto"] == "rest-json":
        await asyncio.gather(*(_rest_worker("127.0.0.1", spec["port"], spec["request"], ctx, stop_at, measure_from,
                                            lat, errors) for _ in range(spec["inflight"])))
    else:
        import grpc

        target = f"127.0.0.1:{spec['port']}"
        opts = [("grpc.max_receive_message_length", -1)]
        channel = (grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(Path(spec["ca"]).read_bytes()),
                                           options=opts) if spec["ca"] else grpc.aio.insecure_channel(target, opts))
        async with channel:
            call = channel.unary_unary(GRPC_METHOD)
            metadata = (("authorization", f"Bearer {spec['key']}"),) if spec["key"] else ()
            await asyncio.gather(*(_grpc_worker(call, spec["request"], metadata, stop_at, measure_from, lat, errors)
                                   for _ in range(spec["inflight"])))
    return {"latencies": lat, "errors": errors[0]}


def _child(spec: dict[str, Any], out: Any) -> None:
    out.send(asyncio.run(_drive(spec)))
    out.close()


def load(spec: dict[str, Any], concurrency: int, processes: int = 2) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for i in range(processes):
        inflight = concurrency // processes + (1 if i < concurrency % processes else 0)
        recv, send = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_child, args=({**spec, "inflight": inflight}, send))
        p.start()
        pipes.append(recv)
        procs.append(p)
    results = [r.recv() for r in pipes]
    for p in procs:
        p.join()
    lat = sorted(x for r in results for x in r["latencies"])
    n = len(lat)
    return {"rps": n / spec["duration_s"], "p50_ms": lat[n // 2] * 1e3 if n else float("nan"),
            "p99_ms": lat[min(n - 1, int(n * 0.99))] * 1e3 if n else float("nan"),
            "errors": sum(r["errors"] for r in results)}


# --- servers ------------------------------------------------------------------------------------------------
def rest_request(body: bytes, port: int, key: str) -> bytes:
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    return (f"POST /v2/models/cnn/infer HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{auth}\r\n").encode() + body


def serve(home: Path, secured: bool, pki: Any, log: Path) -> tuple[Any, int, int]:
    http_port, grpc_port = free_port(), free_port()
    env = {**os.environ, "MAAS_HOME": str(home), "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-c", "from maas.cli.main import app; app()", "serve",
           "--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    if secured:
        cmd += ["--tls-cert", str(pki.server_cert), "--tls-key", str(pki.server_key)]
        env["SSL_CERT_FILE"] = str(pki.ca)  # so the readiness probe trusts the test CA
    scheme = "https" if secured else "http"
    proc = _launch("maas serve", cmd, env, f"{scheme}://127.0.0.1:{http_port}/v2/health/ready", log)
    return proc, http_port, grpc_port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    import models
    import torch
    from auth_certs import make_pki

    from maas.config import Settings
    from maas.registry import Registry
    from maas.security import KeyStore

    torch.manual_seed(0)
    onnx_bytes = models._export(models.MnistCnn(), torch.rand(1, 28, 28, 1))
    x = np.random.default_rng(0).random((1, 28, 28, 1), dtype=np.float32)
    b = bodies(x)
    work = Path(tempfile.mkdtemp(prefix="maas-bench-auth-"))
    pki = make_pki(work / "pki")
    rows = []
    for secured in (False, True):
        home = work / ("on" if secured else "off")
        with Registry(Settings(home=home)) as reg:
            reg.publish("cnn", {"model.onnx": onnx_bytes}, config=SERVER_CONFIG["cnn"])
            key = KeyStore(reg.store).create("bench", "infer", models=["cnn"])[1] if secured else ""
        os.environ["SSL_CERT_FILE"] = str(pki.ca)
        proc, http_port, grpc_port = serve(home, secured, pki, work / f"server-{home.name}.log")
        try:
            grpc_body = b["grpc"][0]
            from maas.protocol.grpc_gen import inference_pb2 as pb

            msg = pb.ModelInferRequest.FromString(grpc_body)
            msg.model_name = "cnn"
            for proto, port, request in (("rest-json", http_port, rest_request(b["rest-json"][0], http_port, key)),
                                         ("grpc", grpc_port, msg.SerializeToString())):
                spec = {"proto": proto, "port": port, "request": request, "ca": str(pki.ca) if secured else "",
                        "key": key, "duration_s": args.duration, "warmup_s": args.warmup}
                r = load(spec, args.concurrency)
                rows.append({"auth_tls": "on" if secured else "off", "protocol": proto, **r})
                print(json.dumps(rows[-1]), flush=True)
        finally:
            stop_server(proc)
    print(f"\ncnn, concurrency {args.concurrency}, {args.duration:.0f} s per cell, {os.cpu_count()} cores")
    print(f"{'protocol':10} {'auth+TLS':9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in rows:
        print(f"{r['protocol']:10} {r['auth_tls']:9} {r['rps']:8.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} "
              f"{r['errors']:7d}")
    for proto in ("rest-json", "grpc"):
        off, on = (next(r for r in rows if r["protocol"] == proto and r["auth_tls"] == s) for s in ("off", "on"))
        print(f"{proto}: auth+TLS keeps {on['rps'] / off['rps']:.0%} of the throughput")
    return 0


if __name__ == "__main__":
    sys.exit(main())
